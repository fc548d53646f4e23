// `videomae setup`: installs a libtorch into the per-user cache and links it as the package's
// ./libtorch, where the prebuilt binaries (RUNPATH .../libtorch/lib) and CMake's discovery find it.
// The libtorch comes from the official torch wheels (lib/setup/pins.ts), every file verified
// against its pinned sha256:
//
//   <cache>/downloads/<wheel>                 while downloading; deleted once installed (kept,
//                                             verified, when a later step fails, for the next run)
//   <cache>/tmp/unpack-XXXXXX/                the install being assembled; deleted on any failure
//   <cache>/libtorch/<version>+<flavor>-<sha256[:12] of the torch wheel>/
//       torch/{lib,include,share/cmake,version.py}    the wheel's libtorch
//       nvidia/<x>/lib/                       CUDA: the nvidia-* wheels' libraries, where torch/lib's
//                                             RPATH ($ORIGIN/../../nvidia/<x>/lib) looks
//       .videomae-setup.json                  what was installed, from which files
//   <package>/libtorch -> <that>/torch        a symlink (a junction on Windows), swapped by rename()
//
// An install folder appears only complete (one rename from tmp/), and the link is replaced only
// after that, by one more rename: an interrupted or failed setup leaves the previous one working.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { SingleBar } from 'cli-progress';

import { VideoMAEError } from '../errors';
import { extractArchive, zipUnpackedSize, type EntryFilter } from './archive';
import { download, fetchText, sha256File, type DownloadOptions } from './download';
import { describeLibtorch, type LibtorchInfo } from './libtorch';
import { cacheDir, defaultLinkPath, packageRoot } from './paths';
import { choosePin, parseDriverCuda, platformPins, type LibtorchPin, type WheelPin } from './pins';
import { flavorTag, listFlavors, type Flavor } from './prebuilds';

export interface SetupOptions {
  /** 'auto' (default: nvidia-smi decides), 'cpu', or a CUDA version such as '13.0'. */
  cuda?: string;
  /**
   * Install offline from: a torch wheel (its nvidia-* wheels are looked for beside it); a folder of
   * wheels; a libtorch folder (linked in place); or an official libtorch .zip/.tar.gz.
   */
  from?: string;
  /** Expected sha256 of a --from file that is not pinned. */
  sha256?: string;
  /** Where to make the link. Default: `<package>/libtorch`. */
  link?: string;
  /** Download and unpack again even when the cache has this build. */
  force?: boolean;
  /** Where VIDEOMAE_CACHE_DIR, VIDEOMAE_LIBTORCH_MIRROR, proxies and PATH are read. Default process.env. */
  env?: NodeJS.ProcessEnv;
  /** Progress lines. Default: stderr. */
  log?: (line: string) => void;
  /** Draw a progress bar on stderr. Default: when stderr is a TTY. */
  progress?: boolean;
  /** A download that sends nothing this long fails. Default 60 s (VIDEOMAE_DOWNLOAD_TIMEOUT, in seconds). */
  idleTimeoutMs?: number;
}

/** One file setup used, and where it came from. */
export interface SetupFile {
  file: string;
  sha256: string;
  from: 'download' | 'local';
  /** Where it was read: the URL or the local path. */
  location: string;
  /** Whether a pin verified it (false only for an unpinned --from file). */
  pinned: boolean;
}

export interface SetupResult {
  /** The installed libtorch folder (lib/, include/, share/). */
  dir: string;
  libtorch: LibtorchInfo;
  /** The link made to `dir`. */
  link: string;
  /** How it got there. */
  source: 'download' | 'wheel' | 'cache' | 'archive' | 'folder';
  /** The files unpacked (empty for 'cache' and 'folder'). */
  files: SetupFile[];
  /** The torch wheel's or archive's sha256, when there was one. */
  sha256?: string;
  /** Why this build was chosen. */
  note?: string;
  /** The package's prebuild flavor for this libtorch, if it ships one. */
  prebuild?: Flavor;
}

