#!/usr/bin/env node
// Builds the prebuilt binaries with prebuildify, one flavor folder per libtorch:
//   prebuilds/<flavor>/prebuilds/<platform>-<arch>/node.napi.glibc.node   (found by node-gyp-build)
//   prebuilds/<flavor>/prebuilds/<platform>-<arch>/node.napi.glibc.json   (PrebuildSidecar)
// prebuildify runs scripts/prebuild-shim.js in place of node-gyp; the shim builds with cmake-js in
// build-prebuild/<flavor>/ (incremental on a rerun). Each binary is then loaded in a child process
// against its libtorch (lib/native.js's probe) and must map exactly that libtorch.
//
// Usage (npm run build:ts first: the tags come from lib/, the code the loader uses):
//   node scripts/prebuild.js --libtorch <dir> [--libtorch <dir>...]   one flavor per libtorch folder
//   node scripts/prebuild.js --all      every libtorch this machine has (npm run prebuild:all):
//        the folders in VIDEOMAE_PREBUILD_LIBTORCH (':'-separated), those `videomae setup` installed
//        in the cache, and the system's (Debian's libtorch-dev)
//   node scripts/prebuild.js --check    (prepack) refuses unless every flavor in package.json's
//        videomae.flavors has its binary and sidecar for this platform
// A libtorch folder is one with lib/ (and share/cmake/Torch/ unless it is the system's).
'use strict';

const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
const platform = `${process.platform}-${process.arch}`;

function die(message) {
  process.stderr.write(`prebuild: ${message}\n`);
  process.exit(1);
}
const say = (message) => process.stderr.write(`prebuild: ${message}\n`);

let libtorch, prebuilds, native, paths;
try {
  libtorch = require('../lib/setup/libtorch.js');
  prebuilds = require('../lib/setup/prebuilds.js');
  native = require('../lib/native.js');
  paths = require('../lib/setup/paths.js');
} catch (err) {
  die(`lib/ is not compiled (${err.message}); run npm run build:ts first`);
}

/** --check: the flavors package.json promises, each with a binary for this platform. */
function check() {
  const want = (pkg.videomae && pkg.videomae.flavors) || [];
  const have = new Map(prebuilds.listFlavors(root).map((f) => [f.tag, f]));
  const missing = [];
  for (const tag of want) {
    const f = have.get(tag);
    const binary = f && prebuilds.flavorBinary(f);
    if (!binary) missing.push(`${tag} (prebuilds/${tag}/prebuilds/${platform}/ has no binary)`);
    else if (!prebuilds.readSidecar(binary)) missing.push(`${tag} (no sidecar .json next to ${path.relative(root, binary)})`);
  }
  if (missing.length) {
    die(`refusing to pack without the prebuilds: missing ${missing.join('; ')}.\n` +
      'Build them with npm run prebuild:all (see docs/INSTALLING.md, "Making the prebuilds").');
  }
  say(`all ${want.length} flavors present: ${want.join(', ')}`);
}

/** { dir, libDir, info, system } for a libtorch folder, or undefined. */
function describe(dir, system = false) {
  const libDir = system ? dir : path.join(dir, 'lib');
  const info = libtorch.describeLibtorch(libDir);
  return info && info.version ? { dir, libDir, info, system, tag: prebuilds.flavorTag(info.version, info.flavor) } : undefined;
}

function discover() {
  const found = [];
  for (const dir of (process.env.VIDEOMAE_PREBUILD_LIBTORCH || '').split(path.delimiter).filter(Boolean)) {
    const d = describe(path.resolve(dir));
    if (!d) die(`VIDEOMAE_PREBUILD_LIBTORCH names ${dir}, which holds no libtorch with a known version`);
    found.push(d);
  }
  const cache = path.join(paths.cacheDir(), 'libtorch');
  for (const name of fs.existsSync(cache) ? fs.readdirSync(cache).sort() : []) {
    const d = describe(path.join(cache, name, 'torch'));
    if (d) found.push(d);
  }
  for (const { source, info } of libtorch.findLibtorch(root, {})) {
    if (source === 'system') {
      const d = describe(info.libDir, true);
      if (d) found.push(d);
    }
  }
  return found;
}

