'use strict';
// The exporter's own checks (test/python/test_exporter.py): every key layout and weight format
// against the float64 reference, defensive safetensors parsing, and refusal of pickles that would
// run code. Run by the Python with torch.
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const { test } = require('node:test');

const { PYTHON, ROOT } = require('./helpers/fixtures');

test('exporter self-checks pass (test/python/test_exporter.py)', (t) => {
  const r = spawnSync(PYTHON, ['test/python/test_exporter.py'], { cwd: ROOT, encoding: 'utf8', timeout: 300_000 });
  const out = `${r.stdout}\n${r.stderr}`;
  for (const line of out.split('\n').filter((l) => /^(FAIL|max abs diffs|\d+ checks)/.test(l))) t.diagnostic(line);
  assert.equal(r.status, 0, out);
});
