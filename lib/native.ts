// Finds and loads the native addon. In order:
//   1. VIDEOMAE_NATIVE_PATH, if set: that file, loaded as is (e.g. the sanitizer build).
//   2. A source build in build/Release (node-gyp-build finds it): whoever built it meant to use it,
//      and a stale prebuild must never shadow a fresh build.
//   3. A prebuild: for each libtorch the dynamic linker can reach (lib/setup/libtorch.ts), the flavor
//      folder prebuilds/torch<major.minor>-<flavor>/, in which node-gyp-build picks the binary.
// Every candidate of 2 and 3 is first loaded in a child process (as node-llama-cpp does), with
// LD_BIND_NOW=1, because a wrong libtorch can abort the process inside dlopen (a c10::Error thrown
// by a static initializer) where no JS can catch it. The child reports every libtorch folder it
// mapped and the version the addon was compiled against; a candidate is refused when it maps more
// than one libtorch folder (a mix, e.g. through LD_PRELOAD or LD_LIBRARY_PATH), when the mapped
// libtorch's major.minor differs from the compiled one, or, for a prebuild, when the mapped
// libtorch is not its flavor. A verdict that passed is cached on disk, keyed by the binary and by
// what decides which libtorch the linker maps, so the child's cost (about a second) is paid once
// per binary and environment (docs/INSTALLING.md, "How the addon is loaded").
import { spawnSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

import type { NativeBinding } from '../binding';
import { VideoMAEError } from './errors';
import { describeLibtorch, findLibtorch, loadedLibtorch, majorMinor, type LibtorchInfo } from './setup/libtorch';
import { cacheDir, packageRoot } from './setup/paths';
import { flavorBinary, flavorMatches, listFlavors, sourceBuild, type Flavor } from './setup/prebuilds';

export type NativeKind = 'env' | 'source' | 'prebuild';

/** One binary the loader considered, and what became of it. */
export interface NativeAttempt {
  path: string;
  kind: NativeKind;
  ok: boolean;
  /** Why it was passed over. */
  reason?: string;
  /** The prebuild flavor, e.g. 'torch2.13-cpu'. */
  flavor?: string;
}

/** What was loaded. */
export interface NativeLoadInfo {
  path: string;
  kind: NativeKind;
  /** The flavor: the prebuild's folder, or for other builds the tag of the libtorch it maps. */
  flavor?: string;
  /** The libtorch this process mapped (Linux). */
  libtorch?: LibtorchInfo;
  /** Every folder this process maps libtorch libraries from (one, unless something forced a mix). */
  mapped: string[];
  /** The libtorch version the addon was compiled against. */
  compiledAgainst?: string;
  /** How the binary was checked before this process loaded it. */
  verified: 'child' | 'cache' | 'none';
}

/** What a child process found when it loaded a binary. */
export interface ProbeResult {
  ok: boolean;
  /** Why it is refused (a failed load, a crash, a mix, a version mismatch). */
  reason?: string;
  /** Folders of the libtorch libraries mapped after the load (before it, when it crashed). */
  dirs: string[];
  files: string[];
  libtorchVersion?: string;
  cudaCompiled?: boolean;
  /** The mapped libtorch, described. */
  libtorch?: LibtorchInfo;
  from: 'child' | 'cache';
}

/** How long a child may take to load a candidate: libtorch with CUDA is large on a cold disk. */
const TEST_TIMEOUT_MS = 60_000;

const CHILD = `
const fs = require('node:fs');
const { loadedLibtorch } = require(process.argv[2]);
fs.writeSync(1, JSON.stringify({ before: loadedLibtorch() }) + '\\n');
const r = require(process.argv[1]).runtimeInfo();
fs.writeSync(1, JSON.stringify({ after: loadedLibtorch(), libtorchVersion: r.libtorchVersion, cudaCompiled: r.cudaCompiled }) + '\\n');
`;

let cached: NativeBinding | undefined;
let loaded: NativeLoadInfo | undefined;
let attempts: NativeAttempt[] = [];
const verdicts = new Map<string, ProbeResult>();

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

/** The LD_* variables that change which libraries the linker maps. */
function linkerEnv(env: NodeJS.ProcessEnv): string {
  const v = (k: string): string => `${k}=${env[k] ?? ''}`;
  return process.platform === 'darwin' ? [v('DYLD_LIBRARY_PATH'), v('DYLD_INSERT_LIBRARIES')].join(' ') : [v('LD_LIBRARY_PATH'), v('LD_PRELOAD')].join(' ');
}

/** Judges what a child reported; `expect` is the prebuild's flavor. */
export function judgeProbe(r: Omit<ProbeResult, 'ok' | 'reason' | 'libtorch'>, expect?: Pick<Flavor, 'tag' | 'torch' | 'flavor'>): ProbeResult {
  const libtorch = r.dirs.length ? describeLibtorch(r.dirs[0]) : undefined;
  let reason: string | undefined;
  if (r.dirs.length > 1) {
    reason = `it maps libtorch from ${r.dirs.length} folders: ${r.dirs.join(', ')}. That is a mix of libtorch builds, which crashes ` +
      'or misbehaves; make only one reachable (check LD_PRELOAD and LD_LIBRARY_PATH)';
  } else if (libtorch?.version && r.libtorchVersion && majorMinor(libtorch.version) !== majorMinor(r.libtorchVersion)) {
    reason = `it was compiled against libtorch ${r.libtorchVersion} but maps libtorch ${libtorch.version} from ${r.dirs[0]}`;
  } else if (expect && libtorch && !flavorMatches(expect, libtorch)) {
    reason = `built for ${expect.tag} but loaded libtorch ${libtorch.version ?? '(unknown version)'} (${libtorch.flavor}) from ${r.dirs[0]}`;
  }
  return { ...r, ok: !reason, reason, libtorch };
}

function verdictFile(file: string, env: NodeJS.ProcessEnv): string | undefined {
  if (env.VIDEOMAE_NATIVE_VERDICT_CACHE === '0') return undefined;
  try {
    const st = fs.statSync(file);
    const stamp = (p: string): string => {
      try {
        const s = fs.statSync(p);
        return `${fs.realpathSync(p)}:${s.size}:${s.mtimeMs}`;
      } catch {
        return 'none';
      }
    };
    const key = [fs.realpathSync(file), st.size, st.mtimeMs, process.version, process.arch, linkerEnv(env),
      stamp(path.join(packageRoot(), 'libtorch')), stamp('/etc/ld.so.cache')].join('\n');
    return path.join(cacheDir(env), 'native-verdicts', `${crypto.createHash('sha256').update(key).digest('hex').slice(0, 32)}.json`);
  } catch {
    return undefined;
  }
}

interface StoredVerdict {
  dirs: string[];
  files: { path: string; size: number; mtimeMs: number }[];
  libtorchVersion?: string;
  cudaCompiled?: boolean;
}

/** A passed verdict from disk, if the libraries it mapped are still the same files. */
function readVerdict(store: string | undefined): Omit<ProbeResult, 'ok' | 'reason' | 'libtorch'> | undefined {
  if (!store) return undefined;
  try {
    const v = JSON.parse(fs.readFileSync(store, 'utf8')) as StoredVerdict;
    for (const f of v.files) {
      const st = fs.statSync(f.path);
      if (st.size !== f.size || st.mtimeMs !== f.mtimeMs) return undefined;
    }
    return { dirs: v.dirs, files: v.files.map((f) => f.path), libtorchVersion: v.libtorchVersion, cudaCompiled: v.cudaCompiled, from: 'cache' };
  } catch {
    return undefined;
  }
}

function writeVerdict(store: string | undefined, r: ProbeResult): void {
  if (!store) return;
  try {
    const files = r.files.map((p) => {
      const st = fs.statSync(p);
      return { path: p, size: st.size, mtimeMs: st.mtimeMs };
    });
    const v: StoredVerdict = { dirs: r.dirs, files, libtorchVersion: r.libtorchVersion, cudaCompiled: r.cudaCompiled };
    fs.mkdirSync(path.dirname(store), { recursive: true });
    const temp = `${store}.${process.pid}.tmp`;
    fs.writeFileSync(temp, JSON.stringify(v));
    fs.renameSync(temp, store);
  } catch {
    // a read-only cache only costs a child process next time
  }
}

/**
 * Loads `file` in a child process with LD_BIND_NOW=1 and judges it (see the top of this file).
 * Sync. Passed verdicts come from, and go to, the disk cache unless `useCache` is false.
 */
export function probeBinary(file: string, options: { env?: NodeJS.ProcessEnv; expect?: Pick<Flavor, 'tag' | 'torch' | 'flavor'>; useCache?: boolean } = {}): ProbeResult {
  const env = options.env ?? process.env;
  const store = options.useCache === false ? undefined : verdictFile(file, env);
  const stored = readVerdict(store);
  if (stored) {
    const judged = judgeProbe(stored, options.expect);
    if (judged.ok) return judged;
  }
  const r = spawnSync(process.execPath, ['-e', CHILD, file, path.join(__dirname, 'setup', 'libtorch.js')], {
    env: { ...env, LD_BIND_NOW: '1' },
    encoding: 'utf8',
    timeout: TEST_TIMEOUT_MS,
    windowsHide: true,
  });
  const reports = (r.stdout ?? '').split('\n').flatMap((l) => {
    try {
      return [JSON.parse(l) as { before?: { dirs: string[]; files: string[] }; after?: { dirs: string[]; files: string[] }; libtorchVersion?: string; cudaCompiled?: boolean }];
    } catch {
      return []; // an addon that prints while loading
    }
  });
  const before = reports.find((x) => x.before)?.before ?? { dirs: [], files: [] };
  const after = reports.find((x) => x.after);
  if (r.status === 0 && after?.after) {
    const judged = judgeProbe({ ...after.after, libtorchVersion: after.libtorchVersion, cudaCompiled: after.cudaCompiled, from: 'child' }, options.expect);
    if (judged.ok) writeVerdict(store, judged);
    return judged;
  }
  const lines = (r.stderr ?? '').split('\n').map((l) => l.trim()).filter(Boolean);
  const message = lines.find((l) => /^Error:/.test(l))?.replace(/^Error:\s*/, '') ??
    lines.find((l) => /terminate called|what\(\):|symbol lookup error|undefined symbol/.test(l)) ?? lines.pop();
  let reason: string;
  if (r.error && (r.error as NodeJS.ErrnoException).code === 'ETIMEDOUT') reason = `loading it took over ${TEST_TIMEOUT_MS / 1000} s`;
  else if (r.signal) reason = `loading it crashed (${r.signal})${message ? `: ${message}` : ''}`;
  else reason = message ?? `loading it failed with exit code ${r.status}`;
  if (before.dirs.length) {
    const preload = env.LD_PRELOAD ? ` (LD_PRELOAD=${env.LD_PRELOAD})` : '';
    reason += `; libtorch already mapped before the addon was loaded${preload}: ${before.dirs.join(', ')}`;
  }
  return { ok: false, reason, dirs: before.dirs, files: before.files, from: 'child' };
}

function unavailable(message: string, cause?: unknown): VideoMAEError {
  return new VideoMAEError(
    'VMAE_NATIVE_UNAVAILABLE',
    `${message}\n` +
      'Possible solutions:\n' +
      '- Install the libtorch a prebuilt binary was built for: npx videomae setup (add --cuda auto on NVIDIA machines)\n' +
      '- Debian/Ubuntu: apt-get install libtorch-dev libopenblas0-pthread\n' +
      '- Build from source against your own libtorch: LIBTORCH=/path/to/libtorch npm run build\n' +
      '  (in a git checkout; needs cmake and a C++17 compiler)\n' +
      '- Run npx videomae doctor for a full diagnosis',
    cause === undefined ? undefined : { cause },
  );
}

/**
 * require()s an addon binary with OMP_WAIT_POLICY=PASSIVE unless the user set it. libgomp (the OpenMP
 * runtime libtorch uses) reads it once, when it loads with the addon. By default its idle workers
 * spin for a while after each parallel region, taking the cores that the JS thread, the inference
 * thread and ffmpeg need; passive workers sleep at once (docs/PERFORMANCE.md has the A/B). Set only
 * around the require, so that child processes do not inherit it.
 */
function requireAddon(file: string): NativeBinding {
  const set = process.env.OMP_WAIT_POLICY === undefined;
  if (set) process.env.OMP_WAIT_POLICY = 'PASSIVE';
  try {
    return require(file) as NativeBinding;
  } finally {
    if (set) delete process.env.OMP_WAIT_POLICY;
  }
}

function finish(binding: NativeBinding, info: Omit<NativeLoadInfo, 'mapped' | 'libtorch' | 'compiledAgainst'>, probe?: ProbeResult): NativeBinding {
  const mapped = loadedLibtorch().dirs;
  const libtorch = mapped.length ? describeLibtorch(mapped[0]) : undefined;
  let compiledAgainst = probe?.libtorchVersion;
  try {
    compiledAgainst ??= binding.runtimeInfo().libtorchVersion;
  } catch {
    // reported by whoever calls runtimeInfo() next
  }
  const flavor = info.flavor ?? (libtorch?.version ? libtorchTag(libtorch) : undefined);
  cached = binding;
  loaded = { ...info, flavor, libtorch, mapped, compiledAgainst };
  nativePath = info.path;
  return binding;
}

/** Tries one candidate: the child's verdict, then require() here. Undefined when refused. */
function attempt(file: string, kind: NativeKind, flavor?: Flavor): NativeBinding | undefined {
  const probe = verdicts.get(file) ?? probeBinary(file, { expect: flavor });
  verdicts.set(file, probe);
  const record: NativeAttempt = { path: file, kind, ok: probe.ok, reason: probe.reason, flavor: flavor?.tag };
  attempts.push(record);
  if (!probe.ok) return undefined;
  try {
    return finish(requireAddon(file), { path: file, kind, flavor: flavor?.tag, verified: probe.from }, probe);
  } catch (err) {
    Object.assign(record, { ok: false, reason: (err as Error).message });
    return undefined;
  }
}

/**
 * Loads the addon once. Sync: the first call in a new environment takes a second or two (a child
 * process loads the chosen binary first). Throws VideoMAEError VMAE_NATIVE_UNAVAILABLE with the
 * possible fixes.
 */
export function native(): NativeBinding {
  if (cached) return cached;
  const override = process.env.VIDEOMAE_NATIVE_PATH;
  if (override) {
    const file = path.resolve(override);
    attempts = [{ path: file, kind: 'env', ok: false }];
    try {
      const binding = requireAddon(file);
      attempts[0].ok = true;
      return finish(binding, { path: file, kind: 'env', verified: 'none' });
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
  const source = sourceBuild(root);
  if (source) {
    const binding = attempt(source, 'source');
    if (binding) return binding;
  } else {
    attempts.push({ path: path.join(root, 'build', 'Release', 'videomae.node'), kind: 'source', ok: false, reason: 'not built' });
  }

  const found = findLibtorch(root);
  const flavors = listFlavors(root);
  const tried = new Set<string>();
  for (const { info } of found) {
    for (const f of flavors.filter((x) => !tried.has(x.tag) && flavorMatches(x, info))) {
      tried.add(f.tag);
      const binary = flavorBinary(f);
      if (!binary) {
        attempts.push({ path: f.dir, kind: 'prebuild', ok: false, flavor: f.tag, reason: `no binary for ${process.platform}-${process.arch} in it` });
        continue;
      }
      const binding = attempt(binary, 'prebuild', f);
      if (binding) return binding;
    }
  }
  const have = found.map(({ info }) => `${info.version ?? 'unknown version'} (${info.flavor}) in ${info.libDir}`);
  for (const f of flavors.filter((x) => !tried.has(x.tag))) {
    const why = have.length ? `libtorch found: ${have.join('; ')}` : 'no libtorch found';
    attempts.push({ path: f.dir, kind: 'prebuild', ok: false, flavor: f.tag, reason: `built for ${f.tag}; ${why}` });
  }

  const libtorch = found.length
    ? found.map(({ source: where, info }) => `  - ${info.version ?? 'unknown version'} (${info.flavor}) in ${info.libDir} [${where}]`)
    : ['  - none (looked in LD_LIBRARY_PATH, ./libtorch of the package, and the system library folders)'];
  throw unavailable(
    'Could not load the videomae-node addon.\n' +
      `Tried:\n${attempts.map((a) => `  - ${a.kind}${a.flavor ? ` ${a.flavor}` : ''} ${a.path}: ${a.reason}`).join('\n')}\n` +
      `libtorch the linker can reach:\n${libtorch.join('\n')}\n` +
      `Prebuilt flavors in this package: ${flavors.length ? flavors.map((f) => f.tag).join(', ') : 'none'} ` +
      `(${process.platform}-${process.arch}; a prebuild needs the same libtorch major.minor and flavor).`,
  );
}

/** 'torch2.13-cpu' for a libtorch, as flavor folders are named. */
export function libtorchTag(info: Pick<LibtorchInfo, 'version' | 'flavor'>): string {
  return `torch${majorMinor(info.version) ?? '?'}-${info.flavor}`;
}