const MARKER = '.videomae-setup.json';
/** What setup takes from a torch wheel: the libtorch, not the Python package around it. */
const TORCH_PARTS: EntryFilter = (rel) => /^torch\/(lib|include|share\/cmake)\//.test(rel) || rel === 'torch/version.py';
/** What it takes from an nvidia-* wheel: the shared libraries. */
const NVIDIA_PARTS: EntryFilter = (rel) => /^nvidia\/[^/]+\/lib\//.test(rel);

function fail(message: string, cause?: unknown): VideoMAEError {
  return new VideoMAEError('VMAE_SETUP_FAILED', message, cause === undefined ? undefined : { cause });
}

/** Turns a file-system error into a setup error that says what to do; the previous setup is untouched. */
function ioFailure(err: unknown, doing: string, cache: string): VideoMAEError {
  if (err instanceof VideoMAEError) {
    const cause = (err as { cause?: NodeJS.ErrnoException }).cause;
    if (cause?.code !== 'ENOSPC') return err;
  }
  const e = (err instanceof VideoMAEError ? (err as { cause?: unknown }).cause : err) as NodeJS.ErrnoException;
  const unchanged = 'Nothing was changed: the previous setup, if any, is still in place.';
  if (e?.code === 'ENOSPC') {
    return fail(`The disk holding ${cache} is full (ENOSPC) while ${doing}. Free space there, or point ` +
      `VIDEOMAE_CACHE_DIR at a disk with room, and run setup again. ${unchanged}`, e);
  }
  if (e?.code === 'EACCES' || e?.code === 'EPERM' || e?.code === 'EROFS') {
    return fail(`No permission to write in ${cache} while ${doing} (${e.code}). Point VIDEOMAE_CACHE_DIR at a ` +
      `folder you can write. ${unchanged}`, e);
  }
  return fail(`Setup failed while ${doing}: ${(e as Error)?.message ?? String(e)}. ${unchanged}`, e);
}

/** What is missing from a libtorch folder in the official layout; empty when nothing is. */
function layoutProblems(root: string): string[] {
  const problems: string[] = [];
  if (!describeLibtorch(path.join(root, 'lib'))) problems.push('lib/ with libc10 and libtorch_cpu');
  if (!fs.existsSync(path.join(root, 'include', 'torch'))) problems.push('include/torch/');
  if (!fs.existsSync(path.join(root, 'share', 'cmake', 'Torch', 'TorchConfig.cmake'))) problems.push('share/cmake/Torch/TorchConfig.cmake');
  return problems;
}

/** `dir` itself or its libtorch/ or torch/ child, whichever is a libtorch folder; undefined if none. */
function findLibtorchRoot(dir: string): string | undefined {
  return [dir, path.join(dir, 'libtorch'), path.join(dir, 'torch')].find((d) => layoutProblems(d).length === 0);
}

function notLibtorch(dir: string): VideoMAEError {
  return fail(`${dir} does not hold libtorch in the official layout: missing ${layoutProblems(dir).join(', ')}. ` +
    'Expected an unpacked libtorch (lib/, include/ and share/cmake/Torch/), a torch wheel (.whl), a folder of ' +
    'wheels, or an official libtorch .zip.');
}

function libtorchRoot(dir: string): string {
  const root = findLibtorchRoot(dir);
  if (!root) throw notLibtorch(dir);
  return root;
}

/** Free bytes on the disk holding `dir`; undefined where statfs is unavailable. */
async function freeBytes(dir: string): Promise<number | undefined> {
  try {
    const st = await fs.promises.statfs(dir);
    return st.bavail * st.bsize;
  } catch {
    return undefined;
  }
}

async function needSpace(dir: string, bytes: number, what: string): Promise<void> {
  const free = await freeBytes(dir);
  if (free !== undefined && free < bytes) {
    const gb = (n: number): string => `${(n / 1e9).toFixed(2)} GB`;
    throw fail(`Not enough disk space in ${dir} to ${what}: it needs ${gb(bytes)} and ${gb(free)} is free. Free space ` +
      'there, or point VIDEOMAE_CACHE_DIR at a disk with room. Nothing was changed.');
  }
}

