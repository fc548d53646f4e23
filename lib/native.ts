// Finds and loads the native addon. In order:
//   1. VIDEOMAE_NATIVE_PATH, if set: that file, loaded as is (e.g. the sanitizer build).
//   2. A source build, build/Release/videomae.node: whoever built it meant to use it, and a stale
//      prebuild must never shadow a fresh build (node-gyp-build's order).
//   3. A prebuild in prebuilds/<platform>-<arch>/ whose tag matches a libtorch the dynamic linker
//      can reach (see lib/setup/libtorch.ts and docs/INSTALLING.md).
// Each prebuild (3) is first loaded in a child process (as node-llama-cpp does), with
// LD_BIND_NOW=1 so a libtorch of another ABI fails there on a missing symbol instead of crashing
// this process later. For a prebuild the child also reports which libtorch it mapped, and that
// libtorch's version must be the one in the prebuild's tag. Verdicts are cached for the process.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

import type { NativeBinding } from '../binding';
import { VideoMAEError } from './errors';
import { describeLibtorch, findLibtorch, loadedLibDir, majorMinor, type LibtorchInfo } from './setup/libtorch';
import { packageRoot } from './setup/paths';
import { listPrebuilds, prebuildMatches, type Prebuild } from './setup/prebuilds';

export type NativeKind = 'env' | 'source' | 'prebuild';

/** One binary the loader considered, and what became of it. */
export interface NativeAttempt {
  path: string;
  kind: NativeKind;
  ok: boolean;
  /** Why it was passed over. */
  reason?: string;
}

/** What was loaded. */
export interface NativeLoadInfo {
  path: string;
  kind: NativeKind;
  /** The libtorch this process mapped (Linux), else the one the loader expected. */
  libtorch?: LibtorchInfo;
}

/** How long a child may take to load a candidate: libtorch with CUDA is large on a cold disk. */
const TEST_TIMEOUT_MS = 20_000;

const CHILD = `
const { loadedLibDir } = require(process.argv[2]);
require(process.argv[1]);
process.stdout.write(JSON.stringify({ libDir: loadedLibDir() ?? null }));
`;

let cached: NativeBinding | undefined;
let loaded: NativeLoadInfo | undefined;
let attempts: NativeAttempt[] = [];
const verdicts = new Map<string, { ok: boolean; reason?: string; libDir?: string }>();

/** Where the addon was loaded from. */
export let nativePath: string | undefined;

/** The binary that native() loaded, or undefined before a successful native(). */
export function nativeInfo(): NativeLoadInfo | undefined {
  return loaded;
}

/** What the last native() call tried, in order (for `videomae doctor`). */
export function nativeAttempts(): readonly NativeAttempt[] {
  return attempts;
}

/** Loads `file` in a child process. Sync; cached per process. */
function testLoad(file: string): { ok: boolean; reason?: string; libDir?: string } {
  let verdict = verdicts.get(file);
  if (verdict) return verdict;
  const r = spawnSync(process.execPath, ['-e', CHILD, file, path.join(__dirname, 'setup', 'libtorch.js')], {
    env: { ...process.env, LD_BIND_NOW: '1' },
    encoding: 'utf8',
    timeout: TEST_TIMEOUT_MS,
    windowsHide: true,
  });
  if (r.status === 0) {
    let libDir: string | undefined;
    try {
      libDir = (JSON.parse(r.stdout) as { libDir: string | null }).libDir ?? undefined;
    } catch {
      // an addon that prints while loading: trust the exit status
    }
    verdict = { ok: true, libDir };
  } else {
    const lines = (r.stderr ?? '').split('\n').map((l) => l.trim());
    const message = lines.find((l) => /^Error:/.test(l))?.replace(/^Error:\s*/, '') ?? lines.filter(Boolean).pop();
    let reason: string;
    if (r.error && (r.error as NodeJS.ErrnoException).code === 'ETIMEDOUT') reason = `loading took over ${TEST_TIMEOUT_MS / 1000} s`;
    else if (r.signal) reason = `loading it crashed (${r.signal})`;
    else reason = message ?? `loading it failed with exit code ${r.status}`;
    verdict = { ok: false, reason };
  }
  verdicts.set(file, verdict);
  return verdict;
}

/** Every source build and prebuild worth trying, in order, with the reason for the ones skipped. */
function candidates(root: string): { path: string; kind: NativeKind; expect?: Prebuild; skip?: string }[] {
  const list: { path: string; kind: NativeKind; expect?: Prebuild; skip?: string }[] = [];
  const source = path.join(root, 'build', 'Release', 'videomae.node');
  list.push({ path: source, kind: 'source', skip: fs.existsSync(source) ? undefined : 'not built' });
  const found = findLibtorch(root);
  const prebuilds = listPrebuilds(root);
  const queued = new Set<string>();
  for (const { info } of found) {
    for (const p of prebuilds) {
      if (!queued.has(p.path) && prebuildMatches(p, info)) {
        queued.add(p.path);
        list.push({ path: p.path, kind: 'prebuild', expect: p });
      }
    }
  }
  const have = found.map(({ info }) => `${info.version ?? 'unknown version'} (${info.flavor}) in ${info.libDir}`);
  for (const p of prebuilds) {
    if (!queued.has(p.path)) {
      const why = have.length ? `libtorch found: ${have.join('; ')}` : 'no libtorch found';
      list.push({ path: p.path, kind: 'prebuild', skip: `built for torch${p.torch}-${p.flavor}; ${why}` });
    }
  }
  return list;
}

