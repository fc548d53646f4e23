// Unpacks a .zip (the official libtorch archives) or a .tar/.tar.gz into an empty folder, and never
// writes outside it: an entry with an absolute path or a `..` segment, a link that points outside
// the folder, or a device/FIFO entry makes the whole archive refused before anything is written
// (tar) or as soon as it is met (zip; the caller extracts into a staging folder it deletes then).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pipeline } from 'node:stream/promises';

import * as tar from 'tar';
import * as yauzl from 'yauzl';

import { VideoMAEError } from '../errors';

function refuse(archive: string, why: string): VideoMAEError {
  return new VideoMAEError('VMAE_SETUP_FAILED', `Refusing to unpack ${archive}: ${why}`);
}

/** An entry's path relative to the target, or throws: absolute, drive letters, `..`, backslashes. */
function safeRelative(archive: string, name: string): string {
  if (name.includes('\0') || name.includes('\\')) throw refuse(archive, `entry '${name}' has a NUL or backslash in its name`);
  if (path.posix.isAbsolute(name) || /^[a-zA-Z]:/.test(name)) throw refuse(archive, `entry '${name}' has an absolute path`);
  if (name.split('/').includes('..')) throw refuse(archive, `entry '${name}' climbs out with '..'`);
  return path.posix.normalize(name).replace(/\/+$/, '');
}

/** Throws unless the link `rel` -> `target` resolves inside the target folder. */
function checkLink(archive: string, rel: string, target: string, hard: boolean): void {
  const resolved = path.posix.normalize(hard ? target : path.posix.join(path.posix.dirname(rel), target));
  if (path.posix.isAbsolute(target) || resolved === '..' || resolved.startsWith('../') || /^[a-zA-Z]:/.test(target)) {
    throw refuse(archive, `link '${rel}' points outside the folder (${target})`);
  }
}

/** 'zip' or 'tar' from the file's first bytes (gzip is taken to hold a tar). */
export function archiveKind(file: string): 'zip' | 'tar' | undefined {
  const head = Buffer.alloc(262);
  const fd = fs.openSync(file, 'r');
  try {
    fs.readSync(fd, head, 0, head.length, 0);
  } finally {
    fs.closeSync(fd);
  }
  if (head.readUInt32LE(0) === 0x04034b50 || head.readUInt32LE(0) === 0x06054b50) return 'zip';
  if (head[0] === 0x1f && head[1] === 0x8b) return 'tar';
  if (head.toString('latin1', 257, 262) === 'ustar') return 'tar';
  return undefined;
}

async function extractTar(archive: string, dest: string): Promise<void> {
  const problems: VideoMAEError[] = [];
  const allowed = new Set(['File', 'OldFile', 'ContiguousFile', 'Directory', 'SymbolicLink', 'Link']);
  await tar.t({
    file: archive,
    onReadEntry: (entry) => {
      try {
        const rel = safeRelative(archive, entry.path);
        if (!allowed.has(entry.type)) throw refuse(archive, `entry '${entry.path}' is a ${entry.type}`);
        if (entry.type === 'SymbolicLink' || entry.type === 'Link') checkLink(archive, rel, entry.linkpath ?? '', entry.type === 'Link');
      } catch (err) {
        problems.push(err as VideoMAEError);
      }
    },
  });
  if (problems.length) throw problems[0];
  // node-tar refuses the same things on its own; the listing above makes them fatal, not skipped.
  await tar.x({ file: archive, cwd: dest, strict: true, preservePaths: false });
}

function openZip(archive: string): Promise<yauzl.ZipFile> {
  return new Promise((resolve, reject) => {
    yauzl.open(archive, { lazyEntries: true, autoClose: true, strictFileNames: true, validateEntrySizes: true }, (err, zip) =>
      err ? reject(refuse(archive, err.message)) : resolve(zip));
  });
}

