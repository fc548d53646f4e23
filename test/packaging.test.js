'use strict';
// The npm package: what `npm pack` ships (one folder per libtorch flavor), that `prepack` refuses to
// pack without the prebuilds, and that the tarball installed into a fresh project, with no compiler
// or cmake on PATH, sets up libtorch 2.13 from the official wheel, loads the torch2.13-cpu prebuild
// and classifies. The torch2.13-cpu prebuild is built first (scripts/prebuild.js, several minutes)
// unless it exists.
const assert = require('node:assert/strict');
const { execFileSync, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { after, before, test } = require('node:test');

const ROOT = path.join(__dirname, '..');
const { listFlavors, flavorBinary } = require('../lib/setup/prebuilds');
const { tinyModel } = require('./helpers/fixtures');
const { SETUP_CACHE, missingWheels, pinOf, sharedLibtorch, wheelDir } = require('./helpers/libtorch');

const NPM = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const DEMO_MODEL = 'models/demo/videomae-demo-motion.pt';
/** Everything but the demo model and the prebuilds must fit in this. */
const CODE_BUDGET = 5 * 1024 * 1024;
const PLATFORM = `${process.platform}-${process.arch}`;

const ALLOWED = [
  /^package\.json$/, /^(README\.md|LICENSE|CHANGELOG\.md)$/, /^binding\.d\.ts$/, /^CMakeLists\.txt$/,
  /^cmake\/[^/]+\.cmake$/, /^native\/(core|addon)\/[^/]+\.(cc|h)$/, /^lib\/.+\.(js|d\.ts)$/,
  /^prebuilds\/torch\d+\.\d+-[a-z0-9.]+\/prebuilds\/[a-z0-9]+-[a-z0-9]+\/node\.napi(\.[a-z]+)*\.(node|json)$/,
  /^scripts\/[^/]+\.py$/, /^scripts\/prebuild(-shim)?\.js$/, new RegExp(`^${DEMO_MODEL.replace(/[./]/g, '\\$&')}$`),
];

const TAG = 'torch2.13-cpu';
const prebuild = path.join(ROOT, 'prebuilds', TAG, 'prebuilds', PLATFORM, 'node.napi.glibc.node');
const skip = missingWheels('cpu');

let work;
before(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'vmae-pack-'));
});
after(() => work && fs.rmSync(work, { recursive: true, force: true }));

function npm(args, options = {}) {
  return execFileSync(NPM, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 << 20, ...options });
}