function unavailable(message: string, cause?: unknown): VideoMAEError {
  return new VideoMAEError(
    'VMAE_NATIVE_UNAVAILABLE',
    `${message}\n` +
      'Possible solutions:\n' +
      '- Install the libtorch the prebuilt binaries were built for: npx videomae setup (add --cuda auto on NVIDIA machines)\n' +
      '- Debian/Ubuntu: apt-get install libtorch-dev libopenblas0-pthread\n' +
      '- Build from source against your own libtorch: LIBTORCH=/path/to/libtorch npm run build\n' +
      '  (in a git checkout; needs cmake and a C++17 compiler)\n' +
      '- Run npx videomae doctor for a full diagnosis',
    cause === undefined ? undefined : { cause },
  );
}

function finish(binding: NativeBinding, info: NativeLoadInfo): NativeBinding {
  const libDir = loadedLibDir();
  if (libDir) info.libtorch = describeLibtorch(libDir) ?? info.libtorch;
  cached = binding;
  loaded = info;
  nativePath = info.path;
  return binding;
}

/**
 * Loads the addon once. Sync: the first call may take a second (a child process loads the chosen
 * binary first). Throws VideoMAEError VMAE_NATIVE_UNAVAILABLE with the possible fixes.
 */
export function native(): NativeBinding {
  if (cached) return cached;
  const override = process.env.VIDEOMAE_NATIVE_PATH;
  if (override) {
    const file = path.resolve(override);
    attempts = [{ path: file, kind: 'env', ok: false }];
    try {
      const binding = require(file) as NativeBinding;
      attempts[0].ok = true;
      return finish(binding, { path: file, kind: 'env' });
    } catch (err) {
      attempts[0].reason = (err as Error).message;
      throw unavailable(
        `Could not load the videomae-node addon from VIDEOMAE_NATIVE_PATH=${override}: ${(err as Error).message}`,
        err,
      );
    }
  }

  const root = packageRoot();
  attempts = [];
  for (const c of candidates(root)) {
    if (c.skip) {
      attempts.push({ path: c.path, kind: c.kind, ok: false, reason: c.skip });
      continue;
    }
    // A source build was linked against the libtorch CMake chose, with its rpath: load it directly.
    // Only prebuilds, made elsewhere against some libtorch, are first tried in a child process.
    if (c.kind === 'source') {
      try {
        const binding = require(c.path) as NativeBinding;
        attempts.push({ path: c.path, kind: c.kind, ok: true });
        return finish(binding, { path: c.path, kind: c.kind });
      } catch (err) {
        attempts.push({ path: c.path, kind: c.kind, ok: false, reason: (err as Error).message });
        continue;
      }
    }
    const verdict = testLoad(c.path);
    let reason = verdict.reason;
    const mapped = verdict.libDir ? describeLibtorch(verdict.libDir) : undefined;
    if (verdict.ok && c.expect && mapped && !prebuildMatches(c.expect, mapped)) {
      reason =
        `built for torch${c.expect.torch}-${c.expect.flavor} but loaded libtorch ` +
        `${mapped.version ?? '(unknown version)'} (${mapped.flavor}) from ${mapped.libDir}`;
    }
    attempts.push({ path: c.path, kind: c.kind, ok: !reason, reason });
    if (reason) continue;
    try {
      return finish(require(c.path) as NativeBinding, { path: c.path, kind: c.kind, libtorch: mapped });
    } catch (err) {
      attempts[attempts.length - 1] = { path: c.path, kind: c.kind, ok: false, reason: (err as Error).message };
    }
  }

  const found = findLibtorch(root);
  const libtorch = found.length
    ? found.map(({ source, info }) => `  - ${info.version ?? 'unknown version'} (${info.flavor}) in ${info.libDir} [${source}]`)
    : ['  - none (looked in LD_LIBRARY_PATH, ./libtorch of the package, and the system library folders)'];
  const prebuilt = listPrebuilds(root).map((p) => `torch${p.torch}-${p.flavor}`);
  throw unavailable(
    'Could not load the videomae-node addon.\n' +
      `Tried:\n${attempts.map((a) => `  - ${a.kind} ${a.path}: ${a.reason}`).join('\n')}\n` +
      `libtorch the linker can reach:\n${libtorch.join('\n')}\n` +
      `Prebuilt binaries in this package: ${prebuilt.length ? prebuilt.join(', ') : 'none'} ` +
      `(${process.platform}-${process.arch}; a prebuild needs the same libtorch major.minor and flavor).`,
  );
}

/** 'torch2.5-cu124' for a libtorch, as prebuild tags spell it. */
export function libtorchTag(info: LibtorchInfo): string {
  return `torch${majorMinor(info.version) ?? '?'}-${info.flavor}`;
}
