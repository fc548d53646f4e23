'use strict';
// The loader (lib/native.ts) and the flavor folders (lib/setup/prebuilds.ts): flavor tags, libtorch
// detection, the verdict on what a child process mapped, and which binary the loader picks. Each
// loader scenario runs in a child process against a throwaway copy of the package, with the real
// torch2.13-cpu prebuild copied in as a source build and/or prebuild, and the real libtorch 2.13 from
// the official wheel (test/helpers/libtorch.js). The CUDA flavor, with its libtorch and nvidia-*
// wheels set up, is loaded on this GPU-less machine at the end.
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { after, before, describe, test } = require('node:test');

const ROOT = path.join(__dirname, '..');
const { describeLibtorch, findLibtorch, libDirFromMaps, mappedLibtorch } = require('../lib/setup/libtorch');
const { flavorMatches, flavorTag, listFlavors, flavorBinary, parseFlavorTag } = require('../lib/setup/prebuilds');
const { judgeProbe } = require('../lib/native');
const { missingWheels, sharedLibtorch } = require('./helpers/libtorch');
const { tinyModel } = require('./helpers/fixtures');

const PLATFORM = `${process.platform}-${process.arch}`;
const BINARY = 'node.napi.glibc.node';
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

describe('flavor folders', () => {
  test('tags encode libtorch major.minor and flavor, and parse back', () => {
    assert.equal(flavorTag('2.14.1', 'cu130'), 'torch2.14-cu130');
    assert.equal(flavorTag('1.13.0', 'cpu'), 'torch1.13-cpu');
    assert.deepEqual(parseFlavorTag('torch2.14-cu130'), { torch: '2.14', flavor: 'cu130' });
    assert.equal(parseFlavorTag('linux-x64'), undefined);
    assert.throws(() => flavorTag('nightly', 'cpu'), /Expected a libtorch version/);
  });

  test('match on major.minor and flavor only', () => {
    const f = { torch: '2.14', flavor: 'cu130' };
    assert.ok(flavorMatches(f, { libDir: '/x', version: '2.14.1', flavor: 'cu130' }));
    assert.ok(!flavorMatches(f, { libDir: '/x', version: '2.14.1', flavor: 'cu126' }));
    assert.ok(!flavorMatches(f, { libDir: '/x', version: '2.13.0', flavor: 'cu130' }));
    assert.ok(!flavorMatches(f, { libDir: '/x', version: undefined, flavor: 'cu130' }));
  });

  test('node-gyp-build picks the binary inside a flavor folder, and only there', () => {
    const root = tmp('vmae-flavors-');
    touch(path.join(root, 'prebuilds', 'torch2.13-cpu', 'prebuilds', PLATFORM, BINARY), 'x');
    touch(path.join(root, 'prebuilds', 'torch2.14-cu130', 'prebuilds', 'win32-x64', 'node.napi.node'), 'x');
    touch(path.join(root, 'prebuilds', 'not-a-flavor', 'prebuilds', PLATFORM, BINARY), 'x');
    const flavors = listFlavors(root);
    assert.deepEqual(flavors.map((f) => f.tag), ['torch2.13-cpu', 'torch2.14-cu130']);
    assert.equal(flavorBinary(flavors[0]), path.join(root, 'prebuilds', 'torch2.13-cpu', 'prebuilds', PLATFORM, BINARY));
    assert.equal(flavorBinary(flavors[1]), undefined, 'no binary for this platform');
  });
});

