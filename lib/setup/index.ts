// `videomae setup`: installs a libtorch into the per-user cache and links it as the package's
// ./libtorch, where the prebuilt binaries (RUNPATH $ORIGIN/../../libtorch/lib) and CMake's
// discovery (second place it looks) find it.
//
//   <cache>/downloads/<archive>.zip        while downloading; deleted once unpacked
//   <cache>/libtorch/<version>+<flavor>/   the archive's libtorch/ folder, plus .videomae-setup.json
//   <package>/libtorch -> that folder      a symlink (a junction on Windows), replaced on each setup
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { SingleBar } from 'cli-progress';

import { VideoMAEError } from '../errors';
import { extractArchive } from './archive';
import { download, sha256File, type DownloadOptions } from './download';
import { describeLibtorch, type LibtorchInfo } from './libtorch';
import { cacheDir, defaultLinkPath, packageRoot } from './paths';
import { choosePin, DEFAULT_MIRROR, parseDriverCuda, platformPins } from './pins';
import { listPrebuilds, prebuildMatches, type Prebuild } from './prebuilds';

export interface SetupOptions {
  /** 'auto' (default: nvidia-smi decides), 'cpu', or a CUDA version such as '12.4'. */
  cuda?: string;
  /** Install offline from a libtorch folder (linked in place) or a .zip/.tar.gz (unpacked into the cache). */
  from?: string;
  /** Expected sha256 of the archive; required while the pin has none. */
  sha256?: string;
  /** Where to make the link. Default: `<package>/libtorch`. */
  link?: string;
  /** Download and unpack again even when the cache has this archive. */
  force?: boolean;
  /** Where VIDEOMAE_CACHE_DIR, VIDEOMAE_LIBTORCH_MIRROR, VIDEOMAE_SETUP_PINS_JSON and PATH are read. Default process.env. */
  env?: NodeJS.ProcessEnv;
  /** Progress lines. Default: stderr. */
  log?: (line: string) => void;
  /** Draw a progress bar on stderr. Default: when stderr is a TTY. */
  progress?: boolean;
}

export interface SetupResult {
  /** The installed libtorch folder (lib/, include/, share/). */
  dir: string;
  libtorch: LibtorchInfo;
  /** The link made to `dir`. */
  link: string;
  /** How it got there. */
  source: 'download' | 'cache' | 'archive' | 'folder';
  /** The archive's sha256, when there was an archive. */
  sha256?: string;
  /** Why this archive was chosen (downloads). */
  note?: string;
  /** The package's prebuild for this libtorch, if it ships one. */
  prebuild?: Prebuild;
}

const MARKER = '.videomae-setup.json';

function fail(message: string, cause?: unknown): VideoMAEError {
  return new VideoMAEError('VMAE_SETUP_FAILED', message, cause === undefined ? undefined : { cause });
}

/** What is missing from a libtorch folder in the official layout; empty when nothing is. */
function layoutProblems(root: string): string[] {
  const problems: string[] = [];
  if (!describeLibtorch(path.join(root, 'lib'))) problems.push('lib/ with libc10 and libtorch_cpu');
  if (!fs.existsSync(path.join(root, 'include', 'torch'))) problems.push('include/torch/');
  if (!fs.existsSync(path.join(root, 'share', 'cmake', 'Torch', 'TorchConfig.cmake'))) problems.push('share/cmake/Torch/TorchConfig.cmake');
  return problems;
}

/** `dir` itself or its libtorch/ child, whichever is a libtorch folder. */
function libtorchRoot(dir: string): string {
  const nested = path.join(dir, 'libtorch');
  const root = fs.existsSync(path.join(nested, 'lib')) ? nested : dir;
  const problems = layoutProblems(root);
  if (problems.length) {
    throw fail(`${dir} does not hold libtorch in the official layout: missing ${problems.join(', ')}. ` +
      'Expected the unpacked official archive (a libtorch/ folder with lib/, include/ and share/cmake/Torch/).');
  }
  return root;
}

/** Unpacks `archive` into <cache>/libtorch/<version>+<flavor>, replacing an earlier one. */
async function installArchive(archive: string, cache: string, record: object): Promise<string> {
  const tmp = path.join(cache, 'tmp');
  await fs.promises.mkdir(tmp, { recursive: true });
  const staging = await fs.promises.mkdtemp(path.join(tmp, 'unpack-'));
  const previous = `${staging}.previous`;
  try {
    await extractArchive(archive, staging);
    const root = libtorchRoot(staging);
    const info = describeLibtorch(path.join(root, 'lib'))!;
    const dir = path.join(cache, 'libtorch', `${info.version ?? 'unknown'}+${info.flavor}`);
    await fs.promises.mkdir(path.dirname(dir), { recursive: true });
    if (fs.existsSync(dir)) await fs.promises.rename(dir, previous);
    await fs.promises.rename(root, dir);
    await fs.promises.writeFile(path.join(dir, MARKER), JSON.stringify({ ...record, installedAt: new Date().toISOString() }, null, 2));
    return dir;
  } finally {
    await fs.promises.rm(staging, { recursive: true, force: true });
    await fs.promises.rm(previous, { recursive: true, force: true });
  }
}

