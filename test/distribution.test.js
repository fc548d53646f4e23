'use strict';
// The loader (lib/native.ts): prebuild tags, libtorch detection, and which binary it picks. Each
// loader scenario runs in a child process against a throwaway copy of the package, with the real
// addon copied in as a source build and/or prebuild under various names.
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { after, describe, test } = require('node:test');

const ROOT = path.join(__dirname, '..');
const { describeLibtorch, findLibtorch, libDirFromMaps } = require('../lib/setup/libtorch');
const { parsePrebuildName, prebuildMatches, prebuildName } = require('../lib/setup/prebuilds');

const PLATFORM = `${process.platform}-${process.arch}`;
const temps = [];
function tmp(prefix) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  temps.push(dir);
  return dir;
}
after(() => temps.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

function touch(file, content = '') {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, content);
}

describe('prebuild names', () => {
  test('encode libtorch major.minor and flavor, and parse back', () => {
    assert.equal(prebuildName('2.5.1', 'cu124'), 'videomae.node.napi.torch2.5-cu124.node');
    assert.equal(prebuildName('1.13.0', 'cpu'), 'videomae.node.napi.torch1.13-cpu.node');
    assert.deepEqual(parsePrebuildName('videomae.node.napi.torch2.5-cu124.node'), { torch: '2.5', flavor: 'cu124' });
    assert.equal(parsePrebuildName('videomae.node.napi.node'), undefined);
    assert.equal(parsePrebuildName('videomae.node.napi.torch2.5-cu124.json'), undefined);
    assert.throws(() => prebuildName('nightly', 'cpu'), /Expected a libtorch version/);
  });

  test('match on major.minor and flavor only', () => {
    const p = { torch: '2.5', flavor: 'cu124' };
    assert.ok(prebuildMatches(p, { libDir: '/x', version: '2.5.1', flavor: 'cu124' }));
    assert.ok(!prebuildMatches(p, { libDir: '/x', version: '2.5.1', flavor: 'cu121' }));
    assert.ok(!prebuildMatches(p, { libDir: '/x', version: '2.6.0', flavor: 'cu124' }));
    assert.ok(!prebuildMatches(p, { libDir: '/x', version: undefined, flavor: 'cu124' }));
  });
});

describe('libtorch detection', () => {
  test('an official archive: build-version gives version and flavor', () => {
    const root = tmp('vmae-lt-');
    touch(path.join(root, 'libtorch', 'lib', 'libc10.so'));
    touch(path.join(root, 'libtorch', 'lib', 'libtorch_cuda.so'));
    touch(path.join(root, 'libtorch', 'build-version'), '2.5.1+cu124\n');
    assert.deepEqual(describeLibtorch(path.join(root, 'libtorch', 'lib')),
      { libDir: path.join(root, 'libtorch', 'lib'), version: '2.5.1', flavor: 'cu124', versionFrom: 'build-version' });
  });

  test('pip torch: torch/version.py; headers: version.h; CUDA without a suffix', () => {
    const root = tmp('vmae-lt-');
    touch(path.join(root, 'torch', 'lib', 'libtorch_cpu.so'));
    touch(path.join(root, 'torch', 'version.py'), "__version__ = '2.4.0+cpu'\ngit_version = 'abc'\n");
    assert.equal(describeLibtorch(path.join(root, 'torch', 'lib')).version, '2.4.0');
    touch(path.join(root, 'h', 'lib', 'libc10.so'));
    touch(path.join(root, 'h', 'lib', 'libtorch_cuda.so'));
    touch(path.join(root, 'h', 'include', 'torch', 'csrc', 'api', 'include', 'torch', 'version.h'),
      '#define TORCH_VERSION \\\n  "2.3.1"\n');
    assert.deepEqual(describeLibtorch(path.join(root, 'h', 'lib')),
      { libDir: path.join(root, 'h', 'lib'), version: '2.3.1', flavor: 'cuda', versionFrom: 'version.h' });
    assert.equal(describeLibtorch(root), undefined, 'a folder without libc10/libtorch_cpu');
    assert.equal(describeLibtorch(path.join(root, 'missing')), undefined);
  });

  test('a versioned soname (Debian)', () => {
    const root = tmp('vmae-lt-');
    touch(path.join(root, 'lib', 'libtorch_cpu.so.1.13.0'));
    touch(path.join(root, 'lib', 'libtorch_cpu.so.1.13'));
    touch(path.join(root, 'lib', 'libc10.so.1.13'));
    assert.deepEqual(describeLibtorch(path.join(root, 'lib')),
      { libDir: path.join(root, 'lib'), version: '1.13.0', flavor: 'cpu', versionFrom: 'soname' });
  });

  test('search order: LD_LIBRARY_PATH, then the package\'s ./libtorch, then the system', () => {
    const root = tmp('vmae-pkg-');
    const extra = tmp('vmae-ld-');
    touch(path.join(extra, 'libc10.so'));
    touch(path.join(root, 'libtorch', 'lib', 'libc10.so'));
    touch(path.join(root, 'libtorch', 'build-version'), '2.5.1+cpu');
    const found = findLibtorch(root, { LD_LIBRARY_PATH: `/nonexistent:${extra}` });
    assert.deepEqual(found.slice(0, 2).map((f) => [f.source, f.info.libDir]),
      [['LD_LIBRARY_PATH', extra], ['package ./libtorch', path.join(root, 'libtorch', 'lib')]]);
    assert.ok(found.slice(2).every((f) => f.source === 'system'));
  });

  test('the libtorch a process mapped, from /proc/<pid>/maps', () => {
    const maps = [
      '7f00-7f01 r--p 00000000 08:01 1 /usr/lib/x86_64-linux-gnu/libc.so.6',
      '7f02-7f03 r-xp 00000000 08:01 2 /opt/libtorch/lib/libc10.so',
      '7f04-7f05 r-xp 00000000 08:01 3 /opt/libtorch/lib/libtorch_cpu.so',
    ].join('\n');
    assert.equal(libDirFromMaps(maps), '/opt/libtorch/lib');
    assert.equal(libDirFromMaps('7f00-7f01 r--p 00000000 08:01 1 /usr/lib/libc.so.6\n'), undefined);
  });
});