/**
 * Assembles an install in a fresh folder under <cache>/tmp by `fill`, then renames it to `final`
 * (replacing an earlier install there only after the new one is complete). Deletes the partial
 * folder on any failure.
 */
async function assemble(cache: string, final: string, fill: (staging: string) => Promise<void>): Promise<void> {
  const tmp = path.join(cache, 'tmp');
  await fs.promises.mkdir(tmp, { recursive: true });
  const staging = await fs.promises.mkdtemp(path.join(tmp, 'unpack-'));
  const previous = `${staging}.previous`;
  try {
    await fill(staging);
    await fs.promises.mkdir(path.dirname(final), { recursive: true });
    if (fs.existsSync(final)) await fs.promises.rename(final, previous);
    await fs.promises.rename(staging, final);
  } finally {
    await fs.promises.rm(staging, { recursive: true, force: true });
    await fs.promises.rm(previous, { recursive: true, force: true });
  }
}

/** Points `link` at `target` with one rename, replacing an earlier link but never a real folder. */
async function makeLink(link: string, target: string): Promise<void> {
  const st = await fs.promises.lstat(link).catch(() => undefined);
  if (st && !st.isSymbolicLink()) {
    throw fail(`${link} exists and is not a link; move it away, or pass --link <path> to link elsewhere`);
  }
  const temp = `${link}.${process.pid}.tmp`;
  try {
    await fs.promises.mkdir(path.dirname(link), { recursive: true });
    await fs.promises.rm(temp, { force: true });
    await fs.promises.symlink(target, temp, 'junction');
    await fs.promises.rename(temp, link);
  } catch (err) {
    await fs.promises.rm(temp, { force: true }).catch(() => undefined);
    throw fail(
      `libtorch is installed in ${target} but the link ${link} could not be made: ${(err as Error).message}. ` +
        `Rerun with write access to ${path.dirname(link)}, or use it directly: LD_LIBRARY_PATH=${path.join(target, 'lib')} ` +
        `for the prebuilt binaries, LIBTORCH=${target} for source builds.`,
      err,
    );
  }
}

function driverCuda(env: NodeJS.ProcessEnv): number | undefined {
  const r = spawnSync('nvidia-smi', [], { env, encoding: 'utf8', timeout: 15_000, windowsHide: true });
  return r.status === 0 ? parseDriverCuda(r.stdout) : undefined;
}

function progressReporter(show: boolean, log: (line: string) => void, label: string): Pick<DownloadOptions, 'onStart' | 'onProgress'> & { stop(): void } {
  let bar: SingleBar | undefined;
  return {
    onStart(total, url) {
      const size = total === undefined ? 'unknown size' : `${(total / 1e6).toFixed(1)} MB`;
      log(`${label} Downloading ${url} (${size})`);
      if (show && total) {
        bar = new SingleBar({ stream: process.stderr, format: '  {bar} {percentage}% | {value}/{total} MB | ETA {eta}s' });
        bar.start(Math.round(total / 1e6), 0);
      }
    },
    onProgress(received) {
      bar?.update(Math.round(received / 1e6));
    },
    stop() {
      bar?.stop();
    },
  };
}

/** The URL of a pinned wheel: `<mirror>/<file>` with VIDEOMAE_LIBTORCH_MIRROR, else from its PEP 503 index. Async. */
export async function wheelUrl(wheel: WheelPin, env: NodeJS.ProcessEnv, idleTimeoutMs: number): Promise<string> {
  const mirror = env.VIDEOMAE_LIBTORCH_MIRROR?.replace(/\/+$/, '');
  if (mirror) return `${mirror}/${encodeURIComponent(wheel.file)}`;
  const page = `${wheel.index}/${wheel.project}/`;
  const { text, url } = await fetchText(page, { idleTimeoutMs });
  for (const m of text.matchAll(/href="([^"]+)"/g)) {
    const href = m[1].replace(/&amp;/g, '&');
    const target = new URL(href, url);
    if (decodeURIComponent(path.posix.basename(target.pathname)) === wheel.file) {
      target.hash = '';
      return target.href;
    }
  }
  throw fail(`The package index ${page} does not list ${wheel.file}. Set VIDEOMAE_LIBTORCH_MIRROR to a server that ` +
    'has it, or download it yourself and run: npx videomae setup --from <that file>');
}

