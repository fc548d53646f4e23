'use strict';
// Shared by the Node benchmark children (addon.js, ort.js): argument parsing, the input clips,
// and the measured phases. A child prints one JSON object as its last stdout line.

const fs = require('node:fs');
const { performance } = require('node:perf_hooks');

/**
 * Event-loop delay during a phase: how late each tick of a 5 ms interval came, plus, at stop(),
 * how long the loop has owed the next tick. perf_hooks.monitorEventLoopDelay records nothing when
 * no tick runs at all, so a runtime that blocks the loop for the whole phase (onnxruntime-node's
 * run() executes on the JS thread) would read as 0 ms there instead of the seconds it blocks.
 */
function lagMonitor(resolutionMs = 5) {
  const delays = [];
  let last = performance.now();
  const timer = setInterval(() => {
    const now = performance.now();
    delays.push(Math.max(0, now - last - resolutionMs));
    last = now;
  }, resolutionMs);
  return {
    stop() {
      clearInterval(timer);
      delays.push(Math.max(0, performance.now() - last - resolutionMs));
      delays.sort((a, b) => a - b);
      return { lag_p99_ms: delays[Math.min(delays.length - 1, Math.floor(delays.length * 0.99))], lag_max_ms: delays[delays.length - 1] };
    },
  };
}

/** Parses --key value pairs (and bare --flag) into an object of strings/true. */
function parseArgs(argv) {
  const out = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) throw new Error(`Unexpected argument ${a}`);
    const next = argv[i + 1];
    if (next === undefined || next.startsWith('--')) out[a.slice(2)] = true;
    else out[a.slice(2)] = argv[++i];
  }
  return out;
}

/** The bench input: `clips` float32 clips of `shape` (T,C,S,S) in one raw little-endian file. */
function readClips(file, clips, shape) {
  const per = shape.reduce((a, b) => a * b, 1);
  const buf = fs.readFileSync(file);
  if (buf.byteLength !== clips * per * 4) throw new Error(`${file}: expected ${clips * per * 4} bytes, got ${buf.byteLength}`);
  const all = new Float32Array(buf.buffer, buf.byteOffset, clips * per);
  return Array.from({ length: clips }, (_, i) => all.subarray(i * per, (i + 1) * per));
}

const ms = () => performance.now();
/** CPU time of this process (all threads, user + system), ms. */
const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

/** Peak resident set of this process, MB. */
function peakRssMb() {
  return process.resourceUsage().maxRSS / 1024;
}

/**
 * Runs the phases shared by every runtime, in the same order as scripts/bench/torch_jit_bench.py.
 * `load()` returns `forward(clipIndex) -> Promise<Float32Array logits>`, optionally with a
 * `forward.batched(n)` that runs one request of n clips (the --batch phase).
 */
async function runPhases(args, load) {
  const iters = Number(args.iters ?? 3);
  const conc = Number(args.conc ?? 8);
  const concClips = Number(args['conc-clips'] ?? 8);
  const out = { threads: Number(args.threads) };
  let t = ms();
  const forward = await load();
  out.load_ms = ms() - t;

  t = ms();
  const logits0 = await forward(0);
  out.first_call_ms = ms() - t;
  out.logits0 = Array.from(logits0);
  await forward(1);  // untimed: the same second warm-up call every runtime gets

  if (!args['skip-c1']) {
    const lat = [];
    const lag = lagMonitor();
    const cpu0 = cpuMs();
    for (let i = 0; i < iters; i++) {
      t = ms();
      await forward(i);
      lat.push(ms() - t);
    }
    const cpu = cpuMs() - cpu0;
    out.c1 = { lat_ms: lat, cpu_ms: cpu, ...lag.stop() };
  }

  if (concClips > 0) {
    // `conc` clients, each sending its next request when the previous one resolves.
    const lat = [];
    let next = 0;
    const lag = lagMonitor();
    const cpu0 = cpuMs();
    const t0 = ms();
    const client = async () => {
      while (next < concClips) {
        const i = next++;
        const s = ms();
        await forward(i);
        lat.push(ms() - s);
      }
    };
    await Promise.all(Array.from({ length: conc }, client));
    const wall = ms() - t0;
    const cpu = cpuMs() - cpu0;
    out.cc = { lat_ms: lat, wall_ms: wall, cpu_ms: cpu, clips: concClips, conc, ...lag.stop() };
  }
  const batch = Number(args.batch ?? 0);
  if (batch > 1 && forward.batched) {
    // One request of `batch` clips (classifyBatch), as Python's --batch phase does.
    await forward.batched(batch);
    const lat = [];
    for (let i = 0; i < iters; i++) {
      t = ms();
      await forward.batched(batch);
      lat.push(ms() - t);
    }
    out.batch = { lat_ms: lat, batch };
  }
  out.peak_rss_mb = peakRssMb();
  return out;
}

module.exports = { parseArgs, readClips, runPhases, peakRssMb };
