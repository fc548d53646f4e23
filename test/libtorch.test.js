'use strict';
// Only the chosen libtorch is linked (issue 11). CI builds against the official torch 2.13 wheel with
// Debian's libtorch 1.13 installed too, the combination that used to link 1.13 and abort on load.
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { test } = require('node:test');

const { runtimeInfo } = require('..');
const { ROOT } = require('./helpers/fixtures');

/** Every folder a libtorch or c10 library of this process was mapped from (Linux). */
function mappedTorchDirs() {
  const maps = fs.readFileSync('/proc/self/maps', 'utf8');
  const dirs = new Set();
  for (const m of maps.matchAll(/(\/\S*\/lib(?:torch\w*|c10\w*)\.so[^\s/]*)\s*$/gm)) dirs.add(path.dirname(fs.realpathSync(m[1])));
  return [...dirs];
}

test('the addon maps one libtorch, the one it was compiled against', { skip: process.platform !== 'linux' }, () => {
  const info = runtimeInfo();
  const dirs = mappedTorchDirs();
  assert.equal(dirs.length, 1, `libtorch mapped from several folders: ${dirs.join(', ')}`);
  // The compiled-in TORCH_VERSION against what the mapped folder holds, read independently.
  const dir = dirs[0];
  const versionPy = path.join(dir, '..', 'version.py');
  const mapped = fs.existsSync(versionPy)
    ? fs.readFileSync(versionPy, 'utf8').match(/__version__\s*=\s*'([^'+]+)/)[1]
    : fs.readdirSync(dir).map((f) => f.match(/^libtorch_cpu\.so\.(\d+\.\d+)\.\d+$/)?.[1]).find(Boolean);
  assert.ok(mapped, `no version found for the libtorch in ${dir}`);
  assert.equal(info.libtorchVersion.split('.').slice(0, 2).join('.'), mapped.split('.').slice(0, 2).join('.'),
    `compiled against ${info.libtorchVersion}, mapped ${mapped} from ${dir}`);
  // CI names the libtorch it chose; the build must have taken exactly that one.
  if (process.env.LIBTORCH) {
    assert.equal(dir, fs.realpathSync(path.join(process.env.LIBTORCH, 'lib')), `LIBTORCH=${process.env.LIBTORCH}`);
    assert.match(info.libtorchSource, /^LIBTORCH/);
  }
});

test('configure fails loudly when a torch library would come from another libtorch', {
  skip: !process.env.LIBTORCH || !fs.existsSync('/usr/lib/x86_64-linux-gnu/libtorch.so')
    ? 'needs LIBTORCH and Debian libtorch-dev (CI has both)' : false,
  timeout: 300_000,
}, () => {
  // A stale cache entry pointing at Debian's 1.13 (what TorchConfig's find_library used to pick).
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmae-mix-'));
  try {
    const r = spawnSync('cmake', ['-S', ROOT, '-B', dir, '-DTORCH_LIBRARY=/usr/lib/x86_64-linux-gnu/libtorch.so'], {
      encoding: 'utf8',
    });
    assert.notEqual(r.status, 0, 'configure passed with a mixed libtorch');
    assert.match(r.stderr.replace(/\s+/g, ' '), /comes from another libtorch \(\/usr\/lib\/x86_64-linux-gnu\)/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('libgomp loads with OMP_WAIT_POLICY=PASSIVE unless the user set it; child processes do not inherit it', () => {
  // OMP_DISPLAY_ENV makes libgomp print the settings it read when it loaded (with the addon).
  const script = "require('.').runtimeInfo(); process.stdout.write(String(process.env.OMP_WAIT_POLICY));";
  const run = (extra) => {
    const env = { ...process.env, OMP_DISPLAY_ENV: 'true', ...extra };
    if (!('OMP_WAIT_POLICY' in extra)) delete env.OMP_WAIT_POLICY;
    const r = spawnSync(process.execPath, ['-e', script], { cwd: ROOT, env, encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, 0, r.stderr);
    const policy = r.stderr.match(/OMP_WAIT_POLICY = '(\w+)'/);
    assert.ok(policy, `libgomp printed no OMP_WAIT_POLICY (is libtorch built with libgomp?):\n${r.stderr.slice(0, 2000)}`);
    return { libgomp: policy[1], env: r.stdout };
  };
  assert.deepEqual(run({}), { libgomp: 'PASSIVE', env: 'undefined' });
  assert.deepEqual(run({ OMP_WAIT_POLICY: 'ACTIVE' }), { libgomp: 'ACTIVE', env: 'ACTIVE' });
});
