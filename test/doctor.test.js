'use strict';
// `videomae doctor`, run as the CLI in child processes: a healthy install, and installs where
// classification cannot work, each with the fix printed.
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { after, before, describe, test } = require('node:test');

const ROOT = path.join(__dirname, '..');
const CLI = path.join(ROOT, 'lib', 'cli.js');
const { findLibtorch } = require('../lib/setup/libtorch');
const { tinyModel } = require('./helpers/fixtures');
const { BF16_NATIVE } = require('./helpers/cpu');

let model;
let work;

function doctor(args, env = {}) {
  const childEnv = { ...process.env, ...env };
  if (!('VIDEOMAE_NATIVE_PATH' in env)) delete childEnv.VIDEOMAE_NATIVE_PATH;
  const r = spawnSync(process.execPath, [CLI, 'doctor', ...args], { env: childEnv, encoding: 'utf8', timeout: 300_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, json: args.includes('--json') ? JSON.parse(r.stdout) : undefined };
}

before(() => {
  model = tinyModel().model;
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'vmae-doctor-'));
});
after(() => fs.rmSync(work, { recursive: true, force: true }));

describe('doctor', () => {
  test('healthy: every section reported, the model loads, exit 0', () => {
    const r = doctor(['--json', '--model', model]);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    const c = r.json.checks;
    assert.equal(r.json.ok, true);
    assert.deepEqual(Object.keys(c), ['node', 'addon', 'libtorch', 'gpu', 'cpu', 'ffmpeg', 'python', 'model']);
    // The CPU line reads /proc/cpuinfo's flags, as `grep` would.
    const flags = fs.existsSync('/proc/cpuinfo') ? fs.readFileSync('/proc/cpuinfo', 'utf8').match(/^flags\s*:(.*)$/m)?.[1] ?? '' : '';
    assert.equal(c.cpu.data.avx512bf16, /\bavx512_bf16\b/.test(flags));
    assert.equal(c.cpu.data.amx, /\bamx_bf16\b/.test(flags) && /\bamx_tile\b/.test(flags));
    assert.equal(c.cpu.data.bfloat16Allowed, BF16_NATIVE);
    if (!BF16_NATIVE) assert.match(c.cpu.summary, /dtype 'bfloat16' is refused on this CPU; use float32/);
    assert.equal(c.cpu.status === 'ok', BF16_NATIVE && (c.cpu.data.amx || c.cpu.data.avx512bf16) && c.cpu.data.libtorch2, JSON.stringify(c.cpu));
    assert.equal(c.node.data.napi, Number(process.versions.napi));
    assert.equal(c.addon.status, 'ok');
    assert.ok(['source', 'prebuild'].includes(c.addon.data.kind));
    assert.ok(fs.existsSync(c.addon.data.path));
    assert.ok(['child', 'cache'].includes(c.addon.data.verified), 'the binary was test-loaded in a child first');
    assert.equal(c.libtorch.status, 'ok');
    assert.match(c.libtorch.data.compiledAgainst, /^\d+\.\d+/);
    // The flavor names the libtorch that is mapped, and exactly one libtorch folder is.
    assert.equal(c.libtorch.data.mapped.length, 1);
    assert.equal(c.libtorch.data.loaded.libDir, c.libtorch.data.mapped[0]);
    const mm = c.libtorch.data.loaded.version.split('.').slice(0, 2).join('.');
    assert.equal(c.addon.data.flavor, `torch${mm}-${c.libtorch.data.loaded.flavor}`);
    assert.ok(['info', 'ok', 'warn'].includes(c.gpu.status));
    assert.equal(typeof c.gpu.data.cudaAvailable, 'boolean');
    assert.equal(c.model.status, 'ok');
    assert.equal(c.model.data.loads, true);
    for (const check of Object.values(c)) if (check.status === 'warn' || check.status === 'fail') assert.ok(check.fix, JSON.stringify(check));

    const text = doctor(['--model', model], { FFMPEG_PATH: '/nonexistent/ffmpeg' });
    assert.equal(text.status, 0, 'a missing ffmpeg is a warning, not a failure');
    assert.match(text.stdout, /^ok {3}Addon: (source build|prebuild) torch\d+\.\d+-[a-z0-9]+: /m);
    assert.match(text.stdout, /^WARN ffmpeg: ffmpeg \(\/nonexistent\/ffmpeg, from FFMPEG_PATH\)[^\n]*not found[^\n]*\n {7}fix: apt-get install ffmpeg/m);
    assert.match(text.stdout, /Classification can work\.\n$/);
  });

  test('a missing model fails with the fix; without --model the demo model is checked', () => {
    const r = doctor(['--model', path.join(work, 'missing.pt')]);
    assert.equal(r.status, 1);
    assert.match(r.stdout, /^FAIL Model: .*missing\.pt: missing\n {7}fix: /m);
    const demo = path.join(ROOT, 'models', 'demo', 'videomae-demo-motion.pt');
    const d = doctor(['--json']);
    assert.equal(d.json.checks.model.data.path, demo);
    if (!fs.existsSync(demo)) {
      assert.equal(d.status, 1);
      assert.match(d.json.checks.model.fix, /--model <file\.pt>/);
    }
  });

  test('VIDEOMAE_NATIVE_PATH at a missing file: addon FAIL, exit 1, fixes listed', () => {
    const r = doctor(['--model', model], { VIDEOMAE_NATIVE_PATH: path.join(work, 'nonexistent.node') });
    assert.equal(r.status, 1);
    assert.match(r.stdout, /^FAIL Addon: cannot be loaded\n[\s\S]*VIDEOMAE_NATIVE_PATH=[\s\S]*fix: npx videomae setup/m);
    assert.match(r.stdout, /Classification cannot work/);
  });

  test('a broken libtorch first on the linker path: no binary loads, exit 1, fix is setup', (t) => {
    // Debian's libtorch sits in the default linker path, so it cannot be hidden. Instead, empty
    // files with its libraries' names go first on LD_LIBRARY_PATH: the linker takes them and fails
    // ("file too short"), as it would with a missing or foreign libtorch.
    const system = findLibtorch(ROOT, {}).find((l) => l.source === 'system');
    if (!system) return t.skip('no system libtorch to shadow');
    const stubs = path.join(work, 'stubs');
    fs.mkdirSync(stubs, { recursive: true });
    for (const f of fs.readdirSync(system.info.libDir).filter((f) => /^lib(c10|torch|torch_cpu)\.so/.test(f))) {
      fs.writeFileSync(path.join(stubs, f), '');
    }
    const r = doctor(['--json', '--model', model], { LD_LIBRARY_PATH: stubs });
    assert.equal(r.status, 1);
    const { addon, libtorch, model: m } = r.json.checks;
    assert.equal(addon.status, 'fail');
    assert.match(addon.data.error, /file too short/);
    assert.match(addon.fix, /npx videomae setup/);
    assert.match(addon.fix, /apt-get install libtorch-dev libopenblas0-pthread/);
    assert.equal(libtorch.status, 'fail');
    assert.equal(libtorch.data.found[0].libDir, stubs, 'the stubs are what the linker finds first');
    assert.equal(m.status, 'info', 'the model exists but cannot be loaded without the addon');
  });
});
