'use strict';
// Checkpoints saved by the real transformers (test/tools/make_hf_checkpoint.py), with transformers'
// own outputs, exported by our exporter. They need VIDEOMAE_HF_PYTHON: a Python with torch 2.x and
// transformers 5.x. Cached under test/.cache, keyed by the tools' source.
const { execFileSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');

const { CACHE, PYTHON, ROOT, python } = require('./fixtures');

/** The Python with transformers, or undefined. */
const HF_PYTHON = process.env.VIDEOMAE_HF_PYTHON || undefined;
/** `skip` for tests that need it: false, or the reason. */
const HF_SKIP = HF_PYTHON ? false
  : 'VIDEOMAE_HF_PYTHON is not set (a Python with torch 2.x and transformers 5.x; see README "Embeddings")';

const TOOLS = ['test/tools/make_hf_checkpoint.py', 'scripts/export_videomae.py', 'scripts/videomae_model.py',
  'scripts/safetensors_lite.py'];

/** Every kind (cls|enc) x layout (v4|v5) x pooling (mean|token). */
const VARIANTS = ['cls', 'enc'].flatMap((k) => ['v5', 'v4'].flatMap((l) => ['mean', 'token'].map((p) => `${k}-${l}-${p}`)));

function hfPython(args) {
  return execFileSync(HF_PYTHON, args, {
    cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, TRANSFORMERS_VERBOSITY: 'error', HF_HUB_DISABLE_PROGRESS_BARS: '1', OMP_NUM_THREADS: '1' },
  });
}

/**
 * { dir, variants: { name: { checkpoint, model, input: Float32Array, expected } } } for VARIANTS:
 * `expected` is DIR/<name>.json from make_hf_checkpoint.py; `model` is the export made by the
 * default PYTHON (test/helpers/fixtures.js).
 */
function hfModels() {
  // both Pythons are part of the key: the exports are made by PYTHON (see fixtures.js)
  const h = crypto.createHash('sha256').update(JSON.stringify([VARIANTS, PYTHON, HF_PYTHON]));
  for (const t of TOOLS) h.update(fs.readFileSync(path.join(ROOT, t)));
  const dir = path.join(CACHE, `hf-${h.digest('hex').slice(0, 16)}`);
  if (!fs.existsSync(path.join(dir, 'done'))) {
    fs.rmSync(dir, { recursive: true, force: true });
    hfPython(['test/tools/make_hf_checkpoint.py', '--out', dir, ...VARIANTS]);
    // the exporter's main() once per variant, in one process (one torch import)
    python(['-c', 'import sys; sys.path.insert(0, "scripts"); import export_videomae as e\n' +
      'for v in sys.argv[2:]:\n' +
      '    if e.main(["--checkpoint", sys.argv[1] + "/" + v, "--output", sys.argv[1] + "/" + v + ".pt"]): sys.exit(1)',
    dir, ...VARIANTS]);
    fs.writeFileSync(path.join(dir, 'done'), '');
  }
  const variants = {};
  for (const v of VARIANTS) {
    const bytes = fs.readFileSync(path.join(dir, `${v}.input.f32`));
    variants[v] = {
      checkpoint: path.join(dir, v),
      model: path.join(dir, `${v}.pt`),
      input: new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4),
      expected: JSON.parse(fs.readFileSync(path.join(dir, `${v}.json`), 'utf8')),
    };
  }
  return { dir, variants };
}

module.exports = { HF_PYTHON, HF_SKIP, VARIANTS, hfPython, hfModels };
