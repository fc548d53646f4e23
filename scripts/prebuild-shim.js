#!/usr/bin/env node
// prebuildify's `--node-gyp` stand-in: prebuildify runs `<this> rebuild --target=<node> ... --release`
// in its working folder and then takes build/Release/*.node from there. We build with cmake-js
// instead, in VMAE_PREBUILD_BUILD_DIR (one build tree per flavor, so rebuilding a flavor is
// incremental), install the addon with its relocatable RUNPATH, and put that copy where
// prebuildify looks. libtorch comes from LIBTORCH as for any build (cmake/FindLibtorch.cmake).
'use strict';

const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const args = process.argv.slice(2);

function die(message) {
  process.stderr.write(`prebuild-shim: ${message}\n`);
  process.exit(1);
}

function run(command, argv) {
  process.stderr.write(`prebuild-shim: ${command} ${argv.join(' ')}\n`);
  const r = spawnSync(command, argv, { stdio: 'inherit', cwd: root });
  if (r.status !== 0) die(`${path.basename(command)} failed (${r.error ? r.error.message : `exit code ${r.status}`})`);
}

if (args[0] !== 'rebuild') die(`expected 'rebuild' (as prebuildify calls node-gyp) but received '${args.join(' ')}'`);
const buildDir = process.env.VMAE_PREBUILD_BUILD_DIR;
if (!buildDir) die('VMAE_PREBUILD_BUILD_DIR is not set; run this through scripts/prebuild.js');
// The prebuild lands in prebuilds/<flavor>/prebuilds/<platform>-<arch>/, four levels below the
// package, where `videomae setup` links ./libtorch.
const rpath = process.env.VMAE_PREBUILD_RPATH || '$ORIGIN/../../../../libtorch/lib';
const debug = args.includes('--debug');

const cmakeJs = path.join(path.dirname(require.resolve('cmake-js/package.json')), 'bin', 'cmake-js');
run(process.execPath, [cmakeJs, 'compile', '--directory', root, '--out', buildDir,
  `--CDCMAKE_BUILD_TYPE=${debug ? 'Debug' : 'Release'}`, '--CDVMAE_PREBUILD=ON', `--CDVMAE_INSTALL_RPATH=${rpath}`]);
const installDir = path.join(buildDir, 'install');
run('cmake', ['--install', buildDir, '--prefix', installDir, ...(debug ? [] : ['--strip'])]);

const output = path.join(process.cwd(), 'build', debug ? 'Debug' : 'Release');
fs.rmSync(output, { recursive: true, force: true });
fs.mkdirSync(output, { recursive: true });
fs.copyFileSync(path.join(installDir, 'videomae.node'), path.join(output, 'videomae.node'));
