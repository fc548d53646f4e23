#!/usr/bin/env node
'use strict';
// `npm run bench`: videomae-node (the addon) vs Python torch.jit on the same .pt vs
// onnxruntime-node on the ONNX exported from it. Each runtime runs in its own child process (so
// peak RSS is its own), one after the other, with the same thread count and the same input clips.
//
//   node bench/run.js [--quick] [--huge] [--models tiny,base] [--runtimes LIST] [--threads N]
//                     [--device cpu|cuda] [--dtype float32] [--label NAME] [--out bench/results]
//                     [--iters N] [--conc-clips N (0 skips the concurrency phase)] [--batch B]
//
// Runtimes (default: all that apply to the device):
//   python         Python torch.jit.load of the .pt (scripts/bench/torch_jit_bench.py)
//   transformers   Python transformers VideoMAEForVideoClassification (eager, its default SDPA
//                  attention) on the checkpoint the .pt was exported from; -bf16: in bfloat16
//   addon          the addon, default options (fused attention on), maxBatchSize 1
//   addon-bf16     the addon with dtype 'bfloat16' (CPU: oneDNN linear layers, SDPA attention)
//   addon-unfused  the addon without its load-time rewrites (VIDEOMAE_DISABLE_FUSED_ATTENTION=1,
//                  VIDEOMAE_DISABLE_FUSED_LINEAR=1): the exported graph as plain libtorch runs it
//   addon-b4/-b8   the addon with maxBatchSize 4 / 8 (concurrency phase only)
//   ort            onnxruntime-node 'all' graph optimization (CPU only)
//   addon-graphs   the addon with VIDEOMAE_CUDA_GRAPHS=1 (GPU only)
// On a GPU (--device cuda) every runtime also times one request of --batch clips (default 8).
// Models are random-weight checkpoints (test/tools/make_checkpoint.py --bench-size), exported
// once into bench/work/ (git-ignored). Results: bench/results/<label>.{json,md,svg}.