describe('the verdict on what the child mapped', () => {
  const base = { files: [], from: 'child' };
  test('one folder whose major.minor is the compiled one passes', () => {
    const root = tmp('vmae-lt-');
    touch(path.join(root, 'lib', 'libc10.so'));
    touch(path.join(root, 'version.py'), "__version__ = '2.13.0+cpu'\n");
    const r = judgeProbe({ ...base, dirs: [path.join(root, 'lib')], libtorchVersion: '2.13.0' }, { tag: 'torch2.13-cpu', torch: '2.13', flavor: 'cpu' });
    assert.equal(r.ok, true, r.reason);
    assert.equal(r.libtorch.version, '2.13.0');
    const other = judgeProbe({ ...base, dirs: [path.join(root, 'lib')], libtorchVersion: '2.14.1' });
    assert.match(other.reason, new RegExp(`compiled against libtorch 2\\.14\\.1 but maps libtorch 2\\.13\\.0 from ${path.join(root, 'lib')}`));
    const flavor = judgeProbe({ ...base, dirs: [path.join(root, 'lib')], libtorchVersion: '2.13.1' }, { tag: 'torch2.13-cu130', torch: '2.13', flavor: 'cu130' });
    assert.match(flavor.reason, /built for torch2\.13-cu130 but loaded libtorch 2\.13\.0 \(cpu\)/);
  });

  test('two folders are a mix, refused naming both', () => {
    const r = judgeProbe({ ...base, dirs: ['/a/lib', '/usr/lib/x86_64-linux-gnu'], libtorchVersion: '2.13.0' });
    assert.equal(r.ok, false);
    assert.match(r.reason, /maps libtorch from 2 folders: \/a\/lib, \/usr\/lib\/x86_64-linux-gnu\. That is a mix/);
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
    assert.deepEqual(mappedLibtorch(maps), { dirs: ['/opt/libtorch/lib'], files: ['/opt/libtorch/lib/libc10.so', '/opt/libtorch/lib/libtorch_cpu.so'] });
  });

  test('every libtorch folder a process mapped: a mix shows as two folders', () => {
    const maps = [
      '7f02-7f03 r-xp 00000000 08:01 2 /usr/lib/x86_64-linux-gnu/libc10.so.1.13',
      '7f04-7f05 r-xp 00000000 08:01 3 /opt/torch/lib/libtorch_cpu.so',
      '7f06-7f07 r-xp 00000000 08:01 4 /opt/torch/lib/libc10_cuda.so',
      '7f08-7f09 r-xp 00000000 08:01 5 /opt/torch/lib/libtorch_python.so',
      '7f0a-7f0b r-xp 00000000 08:01 6 /usr/lib/libtorchaudio.so',
    ].join('\n');
    assert.deepEqual(mappedLibtorch(maps).dirs, ['/opt/torch/lib', '/usr/lib/x86_64-linux-gnu']);
  });
});

// --- the loader, against copies of the package -------------------------------------------------

const flavorFile = (tag) => path.join('prebuilds', tag, 'prebuilds', PLATFORM, BINARY);
const PREBUILD_213 = path.join(ROOT, flavorFile('torch2.13-cpu'));
const PREBUILD_CUDA = path.join(ROOT, flavorFile('torch2.14-cu130'));
const skip213 = !fs.existsSync(PREBUILD_213) ? 'no torch2.13-cpu prebuild (npm run prebuild:all)' : missingWheels('cpu');
const skipCuda = !fs.existsSync(PREBUILD_CUDA) ? 'no torch2.14-cu130 prebuild (npm run prebuild:all)' : missingWheels('cu130');

/** A copy of the package: lib/, package.json, and the given files (relative path -> source file, link or text). */
function fakePackage(files) {
  const dir = tmp('vmae-fakepkg-');
  fs.cpSync(path.join(ROOT, 'lib'), path.join(dir, 'lib'), { recursive: true, filter: (f) => !f.endsWith('.ts') || f.endsWith('.d.ts') });
  fs.copyFileSync(path.join(ROOT, 'package.json'), path.join(dir, 'package.json'));
  fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'));
  for (const [rel, src] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
    if (typeof src === 'object') fs.symlinkSync(src.link, path.join(dir, rel));
    else if (src.startsWith('/')) fs.copyFileSync(src, path.join(dir, rel));
    else fs.writeFileSync(path.join(dir, rel), src);
  }
  return dir;
}