// --- the loader, against copies of the package -------------------------------------------------

// A binary that loads here, and the libtorch it loads: the repository's prebuild or source build.
const systemTorch = findLibtorch(ROOT)[0];
const binary = [
  systemTorch && path.join(ROOT, 'prebuilds', PLATFORM, prebuildName(systemTorch.info.version ?? '0.0', systemTorch.info.flavor)),
  path.join(ROOT, 'build', 'Release', 'videomae.node'),
].find((f) => f && fs.existsSync(f));
const skip = !binary || !systemTorch?.info.version ? 'needs a built addon and a libtorch with a known version' : false;

/** A copy of the package: lib/, package.json, and the given files (relative path -> source file or text). */
function fakePackage(files) {
  const dir = tmp('vmae-fakepkg-');
  fs.cpSync(path.join(ROOT, 'lib'), path.join(dir, 'lib'), { recursive: true, filter: (f) => !f.endsWith('.ts') || f.endsWith('.d.ts') });
  fs.copyFileSync(path.join(ROOT, 'package.json'), path.join(dir, 'package.json'));
  fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'));
  for (const [rel, src] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
    if (src.startsWith('/')) fs.copyFileSync(src, path.join(dir, rel));
    else fs.writeFileSync(path.join(dir, rel), src);
  }
  return dir;
}