/** Finds or downloads `wheel`, verified against its pin. */
async function fetchWheel(
  wheel: WheelPin,
  localDir: string | undefined,
  ctx: { cache: string; env: NodeJS.ProcessEnv; log: (l: string) => void; progress: boolean; idleTimeoutMs: number; label: string },
): Promise<{ path: string; record: SetupFile; temporary: boolean }> {
  const local = localDir && path.join(localDir, wheel.file);
  if (local && fs.existsSync(local)) {
    ctx.log(`${ctx.label} Verifying ${local}`);
    const sha256 = await sha256File(local);
    if (sha256 !== wheel.sha256) {
      throw fail(`Checksum mismatch for ${local}: its name is pinned with sha256 ${wheel.sha256}, but the file has ${sha256}. ` +
        'It is damaged or not the published file: download it again from its official index. Nothing was changed.');
    }
    return { path: local, record: { file: wheel.file, sha256, from: 'local', location: local, pinned: true }, temporary: false };
  }
  const downloads = path.join(ctx.cache, 'downloads');
  const dest = path.join(downloads, wheel.file);
  // A verified download kept by an earlier setup that failed later (another wheel, the disk): reuse it.
  if (fs.existsSync(dest) && (await sha256File(dest)) === wheel.sha256) {
    ctx.log(`${ctx.label} Already downloaded: ${dest}`);
    return { path: dest, record: { file: wheel.file, sha256: wheel.sha256, from: 'download', location: dest, pinned: true }, temporary: true };
  }
  await fs.promises.mkdir(downloads, { recursive: true });
  await needSpace(downloads, wheel.size, `download ${wheel.file}`);
  const url = await wheelUrl(wheel, ctx.env, ctx.idleTimeoutMs);
  const reporter = progressReporter(ctx.progress, ctx.log, ctx.label);
  try {
    await download(url, dest, { sha256: wheel.sha256, idleTimeoutMs: ctx.idleTimeoutMs, onStart: reporter.onStart, onProgress: reporter.onProgress });
  } finally {
    reporter.stop();
  }
  return { path: dest, record: { file: wheel.file, sha256: wheel.sha256, from: 'download', location: url, pinned: true }, temporary: true };
}

/** Where a pin's install lives in the cache. */
function installDir(cache: string, pin: LibtorchPin): string {
  return path.join(cache, 'libtorch', `${pin.version}+${pin.flavor}-${pin.torch.sha256.slice(0, 12)}`);
}

/** Whether the cache already holds this pin, complete. */
async function cached(dir: string, pin: LibtorchPin): Promise<boolean> {
  const marker = await fs.promises.readFile(path.join(dir, MARKER), 'utf8').then((t) => JSON.parse(t) as { files?: { sha256: string }[] }, () => undefined);
  const want = [pin.torch, ...pin.deps].map((w) => w.sha256).sort();
  const have = (marker?.files ?? []).map((f) => f.sha256).sort();
  return JSON.stringify(want) === JSON.stringify(have) && layoutProblems(path.join(dir, 'torch')).length === 0;
}