test('npm pack ships lib, the flavor folders, the exporter and the native sources, nothing else', { skip, timeout: 20 * 60_000 }, async () => {
  if (!fs.existsSync(prebuild)) {
    const lt = (await sharedLibtorch('cpu', path.join(work, 'build-link', 'libtorch'))).dir;
    const r = spawnSync(process.execPath, [path.join(ROOT, 'scripts', 'prebuild.js'), '--libtorch', lt],
      { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 18 * 60_000 });
    assert.equal(r.status, 0, `scripts/prebuild.js failed:\n${r.stdout}\n${r.stderr}`);
  }
  assert.ok(fs.existsSync(prebuild), `${prebuild} was not built`);

  const [pack] = JSON.parse(npm(['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: ROOT }));
  const files = pack.files.map((f) => f.path).sort();
  const unexpected = files.filter((f) => !ALLOWED.some((re) => re.test(f)));
  assert.deepEqual(unexpected, [], 'files outside the allowed set');
  assert.ok(!files.some((f) => /^(test|bench|build|build-prebuild|node_modules|libtorch)\//.test(f)));
  assert.ok(!files.some((f) => f.endsWith('.ts') && !f.endsWith('.d.ts')), 'TypeScript sources stay out');
  const required = ['package.json', 'README.md', 'LICENSE', 'CHANGELOG.md', 'binding.d.ts', 'CMakeLists.txt',
    'cmake/FindLibtorch.cmake', 'lib/index.js', 'lib/index.d.ts', 'lib/cli.js', 'lib/native.js', 'lib/setup/index.js',
    'native/addon/addon.cc', 'native/core/classifier.cc', 'scripts/export_videomae.py', 'scripts/prebuild.js', 'scripts/prebuild-shim.js'];
  for (const f of listFlavors(ROOT)) {
    const binary = flavorBinary(f);
    if (binary) required.push(path.relative(ROOT, binary), path.relative(ROOT, binary).replace(/\.node$/, '.json'));
  }
  if (fs.existsSync(path.join(ROOT, DEMO_MODEL))) required.push(DEMO_MODEL);
  assert.deepEqual(required.filter((f) => !files.includes(f)), [], 'missing from the package');

  const model = pack.files.find((f) => f.path === DEMO_MODEL)?.size ?? 0;
  const prebuilt = pack.files.filter((f) => f.path.startsWith('prebuilds/')).reduce((n, f) => n + f.size, 0);
  assert.ok(pack.unpackedSize - model - prebuilt <= CODE_BUDGET,
    `the package without the demo model and prebuilds is ${pack.unpackedSize - model - prebuilt} bytes, over the ${CODE_BUDGET} budget`);
});

test('prepack refuses to pack without the prebuilds, naming the missing flavors', () => {
  const dir = path.join(work, 'no-prebuilds');
  fs.mkdirSync(dir);
  for (const f of ['package.json', 'lib', 'scripts']) fs.cpSync(path.join(ROOT, f), path.join(dir, f), { recursive: true });
  fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'));
  const r = spawnSync(NPM, ['pack', '--dry-run', '--json'], { cwd: dir, encoding: 'utf8' });
  assert.notEqual(r.status, 0, 'npm pack must fail');
  const want = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')).videomae.flavors;
  assert.ok(want.length >= 3, 'package.json lists the flavors');
  assert.match(r.stderr, /refusing to pack without the prebuilds: missing /);
  for (const tag of want) assert.ok(r.stderr.includes(tag), `${tag} named in:\n${r.stderr}`);
});

test('the tarball installs without a compiler, sets up libtorch 2.13 from the wheel, loads torch2.13-cpu and classifies', { skip, timeout: 20 * 60_000 }, () => {
  assert.ok(fs.existsSync(prebuild), 'the previous test builds the prebuild');
  const model = tinyModel().model;
  const tarball = path.join(work, JSON.parse(npm(['pack', '--json', '--ignore-scripts', '--pack-destination', work], { cwd: ROOT }))[0].filename);

  // PATH holds node and npm only: no cmake, no compiler, no python.
  const bin = path.join(work, 'bin');
  fs.mkdirSync(bin);
  fs.symlinkSync(process.execPath, path.join(bin, 'node'));
  const npmCli = fs.realpathSync(execFileSync('sh', ['-c', 'command -v npm'], { encoding: 'utf8' }).trim());
  fs.symlinkSync(npmCli, path.join(bin, 'npm'));
  const env = { ...process.env, PATH: bin };
  delete env.VIDEOMAE_NATIVE_PATH;
  delete env.LD_LIBRARY_PATH;
  for (const tool of ['cmake', 'c++', 'g++', 'gcc', 'cc', 'clang', 'make', 'ninja']) {
    const r = spawnSync(tool, ['--version'], { env });
    assert.equal(r.error?.code, 'ENOENT', `${tool} is reachable on the test PATH`);
  }

  const app = path.join(work, 'app');
  fs.mkdirSync(app);
  fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true }));
  npm(['install', tarball, '--prefer-offline', '--ignore-scripts', '--no-audit', '--no-fund'], { cwd: app, env });
  const installed = path.join(app, 'node_modules', 'videomae-node');
  assert.ok(!fs.existsSync(path.join(installed, 'build')), 'no source build in the installed package');

  // The installed CLI sets up libtorch offline from the official wheel (the shared test cache has it
  // unpacked already, so this verifies the pin and relinks) as ./libtorch of the installed package.
  const wheel = path.join(wheelDir(pinOf('cpu').torch.file), pinOf('cpu').torch.file);
  const setupRun = spawnSync(path.join(app, 'node_modules', '.bin', 'videomae'), ['setup', '--from', wheel],
    { cwd: app, env: { ...env, VIDEOMAE_CACHE_DIR: SETUP_CACHE }, encoding: 'utf8', timeout: 600_000 });
  assert.equal(setupRun.status, 0, setupRun.stderr);
  assert.match(setupRun.stdout, /libtorch 2\.13\.0 \(cpu\) is ready in [\s\S]*The prebuilt torch2\.13-cpu binary will use it/);
  assert.ok(fs.lstatSync(path.join(installed, 'libtorch')).isSymbolicLink());

  fs.writeFileSync(path.join(app, 'classify.js'), `
    const { VideoClassifier, Tensor } = require('videomae-node');
    const { nativeInfo } = require('videomae-node/lib/native');
    (async () => {
      const c = await VideoClassifier.load(process.argv[2]);
      const r = await c.classify(Tensor.fromBuffer(new Float32Array(4 * 3 * 32 * 32), [4, 3, 32, 32]));
      console.log(JSON.stringify({ info: nativeInfo(), predictions: r.predictions, logits: Array.from(r.logits) }));
      await c.dispose();
    })();`);
  const r = spawnSync(process.execPath, ['classify.js', model], { cwd: app, env, encoding: 'utf8', timeout: 120_000 });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.equal(out.info.kind, 'prebuild');
  assert.equal(out.info.flavor, TAG);
  assert.equal(out.info.path, path.join(installed, path.relative(ROOT, prebuild)));
  assert.equal(out.info.libtorch.version, '2.13.0');
  assert.equal(out.predictions.length, 5);
  assert.ok(out.logits.every(Number.isFinite));

  const doctor = spawnSync(path.join(app, 'node_modules', '.bin', 'videomae'), ['doctor', '--json', '--model', model],
    { cwd: app, env, encoding: 'utf8', timeout: 300_000 });
  const report = JSON.parse(doctor.stdout);
  assert.equal(report.checks.addon.data.kind, 'prebuild');
  assert.equal(report.checks.addon.data.flavor, TAG);
  assert.equal(report.checks.libtorch.data.flavor, TAG);
  assert.equal(report.checks.libtorch.data.loaded.version, '2.13.0');
  assert.equal(report.checks.model.status, 'ok');
  assert.equal(doctor.status, 0, doctor.stdout);
});