const { spawnSync, spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const { summarize, ratio } = require('./lib/stats');
const { markdown, svgChart } = require('./lib/report');
const { machine } = require('./lib/machine');

const ROOT = path.join(__dirname, '..');
const ALL_RUNTIMES = ['python', 'transformers', 'transformers-bf16', 'addon', 'addon-bf16', 'ort', 'addon-unfused',
  'addon-b4', 'addon-b8', 'addon-graphs'];
const GPU_ONLY = ['addon-graphs'];
const CPU_ONLY = ['ort', 'addon-unfused'];

/** Iterations per phase: c1 = sequential single clips, cc = clips sent by `conc` clients. */
const PLANS = {
  tiny: { quick: { iters: 20, concClips: 32 }, full: { iters: 100, concClips: 128 } },
  base: { quick: { iters: 3, concClips: 8 }, full: { iters: 10, concClips: 16 } },
  huge: { quick: { iters: 2, concClips: 8 }, full: { iters: 5, concClips: 16 } },
};
const CLIPS = 8;   // distinct input clips, cycled
const CONC = 8;    // concurrent clients in the cc phase

function parseArgs(argv) {
  const o = { quick: false, huge: false, models: null, runtimes: null, threads: os.availableParallelism(),
    device: 'cpu', dtype: 'float32', label: null, out: path.join(ROOT, 'bench', 'results'),
    work: path.join(ROOT, 'bench', 'work'), python: process.env.VIDEOMAE_PYTHON || defaultPython() };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => {
      if (argv[i + 1] === undefined) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--quick') o.quick = true;
    else if (a === '--huge') o.huge = true;
    else if (a === '--models') o.models = val().split(',');
    else if (a === '--runtimes') o.runtimes = val().split(',');
    else if (a === '--threads') o.threads = Number(val());
    else if (a === '--device') o.device = val();
    else if (a === '--dtype') o.dtype = val();
    else if (a === '--label') o.label = val();
    else if (a === '--out') o.out = path.resolve(val());
    else if (a === '--work') o.work = path.resolve(val());
    else if (a === '--python') o.python = val();
    else if (a === '--iters') o.iters = Number(val());
    else if (a === '--conc-clips') o.concClips = Number(val());
    else if (a === '--batch') o.batch = Number(val());
    else if (a === '--help' || a === '-h') {
      process.stdout.write(fs.readFileSync(__filename, 'utf8').split('\n').slice(2, 24).map((l) => l.replace(/^\/\/ ?/, '')).join('\n') + '\n');
      process.exit(0);
    } else throw new Error(`Unknown argument ${a} (see --help)`);
  }
  const onGpu = o.device !== 'cpu';
  o.models ??= ['tiny', 'base', ...(o.huge || onGpu ? ['huge'] : [])];
  for (const m of o.models) if (!PLANS[m]) throw new Error(`Unknown model ${m}; expected tiny, base or huge`);
  o.runtimes ??= ALL_RUNTIMES.filter((r) => (onGpu ? !CPU_ONLY.includes(r) : !GPU_ONLY.includes(r)));
  o.batch ??= onGpu ? 8 : 0;
  for (const r of o.runtimes) if (!ALL_RUNTIMES.includes(r)) throw new Error(`Unknown runtime ${r}`);
  if (!Number.isInteger(o.threads) || o.threads < 1) throw new Error('--threads must be a positive integer');
  const day = new Date().toISOString().slice(0, 10);
  o.label ??= `${o.device.replace(':', '')}-${day}${o.quick ? '-quick' : ''}`;
  return o;
}

function defaultPython() {
  // Debian's torch lives in /usr/bin/python3; a venv's python3 on PATH may have none.
  return fs.existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
}

function log(msg) {
  process.stderr.write(`[bench] ${msg}\n`);
}

function runSync(cmd, args) {
  const r = spawnSync(cmd, args, { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit'] });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed with status ${r.status}`);
}

/** Writes (once) the random checkpoint, its .pt, its .onnx and CLIPS input clips for `size`. */
function prepare(o, size, needOnnx) {
  fs.mkdirSync(o.work, { recursive: true });
  const ckpt = path.join(o.work, `ckpt-${size}`);
  const pt = path.join(o.work, `${size}.pt`);
  const onnx = path.join(o.work, `${size}.onnx`);
  if (!fs.existsSync(pt)) {
    log(`making the random ${size} checkpoint and exporting ${pt}`);
    if (!fs.existsSync(path.join(ckpt, 'config.json'))) {
      // transformers 5.x key layout (query/key/value biases), which the transformers runtime loads as is.
      runSync(o.python, ['test/tools/make_checkpoint.py', '--out', ckpt, '--bench-size', size, '--preprocessor', '--layout', 'v5']);
    }
    runSync(o.python, ['scripts/export_videomae.py', '--checkpoint', ckpt, '--output', pt]);
  }
  if (needOnnx && !fs.existsSync(onnx)) {
    log(`exporting ${onnx}`);
    runSync(o.python, ['scripts/export_onnx.py', '--model', pt, '--output', onnx]);
  }
  const meta = readMetadata(pt);
  const c = meta.config;
  const shape = [c.numFrames, c.numChannels, c.imageSize, c.imageSize];
  const input = path.join(o.work, `${size}-clips.f32`);
  const per = shape.reduce((a, b) => a * b, 1);
  if (!fs.existsSync(input) || fs.statSync(input).size !== CLIPS * per * 4) {
    fs.writeFileSync(input, randomClips(CLIPS * per, 1234));
  }
  return { size, ckpt, pt, onnx, input, shape, config: c };
}

/** extra/videomae.json of a .pt, read with the Python that wrote it (no zip reader in Node). */
function readMetadata(pt) {
  const code = 'import sys,zipfile\nz=zipfile.ZipFile(sys.argv[1])\n' +
    'print(z.read(next(n for n in z.namelist() if n.endswith("extra/videomae.json"))).decode())';
  const r = spawnSync(defaultPython(), ['-c', code, pt], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`cannot read the metadata of ${pt}: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

/** Deterministic pseudo-normalized pixel values in [-2, 2] (mulberry32). */
function randomClips(n, seed) {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = ((((t ^ (t >>> 14)) >>> 0) / 4294967296) - 0.5) * 4;
  }
  return Buffer.from(out.buffer);
}

/** Runs one child; resolves with its last stdout line parsed as JSON. */
function child(cmd, args, env) {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => { stdout += d; });
    p.stderr.on('data', (d) => { process.stderr.write(d); stderr = (stderr + d).slice(-64 << 10); });
    p.on('error', reject);
    p.on('close', (code) => {
      const last = stdout.trim().split('\n').pop();
      // The report names why: the last "SomethingError: message" line (Node and Python both print one).
      const why = stderr.split('\n').filter((l) => /^[\w.]*Error: /.test(l)).pop();
      if (code !== 0) return reject(new Error(`${path.basename(args[0])} exited with ${code}${why ? `: ${why}` : ''}`));
      try {
        resolve(JSON.parse(last));
      } catch {
        reject(new Error(`${path.basename(args[0])} printed no JSON: ${last}`));
      }
    });
  });
}

async function runRuntime(o, m, runtime, plan) {
  const common = ['--input', m.input, '--clips', String(CLIPS), '--shape', m.shape.join(','),
    '--threads', String(o.threads), '--iters', String(plan.iters), '--conc', String(CONC),
    '--conc-clips', String(plan.concClips)];
  const dev = ['--device', o.device, '--dtype', o.dtype, ...(o.batch > 1 ? ['--batch', String(o.batch)] : [])];
  const bf16 = ['--device', o.device, '--dtype', 'bfloat16', ...(o.batch > 1 ? ['--batch', String(o.batch)] : [])];
  const hf = ['scripts/bench/torch_jit_bench.py', '--model', m.pt, '--transformers', m.ckpt, ...common];
  const node = process.execPath;
  const addon = path.join('bench', 'runners', 'addon.js');
  switch (runtime) {
    case 'python':
      return child(o.python, ['scripts/bench/torch_jit_bench.py', '--model', m.pt, ...common, ...dev]);
    case 'transformers':
      return child(o.python, [...hf, ...dev]);
    case 'transformers-bf16':
      return child(o.python, [...hf, ...bf16]);
    case 'addon':
      return child(node, [addon, '--model', m.pt, ...common, ...dev], {});
    case 'addon-bf16':
      return child(node, [addon, '--model', m.pt, ...common, ...bf16], {});
    case 'addon-unfused':
      // The addon keeps OpenBLAS single-threaded unless OPENBLAS_NUM_THREADS is set (fork safety,
      // docs/RELIABILITY.md); the unfused graph's GEMMs then get the same threads as Python's.
      return child(node, [addon, '--model', m.pt, ...common, ...dev],
        { VIDEOMAE_DISABLE_FUSED_ATTENTION: '1', VIDEOMAE_DISABLE_FUSED_LINEAR: '1', OPENBLAS_NUM_THREADS: String(o.threads) });
    case 'addon-graphs':
      return child(node, [addon, '--model', m.pt, ...common, ...dev], { VIDEOMAE_CUDA_GRAPHS: '1' });
    case 'addon-b4':
    case 'addon-b8':
      return child(node, [addon, '--model', m.pt, ...common, ...dev.slice(0, 4), '--max-batch', runtime.slice(-1), '--skip-c1']);
    case 'ort':
      return child(node, [path.join('bench', 'runners', 'ort.js'), '--model', m.onnx, ...common]);
    default:
      throw new Error(runtime);
  }
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  const started = new Date();
  const result = {
    label: o.label, date: started.toISOString(), quick: o.quick, device: o.device, dtype: o.dtype,
    threads: o.threads, machine: machine(), load_average_start: os.loadavg(), versions: { node: process.version },
    command: `node bench/run.js ${process.argv.slice(2).join(' ')}`.trim(), models: {},
  };
  for (const size of o.models) {
    const plan = { ...PLANS[size][o.quick ? 'quick' : 'full'] };
    if (o.iters !== undefined) plan.iters = o.iters;
    if (o.concClips !== undefined) plan.concClips = o.concClips;
    const m = prepare(o, size, o.runtimes.includes('ort'));
    const entry = { config: m.config, plan: { ...plan, conc: CONC, clips: CLIPS }, runtimes: {} };
    result.models[size] = entry;
    for (const rt of o.runtimes) {
      log(`${size}: ${rt} (${plan.iters} sequential, ${plan.concClips} clips from ${CONC} clients)`);
      const t = Date.now();
      try {
        const raw = await runRuntime(o, m, rt, plan);
        entry.runtimes[rt] = { ...summarize(raw), raw };
        Object.assign(result.versions, raw.versions);
        const s = entry.runtimes[rt];
        log(`${size}: ${rt} done in ${((Date.now() - t) / 1000).toFixed(0)} s: c1 mean ${fmt(s.c1_mean_ms)} ms, ` +
          `cc ${fmt(s.cc_clips_per_s, 3)} clips/s, first call ${fmt(s.first_call_ms)} ms, peak RSS ${fmt(s.peak_rss_mb)} MB`);
      } catch (err) {
        log(`${size}: ${rt} FAILED: ${err.message}`);
        entry.runtimes[rt] = { error: err.message };
      }
    }
    entry.ratios = ratios(entry.runtimes);
    if (size !== 'tiny' && o.device === 'cpu') entry.ceiling = ceiling(o, m.config, entry.runtimes);
    entry.logit_diff_vs_python = logitDiffs(entry.runtimes);
  }
  result.load_average_end = os.loadavg();
  result.duration_s = Math.round((Date.now() - started.getTime()) / 1000);
  fs.mkdirSync(o.out, { recursive: true });
  const base = path.join(o.out, o.label);
  const slim = JSON.parse(JSON.stringify(result, (k, v) => (k === 'logits0' ? undefined : v)));
  fs.writeFileSync(`${base}.json`, `${JSON.stringify(slim, null, 2)}\n`);
  fs.writeFileSync(`${base}.md`, markdown(slim, `${o.label}.svg`));
  fs.writeFileSync(`${base}.svg`, svgChart(slim));
  process.stdout.write(markdown(slim, `${o.label}.svg`));
  log(`wrote ${path.relative(ROOT, base)}.{json,md,svg}`);
}

/** FLOPs of one clip: the linear layers, attention's two matmuls and the patch embedding. */
function clipGflop(c) {
  const tokens = (c.numFrames / c.tubeletSize) * (c.imageSize / c.patchSize) ** 2;
  const h = c.hiddenSize;
  const perLayer = 2 * tokens * (4 * h * h + 2 * h * c.intermediateSize) + 4 * tokens * tokens * h;
  const patch = 2 * tokens * h * c.numChannels * c.tubeletSize * c.patchSize ** 2;
  return (c.numLayers * perLayer + patch + 2 * h * c.numLabels) / 1e9;
}

/**
 * Each runtime's sequential rate as a fraction of the GEMM ceiling of its dtype, measured now with
 * the same threads (scripts/bench/gemm_ceiling.py): the best a GEMM-bound model could do.
 */
function ceiling(o, config, rt) {
  const r = spawnSync(o.python, ['scripts/bench/gemm_ceiling.py', '--threads', String(o.threads)], { cwd: ROOT, encoding: 'utf8' });
  if (r.status !== 0) {
    log(`GEMM ceiling failed: ${r.stderr}`);
    return undefined;
  }
  const gemm = JSON.parse(r.stdout.trim().split('\n').pop());
  const gflop = clipGflop(config);
  const out = { gemm, clip_gflop: gflop, runtimes: {} };
  for (const [name, s] of Object.entries(rt)) {
    if (!s.c1_p50_ms) continue;
    const dtype = /bf16/.test(name) ? 'bfloat16' : 'float32';
    const gflops = gflop / (s.c1_p50_ms / 1000);
    out.runtimes[name] = { dtype, gflops, fraction: gemm[dtype] ? gflops / gemm[dtype] : null };
  }
  log(`GEMM ceiling: float32 ${gemm.float32.toFixed(0)} GFLOP/s, bfloat16 ${gemm.bfloat16?.toFixed(0) ?? '-'} GFLOP/s`);
  return out;
}

/** Ratios of the same run, each stated so that > 1 means the addon (or the option) is faster. */
function ratios(rt) {
  const r = {};
  const c1 = (k) => rt[k]?.c1_mean_ms;
  const cc = (k) => rt[k]?.cc_clips_per_s;
  const cpu = (k) => rt[k]?.c1_cpu_ms_per_clip;
  r['python_c1_time / addon_c1_time'] = ratio(c1('python'), c1('addon'));
  r['transformers_c1_time / addon_c1_time'] = ratio(c1('transformers'), c1('addon'));
  r['transformers_bf16_c1_time / addon_bf16_c1_time'] = ratio(c1('transformers-bf16'), c1('addon-bf16'));
  r['ort_c1_time / addon_bf16_c1_time'] = ratio(c1('ort'), c1('addon-bf16'));
  r['addon_c1_time / addon_bf16_c1_time'] = ratio(c1('addon'), c1('addon-bf16'));
  r['python_c1_cpu / addon_c1_cpu'] = ratio(cpu('python'), cpu('addon'));
  r['ort_c1_cpu / addon_c1_cpu'] = ratio(cpu('ort'), cpu('addon'));
  r['unfused_c1_cpu / fused_c1_cpu'] = ratio(cpu('addon-unfused'), cpu('addon'));
  r['ort_c1_time / addon_c1_time'] = ratio(c1('ort'), c1('addon'));
  r['unfused_c1_time / fused_c1_time'] = ratio(c1('addon-unfused'), c1('addon'));
  r['addon_cc_throughput / python_cc_throughput'] = ratio(cc('addon'), cc('python'));
  r['addon_cc_throughput / ort_cc_throughput'] = ratio(cc('addon'), cc('ort'));
  r['b4_cc_throughput / b1_cc_throughput'] = ratio(cc('addon-b4'), cc('addon'));
  r['b8_cc_throughput / b1_cc_throughput'] = ratio(cc('addon-b8'), cc('addon'));
  for (const k of Object.keys(r)) if (r[k] === null) delete r[k];
  return r;
}

function logitDiffs(rt) {
  const ref = rt.python?.raw?.logits0;
  const out = {};
  if (!ref) return out;
  for (const [k, v] of Object.entries(rt)) {
    const l = v.raw?.logits0;
    if (!l || k === 'python') continue;
    let d = 0;
    for (let i = 0; i < ref.length; i++) d = Math.max(d, Math.abs(ref[i] - l[i]));
    out[k] = d;
  }
  return out;
}

function fmt(v, digits = 1) {
  return v === undefined || v === null ? '-' : Number(v).toFixed(digits);
}

main().catch((err) => {
  process.stderr.write(`${err.stack || err}\n`);
  process.exit(1);
});
