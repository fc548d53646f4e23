#!/usr/bin/env node
// Builds the addon and stores it as a prebuild for the libtorch it was built against:
//   prebuilds/<platform>-<arch>/videomae.node.napi.torch<major.minor>-<flavor>.node
//   prebuilds/<platform>-<arch>/videomae.node.napi.torch<major.minor>-<flavor>.json   (PrebuildSidecar)
//
// Usage: npm run build:prebuild [-- <cmake-js options, e.g. --CDLIBTORCH=/opt/libtorch>]
// libtorch is found as for any build (cmake/FindLibtorch.cmake). The build happens in
// build-prebuild/ (VMAE_PREBUILD_BUILD_DIR overrides), never in build/. Needs lib/ compiled
// (npm run build:ts): the tag comes from lib/setup/libtorch.js, the code the loader uses.
'use strict';

const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const root = path.join(__dirname, '..');
const buildDir = path.resolve(process.env.VMAE_PREBUILD_BUILD_DIR || path.join(root, 'build-prebuild'));

function die(message) {
  process.stderr.write(`prebuild: ${message}\n`);
  process.exit(1);
}

function run(command, args, options = {}) {
  process.stderr.write(`prebuild: ${command} ${args.join(' ')}\n`);
  const r = spawnSync(command, args, { stdio: 'inherit', cwd: root, ...options });
  if (r.status !== 0) die(`${path.basename(command)} failed (${r.error ? r.error.message : `exit code ${r.status}`})`);
}

let libtorch, prebuilds;
try {
  libtorch = require('../lib/setup/libtorch.js');
  prebuilds = require('../lib/setup/prebuilds.js');
} catch (err) {
  die(`lib/ is not compiled (${err.message}); run npm run build:ts first`);
}

// 1. Build, with the build tree's RUNPATH (it points at the libtorch used for the build).
const cmakeJs = path.join(path.dirname(require.resolve('cmake-js/package.json')), 'bin', 'cmake-js');
run(process.execPath, [cmakeJs, 'compile', '--out', buildDir, '--CDCMAKE_BUILD_TYPE=Release', '--CDVMAE_PREBUILD=ON',
  ...process.argv.slice(2)]);
const built = path.join(buildDir, 'Release', 'videomae.node');

// 2. Ask the built binary which libtorch it was compiled against and which one it maps. It runs in
// an empty folder: the build tree's RUNPATH ends with an empty entry, which means the cwd.
const probeCwd = fs.mkdtempSync(path.join(os.tmpdir(), 'vmae-prebuild-'));
const probe = spawnSync(process.execPath, ['-e', `
  const b = require(process.argv[1]);
  const { loadedLibDir } = require(process.argv[2]);
  process.stdout.write(JSON.stringify({ runtime: b.runtimeInfo(), libDir: loadedLibDir() ?? null }));
`, built, path.join(root, 'lib', 'setup', 'libtorch.js')], { cwd: probeCwd, encoding: 'utf8', env: { ...process.env, LD_BIND_NOW: '1' } });
fs.rmSync(probeCwd, { recursive: true, force: true });
if (probe.status !== 0) die(`the built addon does not load:\n${probe.stderr}`);
const { runtime, libDir } = JSON.parse(probe.stdout);
const mapped = libDir ? libtorch.describeLibtorch(libDir) : undefined;
const version = (mapped && mapped.version) || runtime.libtorchVersion;
if (libtorch.majorMinor(version) !== libtorch.majorMinor(runtime.libtorchVersion)) {
  die(`compiled against libtorch ${runtime.libtorchVersion} headers but loads ${version} from ${libDir}`);
}
const flavor = mapped ? mapped.flavor : runtime.cudaCompiled ? 'cuda' : 'cpu';

// 3. Install a copy with the relocatable RUNPATH ($ORIGIN/../../libtorch/lib only).
const installDir = path.join(buildDir, 'install');
run('cmake', ['--install', buildDir, '--prefix', installDir, '--strip']);
const installed = path.join(installDir, 'videomae.node');

// 4. Store it under its tag, with the sidecar.
const dir = prebuilds.prebuildsDir(root);
const name = prebuilds.prebuildName(version, flavor);
fs.mkdirSync(dir, { recursive: true });
fs.copyFileSync(installed, path.join(dir, name));
const binary = fs.readFileSync(installed);
/** @type {import('../lib/setup/prebuilds').PrebuildSidecar} */
const sidecar = {
  libtorchVersion: version,
  flavor,
  // Mangled names of std::string and friends carry __cxx11 only under the new ABI.
  cxx11Abi: binary.includes('__cxx11'),
  napiVersion: 8,
  platform: process.platform,
  arch: process.arch,
  node: process.version,
};
fs.writeFileSync(path.join(dir, name.replace(/\.node$/, '.json')), `${JSON.stringify(sidecar, null, 2)}\n`);
process.stderr.write(`prebuild: wrote ${path.relative(root, path.join(dir, name))} (libtorch ${version}, ${flavor}` +
  `${libDir ? `, from ${libDir}` : ''})\n`);