/** Points `link` at `target`, replacing an earlier link but never a real folder. */
async function makeLink(link: string, target: string): Promise<void> {
  const st = await fs.promises.lstat(link).catch(() => undefined);
  if (st && !st.isSymbolicLink()) {
    throw fail(`${link} exists and is not a link; move it away, or pass --link <path> to link elsewhere`);
  }
  const temp = `${link}.${process.pid}.tmp`;
  try {
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

function progressReporter(show: boolean, log: (line: string) => void): Pick<DownloadOptions, 'onStart' | 'onProgress'> & { stop(): void } {
  let bar: SingleBar | undefined;
  return {
    onStart(total, url) {
      const size = total === undefined ? 'unknown size' : `${(total / 1e6).toFixed(1)} MB`;
      log(`Downloading ${url} (${size})`);
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

/**
 * Installs libtorch and links it (see the top of this file). Async; rejects with VMAE_SETUP_FAILED
 * saying what to do.
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

  let dir: string;
  let source: SetupResult['source'];
  let sha256: string | undefined;
  let note: string | undefined;
  if (options.from) {
    const from = path.resolve(options.from);
    const st = await fs.promises.stat(from).catch(() => undefined);
    if (!st) throw fail(`--from ${options.from}: no such file or folder`);
    if (st.isDirectory()) {
      if (expected) throw fail('--sha256 applies to archives, not to a --from folder');
      dir = fs.realpathSync(libtorchRoot(from));
      source = 'folder';
      log(`Using the libtorch folder ${dir} in place (it is linked, not copied: keep it there)`);
    } else {
      sha256 = await sha256File(from);
      if (expected && sha256 !== expected) throw fail(`Checksum mismatch for ${from}: expected sha256 ${expected}, got ${sha256}`);
      const pinned = platformPins(env).find((p) => p.sha256 === sha256);
      log(`Unpacking ${from} (sha256 ${sha256}${expected ? ', as expected' : pinned ? `, the pinned ${pinned.flavor} archive` : ', not checked: no --sha256'})`);
      dir = await installArchive(from, cache, { from, sha256 });
      source = 'archive';
    }
  } else {
    const request = options.cuda ?? 'auto';
    const chosen = choosePin(request, platformPins(env), request === 'auto' ? driverCuda(env) : undefined);
    const { pin } = chosen;
    note = chosen.note;
    log(`libtorch ${pin.version}, ${note}`);
    const want = expected ?? pin.sha256 ?? undefined;
    if (!want) {
      throw fail(
        `The libtorch ${pin.version} ${pin.flavor} archive has no verified sha256 pinned in this release of videomae-node, ` +
          'and setup installs nothing it cannot verify. Either:\n' +
          `- pass --sha256 <hex> with the checksum of ${pin.path.split('/').pop()} from a source you trust, or\n` +
          '- download the archive yourself and run: npx videomae setup --from <file.zip|folder>',
      );
    }
    const mirror = (env.VIDEOMAE_LIBTORCH_MIRROR || DEFAULT_MIRROR).replace(/\/+$/, '');
    const url = `${mirror}/${pin.path}`;
    const cached = path.join(cache, 'libtorch', `${pin.version}+${pin.flavor}`);
    const marker = await fs.promises.readFile(path.join(cached, MARKER), 'utf8').then((t) => JSON.parse(t) as { sha256?: string }, () => undefined);
    if (!options.force && marker?.sha256 === want && layoutProblems(cached).length === 0) {
      dir = cached;
      source = 'cache';
      log(`Already in the cache: ${cached}`);
    } else {
      const downloads = path.join(cache, 'downloads');
      await fs.promises.mkdir(downloads, { recursive: true });
      const file = path.join(downloads, decodeURIComponent(path.posix.basename(pin.path)));
      const reporter = progressReporter(options.progress ?? !!process.stderr.isTTY, log);
      try {
        await download(url, file, { sha256: want, onStart: reporter.onStart, onProgress: reporter.onProgress });
      } finally {
        reporter.stop();
      }
      log(`Verified sha256 ${want}; unpacking`);
      try {
        dir = await installArchive(file, cache, { url, sha256: want });
      } finally {
        await fs.promises.rm(file, { force: true });
      }
      source = 'download';
    }
    sha256 = want;
  }

  await fs.promises.mkdir(path.dirname(link), { recursive: true });
  await makeLink(link, dir);
  const libtorch = describeLibtorch(path.join(dir, 'lib'))!;
  const prebuild = listPrebuilds(packageRoot()).find((p) => prebuildMatches(p, libtorch));
  return { dir, libtorch, link, source, sha256, note, prebuild };
}
