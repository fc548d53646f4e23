'use strict';
// The AddressSanitizer + UBSan run of scripts/sanitize.sh (docs/RELIABILITY.md), as a test. It
// builds a second copy of the addon (build-asan/, 3-6 min from scratch on 2 cores) and runs
// the native-facing suites against it (about 100 s), so it only runs with VMAE_SANITIZE=1.
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const path = require('node:path');
const { test } = require('node:test');

const ROOT = path.join(__dirname, '..');

test('no AddressSanitizer or UBSan reports from native/ across the native-facing suites', {
  skip: process.env.VMAE_SANITIZE === '1' ? false : 'set VMAE_SANITIZE=1 to build build-asan/ and run the sanitizer suites',
  timeout: 20 * 60_000,
}, (t) => {
  // The suites under the sanitizer fork Node children that read these; keep them out.
  const env = { ...process.env };
  delete env.VIDEOMAE_NATIVE_PATH;
  delete env.NODE_TEST_CONTEXT;
  const r = spawnSync(path.join(ROOT, 'scripts', 'sanitize.sh'), [], { cwd: ROOT, env, encoding: 'utf8', maxBuffer: 64 << 20 });
  t.diagnostic(r.stdout.trim().split('\n').filter((l) => l.startsWith('sanitize:') || l.startsWith('#')).join('\n'));
  assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
});