function build(t) {
  const flavorDir = path.join(prebuilds.flavorsDir(root), t.tag);
  const buildDir = path.join(process.env.VMAE_PREBUILD_BUILD_DIR || path.join(root, 'build-prebuild'), t.tag);
  const stage = path.join(buildDir, 'stage');
  fs.mkdirSync(stage, { recursive: true });
  const env = { ...process.env, VMAE_PREBUILD_BUILD_DIR: buildDir };
  delete env.Torch_DIR;
  if (t.system) {
    env.LIBTORCH = 'system'; // not ./libtorch, nor the torch of VIDEOMAE_PYTHON or python3
  } else {
    env.LIBTORCH = t.dir;
  }
  say(`${t.tag}: building against ${t.dir}`);
  const bin = path.join(path.dirname(require.resolve('prebuildify/package.json')), 'bin.js');
  const r = spawnSync(process.execPath, [bin, '--napi', '--strip', '--tag-libc', '--name', 'node.napi',
    '--node-gyp', path.join(__dirname, 'prebuild-shim.js'), '--out', flavorDir, '--cwd', stage], { stdio: 'inherit', env });
  if (r.status !== 0) die(`${t.tag}: prebuildify failed (${r.error ? r.error.message : `exit code ${r.status}`})`);

  const flavor = prebuilds.listFlavors(root).find((f) => f.tag === t.tag);
  const binary = flavor && prebuilds.flavorBinary(flavor);
  if (!binary) die(`${t.tag}: prebuildify left no binary in ${flavorDir}`);
  // The relocatable RUNPATH points at the package's ./libtorch; the check points the linker at this libtorch.
  const probeEnv = { ...process.env, LD_LIBRARY_PATH: [t.libDir, process.env.LD_LIBRARY_PATH].filter(Boolean).join(path.delimiter) };
  delete probeEnv.LD_PRELOAD;
  const probe = native.probeBinary(binary, { env: probeEnv, expect: flavor, useCache: false });
  if (!probe.ok) {
    fs.rmSync(binary, { force: true });
    die(`${t.tag}: the built binary does not load against ${t.libDir}: ${probe.reason}`);
  }
  /** @type {import('../lib/setup/prebuilds').PrebuildSidecar} */
  const sidecar = {
    tag: t.tag,
    libtorchVersion: t.info.version,
    flavor: t.info.flavor,
    // Mangled names of std::string and friends carry __cxx11 only under the new ABI.
    cxx11Abi: fs.readFileSync(binary).includes('__cxx11'),
    napiVersion: 8,
    platform: process.platform,
    arch: process.arch,
    node: process.version,
  };
  fs.writeFileSync(binary.replace(/\.node$/, '.json'), `${JSON.stringify(sidecar, null, 2)}\n`);
  say(`${t.tag}: wrote ${path.relative(root, binary)} (${(fs.statSync(binary).size / 1e6).toFixed(1)} MB; compiled against ` +
    `${probe.libtorchVersion}, loads ${probe.dirs.join(', ')})`);
}

const argv = process.argv.slice(2);
if (argv.includes('--check')) {
  check();
} else {
  const given = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--libtorch') {
      const dir = path.resolve(argv[++i] || die('--libtorch needs a folder'));
      const d = describe(dir) || describe(dir, true);
      if (!d) die(`--libtorch ${dir}: no libtorch with a known version there (expected lib/ with libc10 and libtorch_cpu)`);
      given.push(d);
    } else if (argv[i] !== '--all') {
      die(`unknown argument '${argv[i]}'; expected --all, --check or --libtorch <dir>`);
    }
  }
  const targets = argv.includes('--all') ? [...given, ...discover()] : given;
  if (!targets.length) die('no libtorch to build against; pass --libtorch <dir> or --all');
  const seen = new Set();
  for (const t of targets) {
    if (seen.has(t.tag)) {
      say(`${t.tag}: already built from another folder; skipping ${t.dir}`);
      continue;
    }
    seen.add(t.tag);
    build(t);
  }
  say(`built ${[...seen].join(', ')}`);
}