/** Runs native() of the package at `dir` in a child; returns { info, attempts, runtime } or { error }. */
function load(dir, env = {}) {
  const script = `
    const n = require(${JSON.stringify(path.join(dir, 'lib', 'native.js'))});
    try {
      const runtime = n.native().runtimeInfo();
      console.log(JSON.stringify({ info: n.nativeInfo(), attempts: n.nativeAttempts(), runtime }));
    } catch (e) {
      console.log(JSON.stringify({ error: { code: e.code, message: e.message, name: e.name }, attempts: n.nativeAttempts() }));
    }`;
  const childEnv = { ...process.env, ...env };
  if (!('VIDEOMAE_NATIVE_PATH' in env)) delete childEnv.VIDEOMAE_NATIVE_PATH;
  const r = spawnSync(process.execPath, ['-e', script], { cwd: dir, env: childEnv, encoding: 'utf8', timeout: 120_000 });
  assert.equal(r.status, 0, `child failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop());
}

const tag = systemTorch && `torch${systemTorch.info.version?.split('.').slice(0, 2).join('.')}-${systemTorch.info.flavor}`;
const nameFor = (t) => `prebuilds/${PLATFORM}/videomae.node.napi.${t}.node`;

describe('loader', { skip }, () => {
  test('picks the prebuild whose tag matches the libtorch found, and reports it', () => {
    const dir = fakePackage({
      [nameFor(tag)]: binary,
      [nameFor('torch0.1-cpu')]: binary,
    });
    const r = load(dir);
    assert.ok(!r.error, r.error?.message);
    assert.equal(r.info.kind, 'prebuild');
    assert.equal(r.info.path, path.join(dir, nameFor(tag)));
    assert.equal(r.info.libtorch.version, systemTorch.info.version);
    // It stops at the first binary that loads.
    assert.deepEqual(r.attempts.map((a) => [a.kind, a.ok]), [['source', false], ['prebuild', true]]);
    assert.match(r.attempts[0].reason, /not built/);
  });

  test('a source build wins over a prebuild; a broken one falls back to the prebuild', () => {
    const both = fakePackage({ 'build/Release/videomae.node': binary, [nameFor(tag)]: binary });
    assert.equal(load(both).info.kind, 'source');
    const broken = fakePackage({ 'build/Release/videomae.node': 'not an ELF file', [nameFor(tag)]: binary });
    const r = load(broken);
    assert.equal(r.info.kind, 'prebuild');
    assert.equal(r.attempts[0].ok, false);
    assert.match(r.attempts[0].reason, /invalid ELF header|too short|not a valid/i);
  });

  test('a prebuild that maps a libtorch other than its tag says is refused', () => {
    // ./libtorch claims 9.9 (so the torch9.9 prebuild is tried), but the binary's libraries are not
    // there, so the linker falls through to the system libtorch: the child's maps expose it.
    const dir = fakePackage({
      [nameFor('torch9.9-cpu')]: binary,
      'libtorch/lib/libc10.so': '',
      'libtorch/build-version': '9.9.0+cpu\n',
    });
    const r = load(dir);
    assert.equal(r.error?.code, 'VMAE_NATIVE_UNAVAILABLE');
    const attempt = r.attempts.find((a) => a.kind === 'prebuild');
    assert.equal(attempt.ok, false);
    assert.match(attempt.reason, new RegExp(`built for torch9\\.9-cpu but loaded libtorch ${systemTorch.info.version.replace(/\./g, '\\.')}`));
  });

  test('nothing loadable: VMAE_NATIVE_UNAVAILABLE with what was tried and the possible solutions', () => {
    const dir = fakePackage({ [nameFor(tag)]: 'garbage', [nameFor('torch0.1-cpu')]: binary });
    const r = load(dir);
    assert.equal(r.error.code, 'VMAE_NATIVE_UNAVAILABLE');
    assert.deepEqual(r.attempts.map((a) => [a.kind, a.ok]), [['source', false], ['prebuild', false], ['prebuild', false]]);
    assert.match(r.attempts[1].reason, /invalid ELF header|too short/);
    assert.match(r.attempts[2].reason, /built for torch0\.1-cpu; libtorch found: /, 'a prebuild for another libtorch is not even tried');
    assert.equal(r.error.name, 'VideoMAEError');
    const m = r.error.message;
    for (const want of ['Tried:', 'source', 'not built', nameFor(tag), 'libtorch the linker can reach', 'Possible solutions',
      'npx videomae setup', 'apt-get install libtorch-dev libopenblas0-pthread', 'LIBTORCH=', 'npm run build', 'npx videomae doctor']) {
      assert.ok(m.includes(want), `message lacks '${want}':\n${m}`);
    }
  });

  test('VIDEOMAE_NATIVE_PATH is loaded as is; a bad one fails with the fixes', () => {
    const dir = fakePackage({});
    const r = load(dir, { VIDEOMAE_NATIVE_PATH: binary });
    assert.deepEqual([r.info.kind, r.info.path], ['env', binary]);
    const bad = load(dir, { VIDEOMAE_NATIVE_PATH: '/nonexistent/videomae.node' });
    assert.equal(bad.error.code, 'VMAE_NATIVE_UNAVAILABLE');
    assert.match(bad.error.message, /VIDEOMAE_NATIVE_PATH=\/nonexistent\/videomae\.node[\s\S]*Possible solutions/);
  });
});
