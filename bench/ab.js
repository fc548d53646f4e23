#!/usr/bin/env node
'use strict';
// Paired A/B timing in one process, for ratios that hold up on a busy shared machine: each round
// runs one forward of every runtime back to back (in rotating order), so a burst of outside load
// hits all of them; the ratio reported is the median of the per-round ratios.
//
//   node bench/ab.js [--model base] [--rounds 5] [--threads N] [--runtimes addon,ort,addon-unfused]
//                    [--max-batch 1] [--json FILE]
//
// Runtimes: addon (load-time rewrites on), addon-unfused (both rewrites off at load; note that the
// addon keeps OpenBLAS single-threaded unless OPENBLAS_NUM_THREADS is set in the environment),
// ort (onnxruntime-node, graph optimization 'all'), and the per-dtype backend choices of
// docs/PERFORMANCE.md: addon-sdpa, addon-onednn, addon-aten-linear (float32), addon-bf16,
// addon-bf16-aten-linear, addon-bf16-unfused. Uses the files bench/run.js prepared in
// bench/work/ (run `npm run bench -- --quick --models base` once first). RSS is not separable
// here: use bench/run.js for memory.

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { performance } = require('node:perf_hooks');

const { machine } = require('./lib/machine');

const ROOT = path.join(__dirname, '..');

// The environment each addon variant loads under (the choices are made at load time).
const ADDON_ENV = ['VIDEOMAE_DISABLE_FUSED_ATTENTION', 'VIDEOMAE_DISABLE_FUSED_LINEAR', 'VIDEOMAE_CPU_ATTENTION', 'VIDEOMAE_CPU_LINEAR'];
const ADDON_VARIANTS = {
  addon: { env: {} },
  'addon-unfused': { env: { VIDEOMAE_DISABLE_FUSED_ATTENTION: '1', VIDEOMAE_DISABLE_FUSED_LINEAR: '1' } },
  'addon-sdpa': { env: { VIDEOMAE_CPU_ATTENTION: 'sdpa' } },            // float32, SDPA attention (libtorch >= 2.1)
  'addon-onednn': { env: { VIDEOMAE_CPU_LINEAR: 'onednn' } },           // float32, oneDNN packed linear
  'addon-aten-linear': { env: { VIDEOMAE_CPU_LINEAR: 'aten' } },        // float32, aten::linear (MKL / OpenBLAS)
  'addon-bf16': { env: {}, dtype: 'bfloat16' },
  'addon-bf16-aten-linear': { env: { VIDEOMAE_CPU_LINEAR: 'aten' }, dtype: 'bfloat16' },
  'addon-bf16-unfused': { env: { VIDEOMAE_DISABLE_FUSED_ATTENTION: '1', VIDEOMAE_DISABLE_FUSED_LINEAR: '1' }, dtype: 'bfloat16' },
};

function args() {
  const o = { model: 'base', rounds: 5, threads: os.availableParallelism(), runtimes: ['addon', 'ort', 'addon-unfused'], json: null };
  const a = process.argv.slice(2);
  for (let i = 0; i < a.length; i += 2) {
    const k = a[i].replace(/^--/, '');
    if (k === 'runtimes') o.runtimes = a[i + 1].split(',');
    else if (k === 'rounds' || k === 'threads') o[k] = Number(a[i + 1]);
    else if (k === 'model' || k === 'json') o[k] = a[i + 1];
    else throw new Error(`Unknown argument ${a[i]}`);
  }
  return o;
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

async function main() {
  const o = args();
  const work = path.join(ROOT, 'bench', 'work');
  const pt = path.join(work, `${o.model}.pt`);
  const onnx = path.join(work, `${o.model}.onnx`);
  const meta = JSON.parse(require('node:child_process').execFileSync(
    fs.existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3',
    ['-c', 'import sys,zipfile;z=zipfile.ZipFile(sys.argv[1]);print(z.read(next(n for n in z.namelist() if n.endswith("extra/videomae.json"))).decode())', pt],
    { encoding: 'utf8' }));
  const c = meta.config;
  const shape = [1, c.numFrames, c.numChannels, c.imageSize, c.imageSize];
  const per = shape.reduce((a, b) => a * b, 1);
  const buf = fs.readFileSync(path.join(work, `${o.model}-clips.f32`));
  const x = new Float32Array(buf.buffer, buf.byteOffset, per);

  // Before the addon loads: the unfused graph's GEMMs get the same threads as in bench/run.js.
  if (o.runtimes.includes('addon-unfused')) process.env.OPENBLAS_NUM_THREADS ??= String(o.threads);
  const { VideoClassifier, Tensor } = require(path.join(ROOT, 'lib', 'index.js'));
  const run = {};
  const closers = [];
  for (const rt of o.runtimes) {
    if (ADDON_VARIANTS[rt]) {
      const { env, dtype } = ADDON_VARIANTS[rt];
      const saved = Object.fromEntries(ADDON_ENV.map((k) => [k, process.env[k]]));
      for (const k of ADDON_ENV) {
        if (env[k] === undefined) delete process.env[k];
        else process.env[k] = env[k];
      }
      const m = await VideoClassifier.load(pt, { threads: o.threads, rejectNonFinite: false, dtype: dtype ?? 'float32' });
      for (const k of ADDON_ENV) {
        if (saved[k] === undefined) delete process.env[k];
        else process.env[k] = saved[k];
      }
      const t = Tensor.fromBuffer(x, shape, 'float32');
      run[rt] = async () => (await m.classify(t, { topK: 1 })).logits;
      closers.push(() => m.dispose());
    } else if (rt === 'ort') {
      const ort = require('onnxruntime-node');
      const s = await ort.InferenceSession.create(onnx, { graphOptimizationLevel: 'all', intraOpNumThreads: o.threads,
        interOpNumThreads: 1, executionMode: 'sequential' });
      const t = new ort.Tensor('float32', x, shape);
      run[rt] = async () => (await s.run({ pixel_values: t })).logits.data;
      closers.push(() => s.release());
    } else {
      throw new Error(`Unknown runtime ${rt}`);
    }
    await run[rt]();  // the two warm-up calls every runtime gets in bench/run.js
    await run[rt]();
  }
  const times = Object.fromEntries(o.runtimes.map((r) => [r, []]));
  for (let i = 0; i < o.rounds; i++) {
    const order = o.runtimes.map((_, j) => o.runtimes[(i + j) % o.runtimes.length]);
    for (const rt of order) {
      const t = performance.now();
      await run[rt]();
      times[rt].push(performance.now() - t);
    }
    process.stderr.write(`[ab] round ${i + 1}/${o.rounds}: ${o.runtimes.map((r) => `${r} ${times[r][i].toFixed(0)} ms`).join(', ')}\n`);
  }
  const base = o.runtimes[0];
  const result = { model: o.model, threads: o.threads, rounds: o.rounds, date: new Date().toISOString(),
    load_average: os.loadavg(), machine: machine(), median_ms: {}, paired_ratio_vs_first: {} };
  for (const rt of o.runtimes) {
    result.median_ms[rt] = median(times[rt]);
    if (rt !== base) result.paired_ratio_vs_first[`${rt}_time / ${base}_time`] = median(times[rt].map((t, i) => t / times[base][i]));
  }
  result.times_ms = times;
  for (const close of closers) await close();
  const text = JSON.stringify(result, null, 2);
  if (o.json) fs.writeFileSync(o.json, `${text}\n`);
  process.stdout.write(`${text}\n`);
}

main().catch((err) => {
  process.stderr.write(`${err.stack || err}\n`);
  process.exit(1);
});