/** Installs a pinned build from local wheels and/or downloads. */
async function installPin(
  pin: LibtorchPin,
  localDir: string | undefined,
  ctx: { cache: string; env: NodeJS.ProcessEnv; log: (l: string) => void; progress: boolean; idleTimeoutMs: number; force: boolean },
): Promise<{ root: string; files: SetupFile[]; source: SetupResult['source'] }> {
  const root = installDir(ctx.cache, pin);
  if (!ctx.force && (await cached(root, pin))) {
    ctx.log(`Already in the cache: ${root}`);
    return { root, files: [], source: 'cache' };
  }
  const wheels = [pin.torch, ...pin.deps];
  const got: { path: string; record: SetupFile; temporary: boolean; filter: EntryFilter }[] = [];
  for (const [i, wheel] of wheels.entries()) {
    const label = `[${i + 1}/${wheels.length}]`;
    try {
      const w = await fetchWheel(wheel, localDir, { ...ctx, label });
      got.push({ ...w, filter: i === 0 ? TORCH_PARTS : NVIDIA_PARTS });
    } catch (err) {
      throw ioFailure(err, `getting ${wheel.file}`, ctx.cache);
    }
  }
  let unpacked = 0;
  for (const w of got) unpacked += await zipUnpackedSize(w.path, w.filter);
  await needSpace(ctx.cache, unpacked, `unpack libtorch ${pin.version} (${pin.flavor})`);
  try {
    await assemble(ctx.cache, root, async (staging) => {
      for (const w of got) {
        ctx.log(`Unpacking ${w.record.file}`);
        await extractArchive(w.path, staging, w.filter);
      }
      const problems = layoutProblems(path.join(staging, 'torch'));
      if (problems.length) throw fail(`${pin.torch.file} holds no complete libtorch: missing torch/${problems.join(', torch/')}`);
      const record = { version: pin.version, flavor: pin.flavor, tag: pin.tag, files: got.map((w) => w.record), installedAt: new Date().toISOString() };
      await fs.promises.writeFile(path.join(staging, MARKER), `${JSON.stringify(record, null, 2)}\n`);
    });
  } catch (err) {
    throw ioFailure(err, `unpacking libtorch ${pin.version} (${pin.flavor})`, ctx.cache);
  }
  // Downloads are deleted once installed; after a failure they stay, verified, for the next run.
  for (const w of got) if (w.temporary) await fs.promises.rm(w.path, { force: true });
  return { root, files: got.map((w) => w.record), source: got.some((w) => w.record.from === 'download') ? 'download' : 'wheel' };
}

/** Installs a wheel or archive that no pin names, checked against --sha256 when given. */
async function installUnpinned(file: string, expected: string | undefined, cache: string, log: (l: string) => void): Promise<{ root: string; sha256: string; pinned: boolean }> {
  const sha256 = await sha256File(file);
  if (expected && sha256 !== expected) throw fail(`Checksum mismatch for ${file}: expected sha256 ${expected} (--sha256), got ${sha256}. Nothing was changed.`);
  log(`Unpacking ${file} (sha256 ${sha256}${expected ? ', as expected' : '; not verified: no pin names this file and no --sha256 was given'})`);
  const wheel = file.endsWith('.whl');
  const root = path.join(cache, 'libtorch', `local-${sha256.slice(0, 12)}`);
  try {
    await assemble(cache, root, async (staging) => {
      const unpacked = path.join(staging, 'unpacked');
      await extractArchive(file, unpacked, wheel ? TORCH_PARTS : undefined);
      await fs.promises.rename(libtorchRoot(unpacked), path.join(staging, 'torch'));
      await fs.promises.rm(unpacked, { recursive: true, force: true });
      await fs.promises.writeFile(path.join(staging, MARKER), `${JSON.stringify({ files: [{ file: path.basename(file), sha256 }], installedAt: new Date().toISOString() }, null, 2)}\n`);
    });
  } catch (err) {
    throw ioFailure(err, `unpacking ${file}`, cache);
  }
  return { root, sha256, pinned: false };
}

/**
 * Installs libtorch and links it (see the top of this file). Async; rejects with VMAE_SETUP_FAILED
 * saying what to do; the previous setup stays in place on every failure.
 */
