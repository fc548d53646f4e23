'use strict';
// Model fixtures for the test suites: random-weight Hugging Face checkpoints made by
// test/tools/make_checkpoint.py, exported with the project's own exporter, plus the independent
// float64 reference forward (test/tools/reference.py). Fixtures are cached under test/.cache,
// keyed by their arguments and the tools' source, so a changed tool never serves stale files.
const { execFileSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const ROOT = path.join(__dirname, '..', '..');
const CACHE = path.join(ROOT, 'test', '.cache');
/** A Python with torch: VIDEOMAE_PYTHON, else Debian's /usr/bin/python3. */
const PYTHON = process.env.VIDEOMAE_PYTHON || '/usr/bin/python3';

const TOOLS = ['test/tools/make_checkpoint.py', 'scripts/export_videomae.py', 'scripts/videomae_model.py',
  'scripts/safetensors_lite.py'];

function toolsHash() {
  const h = crypto.createHash('sha256');
  for (const t of TOOLS) {
    const p = path.join(ROOT, t);
    if (fs.existsSync(p)) h.update(fs.readFileSync(p));
  }
  return h.digest('hex').slice(0, 12);
}

function python(args, options = {}) {
  return execFileSync(PYTHON, args, { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], ...options });
}

/**
 * A checkpoint folder and its exported model.pt for `args` (make_checkpoint.py flags).
 * Returns { checkpoint, model }.
 */
function makeModel(args = [], exportArgs = []) {
  // The Python is part of the key: a .pt exported by torch 2.x need not load in libtorch 1.13.
  const key = crypto.createHash('sha256').update(JSON.stringify([args, exportArgs, toolsHash(), PYTHON])).digest('hex').slice(0, 16);
  const dir = path.join(CACHE, key);
  const checkpoint = path.join(dir, 'checkpoint');
  const model = path.join(dir, 'model.pt');
  if (!fs.existsSync(model)) {
    const tmp = fs.mkdtempSync(path.join(CACHE + '-tmp-'));
    try {
      python(['test/tools/make_checkpoint.py', '--out', path.join(tmp, 'checkpoint'), ...args]);
      python(['scripts/export_videomae.py', '--checkpoint', path.join(tmp, 'checkpoint'),
        '--output', path.join(tmp, 'model.pt'), ...exportArgs]);
      fs.mkdirSync(CACHE, { recursive: true });
      fs.rmSync(dir, { recursive: true, force: true });
      fs.renameSync(tmp, dir);
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  }
  return { checkpoint, model };
}

/** The small model most suites use: 4 frames of 32x32, 5 labels, with preprocessing metadata. */
function tinyModel(extra = []) {
  return makeModel(['--seed', '0', '--preprocessor', ...extra]);
}

/** Float64 logits [B*L] from the independent reference forward of `checkpoint`. */
function referenceLogits(checkpoint, input, shape) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmae-ref-'));
  try {
    const inFile = path.join(dir, 'x.f32');
    const outFile = path.join(dir, 'y.f64');
    fs.writeFileSync(inFile, Buffer.from(input.buffer, input.byteOffset, input.byteLength));
    python(['test/tools/reference.py', '--checkpoint', checkpoint, '--input', inFile, '--shape', shape.join(','),
      '--output', outFile]);
    const bytes = fs.readFileSync(outFile);
    return new Float64Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 8);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Deterministic pseudo-random float32 values in about [-2, 2] (mulberry32). */
function randomFloats(n, seed = 1) {
  let a = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = ((((t ^ (t >>> 14)) >>> 0) / 4294967296) - 0.5) * 4;
  }
  return out;
}

function maxAbsDiff(a, b) {
  if (a.length !== b.length) throw new Error(`length ${a.length} != ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** Runs `fn` with the environment variables in `env` set (undefined: unset), then restores them. */
async function withEnv(env, fn) {
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  try {
    return await fn();
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

module.exports = { withEnv, ROOT, CACHE, PYTHON, python, makeModel, tinyModel, referenceLogits, randomFloats, maxAbsDiff };