let verdictCache; // VIDEOMAE_CACHE_DIR of the loader children: a fresh one per suite

/** Runs native() of the package at `dir` in a child; returns { info, attempts, runtime } or { error }. */
function load(dir, env = {}, extra = '') {
  const script = `
    const n = require(${JSON.stringify(path.join(dir, 'lib', 'native.js'))});
    (async () => {
      try {
        const runtime = n.native().runtimeInfo();
        const out = { info: n.nativeInfo(), attempts: n.nativeAttempts(), runtime };
        ${extra}
        console.log(JSON.stringify(out));
      } catch (e) {
        console.log(JSON.stringify({ error: { code: e.code, message: e.message, name: e.name }, attempts: n.nativeAttempts() }));
      }
    })();`;
  const childEnv = { ...process.env, VIDEOMAE_CACHE_DIR: verdictCache, ...env };
  for (const k of ['VIDEOMAE_NATIVE_PATH', 'LD_PRELOAD', 'LD_LIBRARY_PATH']) if (!(k in env)) delete childEnv[k];
  const r = spawnSync(process.execPath, ['-e', script], { cwd: dir, env: childEnv, encoding: 'utf8', timeout: 300_000 });
  assert.equal(r.status, 0, `child failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop());
}

describe('loader', { skip: skip213 }, () => {
  let lt; // the libtorch 2.13 folder from the official wheel (torch/ of the install)
  before(async () => {
    verdictCache = tmp('vmae-verdicts-');
    lt = (await sharedLibtorch('cpu', path.join(tmp('vmae-link-'), 'libtorch'))).dir;
  });

  test('picks the flavor whose tag matches ./libtorch, reports the mapped libtorch; the verdict is cached', () => {
    const dir = fakePackage({
      [flavorFile('torch2.13-cpu')]: PREBUILD_213,
      [flavorFile('torch0.1-cpu')]: PREBUILD_213,
      libtorch: { link: lt },
    });
    const r = load(dir);
    assert.ok(!r.error, r.error?.message);
    assert.equal(r.info.kind, 'prebuild');
    assert.equal(r.info.flavor, 'torch2.13-cpu');
    assert.equal(r.info.path, path.join(dir, flavorFile('torch2.13-cpu')));
    assert.deepEqual(r.info.mapped, [fs.realpathSync(path.join(lt, 'lib'))], 'one libtorch folder, the one setup installed');
    assert.equal(r.info.libtorch.version, '2.13.0');
    assert.equal(r.info.compiledAgainst, '2.13.0');
    assert.equal(r.runtime.libtorchVersion, '2.13.0');
    assert.equal(r.info.verified, 'child');
    assert.deepEqual(r.attempts.map((a) => [a.kind, a.ok]), [['source', false], ['prebuild', true]]);
    assert.match(r.attempts[0].reason, /not built/);

    assert.equal(load(dir).info.verified, 'cache', 'the second process reuses the passed verdict');
    const other = load(dir, { LD_LIBRARY_PATH: '/nonexistent' });
    assert.equal(other.info.verified, 'child', 'another linker environment is checked afresh');
  });

  test('a source build wins over a prebuild and is test-loaded in a child too; a broken one falls back', () => {
    const both = fakePackage({ 'build/Release/videomae.node': PREBUILD_213, [flavorFile('torch2.13-cpu')]: PREBUILD_213, libtorch: { link: lt } });
    const env = { LD_LIBRARY_PATH: path.join(lt, 'lib') };
    const s = load(both, env);
    assert.equal(s.info.kind, 'source');
    assert.equal(s.info.flavor, 'torch2.13-cpu', 'a source build is named by the libtorch it maps');
    assert.equal(s.info.verified, 'child');
    const broken = fakePackage({ 'build/Release/videomae.node': 'not an ELF file', [flavorFile('torch2.13-cpu')]: PREBUILD_213, libtorch: { link: lt } });
    const r = load(broken);
    assert.equal(r.info.kind, 'prebuild');
    assert.equal(r.attempts[0].ok, false);
    assert.match(r.attempts[0].reason, /invalid ELF header|too short|not a valid/i);
  });

  test('a libtorch mix (LD_PRELOAD of Debian\'s libc10 1.13) aborts only the child: the parent gets the error naming the folders', (t) => {
    const debian = '/usr/lib/x86_64-linux-gnu/libc10.so.1.13';
    if (!fs.existsSync(debian)) return t.skip(`no ${debian}`);
    const dir = fakePackage({ 'build/Release/videomae.node': PREBUILD_213, [flavorFile('torch2.13-cpu')]: PREBUILD_213, libtorch: { link: lt } });
    const r = load(dir, { LD_PRELOAD: debian, LD_LIBRARY_PATH: path.join(lt, 'lib') });
    assert.equal(r.error?.code, 'VMAE_NATIVE_UNAVAILABLE', JSON.stringify(r));
    assert.deepEqual(r.attempts.map((a) => [a.kind, a.ok]), [['source', false], ['prebuild', false]]);
    for (const a of r.attempts) {
      assert.match(a.reason, /crashed \(SIGABRT\)|maps libtorch from 2 folders/, a.reason);
      assert.ok(a.reason.includes('/usr/lib/x86_64-linux-gnu'), a.reason);
    }
    assert.match(r.error.message, /Possible solutions/);
  });

  test('a prebuild that maps a libtorch other than its flavor is refused', () => {
    // ./libtorch claims 9.9 (so the torch9.9 prebuild is tried), but its lib/ is the real 2.13.
    const dir = fakePackage({
      [flavorFile('torch9.9-cpu')]: PREBUILD_213,
      'libtorch/lib': { link: path.join(lt, 'lib') },
      'libtorch/build-version': '9.9.0+cpu\n',
    });
    const r = load(dir);
    assert.equal(r.error?.code, 'VMAE_NATIVE_UNAVAILABLE');
    const attempt = r.attempts.find((a) => a.kind === 'prebuild');
    assert.equal(attempt.ok, false);
    assert.match(attempt.reason, /built for torch9\.9-cpu but loaded libtorch 2\.13\.0 \(cpu\)/);
  });

  test('nothing loadable: VMAE_NATIVE_UNAVAILABLE with what was tried and the possible solutions', () => {
    const dir = fakePackage({ [flavorFile('torch2.13-cpu')]: 'garbage', [flavorFile('torch0.1-cpu')]: PREBUILD_213, libtorch: { link: lt } });
    const r = load(dir);
    assert.equal(r.error.code, 'VMAE_NATIVE_UNAVAILABLE');
    assert.deepEqual(r.attempts.map((a) => [a.kind, a.flavor, a.ok]), [['source', undefined, false], ['prebuild', 'torch2.13-cpu', false], ['prebuild', 'torch0.1-cpu', false]]);
    assert.match(r.attempts[1].reason, /invalid ELF header|too short/);
    assert.match(r.attempts[2].reason, /built for torch0\.1-cpu; libtorch found: /, 'a flavor for another libtorch is not even tried');
    assert.equal(r.error.name, 'VideoMAEError');
    const m = r.error.message;
    for (const want of ['Tried:', 'source', 'not built', flavorFile('torch2.13-cpu'), 'libtorch the linker can reach', 'Possible solutions',
      'npx videomae setup', 'apt-get install libtorch-dev libopenblas0-pthread', 'LIBTORCH=', 'npm run build', 'npx videomae doctor']) {
      assert.ok(m.includes(want), `message lacks '${want}':\n${m}`);
    }
  });

  test('VIDEOMAE_NATIVE_PATH is loaded as is; a bad one fails with the fixes', () => {
    const dir = fakePackage({});
    const r = load(dir, { VIDEOMAE_NATIVE_PATH: PREBUILD_213, LD_LIBRARY_PATH: path.join(lt, 'lib') });
    assert.deepEqual([r.info.kind, r.info.path, r.info.verified], ['env', PREBUILD_213, 'none']);
    const bad = load(dir, { VIDEOMAE_NATIVE_PATH: '/nonexistent/videomae.node' });
    assert.equal(bad.error.code, 'VMAE_NATIVE_UNAVAILABLE');
    assert.match(bad.error.message, /VIDEOMAE_NATIVE_PATH=\/nonexistent\/videomae\.node[\s\S]*Possible solutions/);
  });
});

describe('the CUDA flavor on a machine without a GPU', { skip: skipCuda }, () => {
  let setupResult;
  before(async () => {
    verdictCache ??= tmp('vmae-verdicts-');
    // The first run unpacks about 2.5 GB of wheels into test/.cache/setup; later runs hit the cache.
    setupResult = await sharedLibtorch('cu130', path.join(tmp('vmae-link-'), 'libtorch'));
  });

  test('setup laid out torch/ and nvidia/ so that libtorch_cuda\'s RPATH resolves', () => {
    const root = path.dirname(setupResult.dir);
    assert.equal(setupResult.libtorch.flavor, 'cu130');
    assert.equal(setupResult.libtorch.version, '2.14.1');
    for (const sub of ['cu13', 'cudnn', 'nccl', 'nvshmem', 'cusparselt']) assert.ok(fs.existsSync(path.join(root, 'nvidia', sub, 'lib')), sub);
    const rpath = spawnSync('readelf', ['-d', path.join(setupResult.dir, 'lib', 'libtorch_cuda.so')], { encoding: 'utf8' }).stdout;
    for (const entry of rpath.match(/\$ORIGIN\/\.\.\/\.\.\/nvidia\/[a-z0-9]+\/lib/g)) {
      assert.ok(fs.existsSync(entry.replace('$ORIGIN', path.join(setupResult.dir, 'lib'))), entry);
    }
  });

  test('it loads, says it is the CUDA flavor, and device: \'cuda\' rejects with VMAE_DEVICE_UNAVAILABLE', () => {
    const dir = fakePackage({ [flavorFile('torch2.14-cu130')]: PREBUILD_CUDA, libtorch: { link: setupResult.dir } });
    const model = tinyModel().model;
    const r = load(dir, {}, `
      const { VideoClassifier } = require(${JSON.stringify(path.join(dir, 'lib', 'index.js'))});
      try {
        await VideoClassifier.load(${JSON.stringify(model)}, { device: 'cuda' });
        out.cuda = 'loaded';
      } catch (e) {
        out.cuda = { code: e.code, message: e.message };
      }`);
    assert.ok(!r.error, r.error?.message);
    assert.equal(r.info.flavor, 'torch2.14-cu130');
    assert.equal(r.info.libtorch.flavor, 'cu130');
    assert.deepEqual(r.info.mapped, [fs.realpathSync(path.join(setupResult.dir, 'lib'))]);
    assert.equal(r.runtime.cudaCompiled, true);
    assert.equal(r.runtime.cudaAvailable, false);
    assert.equal(r.cuda.code, 'VMAE_DEVICE_UNAVAILABLE', JSON.stringify(r.cuda));

    const doctor = spawnSync(process.execPath, [path.join(dir, 'lib', 'cli.js'), 'doctor', '--json', '--model', model],
      { env: { ...process.env, VIDEOMAE_CACHE_DIR: verdictCache, VIDEOMAE_NATIVE_PATH: '' }, encoding: 'utf8', timeout: 300_000 });
    const report = JSON.parse(doctor.stdout);
    assert.equal(report.checks.addon.data.flavor, 'torch2.14-cu130');
    assert.equal(report.checks.libtorch.data.flavor, 'torch2.14-cu130');
    assert.match(report.checks.gpu.summary, /can use CUDA, but no NVIDIA GPU is visible.*VMAE_DEVICE_UNAVAILABLE/);
  });
});