export async function setup(options: SetupOptions = {}): Promise<SetupResult> {
  const env = options.env ?? process.env;
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const cache = cacheDir(env);
  const link = path.resolve(options.link ?? defaultLinkPath());
  const expected = options.sha256?.toLowerCase();
  if (expected !== undefined && !/^[0-9a-f]{64}$/.test(expected)) {
    throw fail(`Expected 64 hex digits for --sha256 but received '${options.sha256}'`);
  }
  const timeoutEnv = Number(env.VIDEOMAE_DOWNLOAD_TIMEOUT);
  const idleTimeoutMs = options.idleTimeoutMs ?? (timeoutEnv > 0 ? timeoutEnv * 1000 : 60_000);
  const ctx = { cache, env, log, progress: options.progress ?? !!process.stderr.isTTY, idleTimeoutMs, force: !!options.force };
  const pins = platformPins();

  let dir: string;
  let source: SetupResult['source'];
  let files: SetupFile[] = [];
  let sha256: string | undefined;
  let note: string | undefined;
  const fromPin = async (pin: LibtorchPin, localDir: string | undefined): Promise<void> => {
    log(`libtorch ${pin.version} (${pin.flavor}): ${note}`);
    const r = await installPin(pin, localDir, ctx);
    [dir, files, source, sha256] = [path.join(r.root, 'torch'), r.files, r.source, pin.torch.sha256];
  };

  if (options.from) {
    const from = path.resolve(options.from);
    const st = await fs.promises.stat(from).catch(() => undefined);
    if (!st) throw fail(`--from ${options.from}: no such file or folder`);
    if (st.isDirectory()) {
      const root = findLibtorchRoot(from);
      const wheels = new Set(fs.readdirSync(from).filter((f) => f.endsWith('.whl')));
      const here = pins.filter((p) => wheels.has(p.torch.file));
      if (root) {
        if (expected) throw fail('--sha256 applies to files, not to a --from folder');
        dir = fs.realpathSync(root);
        source = 'folder';
        log(`Using the libtorch folder ${dir} in place (it is linked, not copied: keep it there)`);
      } else if (here.length) {
        const chosen = choosePin(options.cuda ?? 'auto', here, options.cuda && options.cuda !== 'auto' ? undefined : driverCuda(env));
        note = `${chosen.note}; wheels from ${from}`;
        await fromPin(chosen.pin, from);
      } else {
        throw notLibtorch(from);
      }
    } else {
      const pin = pins.find((p) => p.torch.file === path.basename(from));
      const dep = pins.find((p) => p.deps.some((d) => d.file === path.basename(from)));
      if (pin) {
        if (expected && expected !== pin.torch.sha256) throw fail(`--sha256 ${expected} contradicts the pin of ${pin.torch.file} (${pin.torch.sha256})`);
        note = `the pinned wheel ${from}${pin.deps.length ? '; its nvidia-* wheels from the same folder, else downloaded' : ''}`;
        await fromPin(pin, path.dirname(from));
      } else if (dep) {
        throw fail(`${from} is one of the nvidia-* wheels of libtorch ${dep.version} (${dep.flavor}); pass the torch wheel ` +
          `(${dep.torch.file}) or the folder holding the wheels to --from`);
      } else {
        const r = await installUnpinned(from, expected, cache, log);
        [dir, source, sha256] = [path.join(r.root, 'torch'), 'archive', r.sha256];
        if (describeLibtorch(path.join(dir, 'lib'))?.flavor.startsWith('cu')) {
          log('Note: no pin names this CUDA build, so the nvidia-* libraries it loads were not installed; ' +
            `unpack its nvidia-* wheels into ${path.join(r.root, 'nvidia')}, or make them reachable through LD_LIBRARY_PATH`);
        }
        files = [{ file: path.basename(from), sha256: r.sha256, from: 'local', location: from, pinned: false }];
      }
    }
  } else {
    const request = options.cuda ?? 'auto';
    const chosen = choosePin(request, pins, request === 'auto' ? driverCuda(env) : undefined);
    note = chosen.note;
    await fromPin(chosen.pin, undefined);
  }

  await makeLink(link, dir!);
  const libtorch = describeLibtorch(path.join(dir!, 'lib'))!;
  const tag = libtorch.version ? flavorTag(libtorch.version, libtorch.flavor) : undefined;
  const prebuild = listFlavors(packageRoot()).find((f) => f.tag === tag);
  return { dir: dir!, libtorch, link, source: source!, files, sha256, note, prebuild };
}
