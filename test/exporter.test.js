'use strict';
// The exporter's own checks (test/python/test_exporter.py): every key layout and weight format
// against the float64 reference, defensive safetensors parsing, and refusal of pickles that would
// run code. Run by the Python with torch (VIDEOMAE_PYTHON, torch 1.13 by default) and, when
// VIDEOMAE_HF_PYTHON is set, by that one too (torch 2.x + transformers 5.x), where --verify compares
// with the real transformers.
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { test } = require('node:test');

const { PYTHON, ROOT } = require('./helpers/fixtures');
const { HF_PYTHON, HF_SKIP, hfModels } = require('./helpers/hf');

function selfChecks(t, python) {
  const r = spawnSync(python, ['test/python/test_exporter.py'], { cwd: ROOT, encoding: 'utf8', timeout: 300_000 });
  const out = `${r.stdout}\n${r.stderr}`;
  for (const line of out.split('\n').filter((l) => /^(FAIL|max abs diffs|\d+ checks)/.test(l))) t.diagnostic(line);
  assert.equal(r.status, 0, out);
}

test('exporter self-checks pass (test/python/test_exporter.py)', (t) => selfChecks(t, PYTHON));

test('exporter self-checks pass under torch 2.x too (VIDEOMAE_HF_PYTHON)',
  { skip: HF_SKIP || (HF_PYTHON === PYTHON && 'VIDEOMAE_HF_PYTHON is VIDEOMAE_PYTHON: the test above ran them') },
  (t) => selfChecks(t, HF_PYTHON));

test('--verify under torch 2.x compares with the real transformers: within 1e-4 on a checkpoint it saved (5.x layout)',
  { skip: HF_SKIP }, (t) => {
    const { variants } = hfModels();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmae-verify-'));
    try {
      for (const name of ['cls-v5-mean', 'enc-v5-token']) {
        const r = spawnSync(HF_PYTHON, ['scripts/export_videomae.py', '--checkpoint', variants[name].checkpoint,
          '--output', path.join(dir, `${name}.pt`), '--verify'], {
          cwd: ROOT, encoding: 'utf8', timeout: 300_000, env: { ...process.env, PYTHONWARNINGS: 'always' },
        });
        assert.equal(r.status, 0, r.stdout + r.stderr);
        const m = /^verify: max abs difference vs (transformers 5\.\S+ \S+) .*: (\S+) \((.*)\)$/m.exec(r.stdout);
        assert.ok(m, r.stdout);
        t.diagnostic(`${name}: ${m[0]}`);
        assert.ok(Number(m[2]) < 1e-4, m[0]);
        // torch 2.x's TorchScript deprecation warnings become one note that says what they mean here
        assert.doesNotMatch(r.stderr, /deprecat/i);
        assert.equal(r.stdout.match(/^note: .*deprecated.*torch::jit::load/gm)?.length, 1, r.stdout);
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