function openEntry(zip: yauzl.ZipFile, entry: yauzl.Entry): Promise<NodeJS.ReadableStream> {
  return new Promise((resolve, reject) => zip.openReadStream(entry, (err, stream) => (err ? reject(err) : resolve(stream))));
}

/** Picks the entries to unpack by their (already checked) relative path; folders are made as needed. */
export type EntryFilter = (rel: string) => boolean;

async function extractZip(archive: string, dest: string, filter?: EntryFilter): Promise<void> {
  const zip = await openZip(archive);
  // Links are made last, so no file is ever written through one.
  const links: { at: string; target: string }[] = [];
  const handle = async (entry: yauzl.Entry): Promise<void> => {
    const rel = safeRelative(archive, entry.fileName);
    if (rel === '.' || (filter && !filter(rel))) return;
    const at = path.join(dest, rel);
    const mode = (entry.externalFileAttributes >>> 16) & 0o177777;
    const type = mode & 0o170000;
    if (entry.fileName.endsWith('/') || type === 0o040000) {
      await fs.promises.mkdir(at, { recursive: true });
    } else if (type === 0o120000) {
      const chunks: Buffer[] = [];
      for await (const chunk of await openEntry(zip, entry)) chunks.push(chunk as Buffer);
      const target = Buffer.concat(chunks).toString('utf8');
      checkLink(archive, rel, target, false);
      links.push({ at, target });
    } else if (type === 0 || type === 0o100000) {
      await fs.promises.mkdir(path.dirname(at), { recursive: true });
      await pipeline(await openEntry(zip, entry), fs.createWriteStream(at, { mode: mode & 0o777 || 0o644 }));
    } else {
      throw refuse(archive, `entry '${entry.fileName}' is not a file, folder or link`);
    }
  };
  await new Promise<void>((resolve, reject) => {
    zip.on('error', (err: Error) => reject(err instanceof VideoMAEError ? err : refuse(archive, err.message)));
    zip.on('end', resolve);
    zip.on('entry', (entry: yauzl.Entry) => {
      handle(entry).then(() => zip.readEntry(), (err) => {
        zip.close();
        reject(err);
      });
    });
    zip.readEntry();
  });
  for (const { at, target } of links) {
    await fs.promises.mkdir(path.dirname(at), { recursive: true });
    await fs.promises.symlink(target, at);
  }
}

/** The unpacked size of a zip's entries that `filter` picks (from its central directory). Async. */
export async function zipUnpackedSize(archive: string, filter: EntryFilter): Promise<number> {
  const zip = await openZip(archive);
  let total = 0;
  await new Promise<void>((resolve, reject) => {
    zip.on('error', (err: Error) => reject(refuse(archive, err.message)));
    zip.on('end', resolve);
    zip.on('entry', (entry: yauzl.Entry) => {
      if (filter(entry.fileName)) total += entry.uncompressedSize;
      zip.readEntry();
    });
    zip.readEntry();
  });
  return total;
}

/**
 * Unpacks `archive` (.zip or .whl, .tar, .tar.gz) into `dest`, which it creates; for a zip, only the
 * entries `filter` picks. Async; rejects with VMAE_SETUP_FAILED for an unsafe or unreadable archive,
 * leaving `dest` for the caller to delete. Write errors (ENOSPC, EACCES) reject as they are.
 */
export async function extractArchive(archive: string, dest: string, filter?: EntryFilter): Promise<void> {
  const kind = archiveKind(archive);
  if (!kind) throw refuse(archive, 'it is neither a zip nor a tar(.gz) archive');
  await fs.promises.mkdir(dest, { recursive: true });
  try {
    await (kind === 'zip' ? extractZip(archive, dest, filter) : extractTar(archive, dest));
  } catch (err) {
    if (err instanceof VideoMAEError || (err as NodeJS.ErrnoException).code) throw err;
    throw refuse(archive, (err as Error).message);
  }
}
