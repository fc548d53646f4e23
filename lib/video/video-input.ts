// What classifyVideo accepts as a video (a path, a Buffer or a Readable), made into one local file
// that ffprobe and ffmpeg can both read, and read twice when the frame count needs a second pass.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';

import { expected, invalid, VideoMAEError } from '../errors';

/** A video file path, its bytes, or a stream of its bytes. */
export type VideoInput = string | Uint8Array | Readable;

export interface LocalVideo {
  /** Absolute path of a regular file. */
  file: string;
  /** How messages name the input. */
  name: string;
  /** Removes the temp copy of a Buffer or stream input; a no-op for paths. */
  cleanup(): Promise<void>;
}

// A relative name that looks like a URL or an ffmpeg protocol ("http://…", "concat:…").
const URL_LIKE = /^[a-z][a-z0-9+.,-]*:/i;

/**
 * Async. A path is resolved and must name an existing regular file; it is never interpreted as a
 * URL or an ffmpeg protocol. A Buffer or stream is written to a private temp file (mode 0600 in a
 * 0700 folder). Rejects with VMAE_INVALID_INPUT (bad argument, missing file, too large), with
 * VMAE_DECODE_FAILED when the stream fails, or with signal.reason.
 */
export async function localVideo(input: VideoInput, maxInputBytes: number, signal: AbortSignal): Promise<LocalVideo> {
  if (typeof input === 'string') return localPath(input);
  if (input instanceof Uint8Array) {
    if (input.byteLength === 0) throw invalid('Expected a non-empty Buffer for input but received 0 bytes');
    if (input.byteLength > maxInputBytes) {
      throw invalid(`Expected at most ${maxInputBytes} bytes (limits.maxInputBytes) for input but received ${input.byteLength}`);
    }
    return spool('the Buffer input', signal, (out) => fs.promises.writeFile(out, input, { mode: 0o600, flag: 'wx', signal }));
  }
  if (input instanceof Readable || isNodeStream(input)) {
    return spool('the stream input', signal, async (out) => {
      let bytes = 0;
      const limit = new Transform({
        transform(chunk: Buffer, _enc, done) {
          bytes += chunk.length;
          if (bytes > maxInputBytes) {
            done(invalid(`Expected at most ${maxInputBytes} bytes (limits.maxInputBytes) for the stream input but it is longer`));
          } else done(null, chunk);
        },
      });
      try {
        await pipeline(input as Readable, limit, fs.createWriteStream(out, { mode: 0o600, flags: 'wx' }), { signal });
      } catch (err) {
        if (signal.aborted) throw signal.reason;
        if (err instanceof VideoMAEError) throw err;
        throw new VideoMAEError('VMAE_DECODE_FAILED', `Could not read the stream input: ${(err as Error).message}`, { cause: err });
      }
      if (bytes === 0) throw invalid('Expected a video for the stream input but the stream was empty');
    });
  }
  throw expected('a file path, a Buffer or a Readable stream', 'input', input);
}

/** Whether `v` is something localVideo() takes: a path, a Uint8Array (Buffer) or a stream. */
export function isVideoInput(v: unknown): v is VideoInput {
  return typeof v === 'string' || v instanceof Uint8Array || v instanceof Readable || isNodeStream(v);
}

function isNodeStream(v: unknown): boolean {
  const s = v as { pipe?: unknown; on?: unknown; [Symbol.asyncIterator]?: unknown } | null;
  return typeof s === 'object' && s !== null && typeof s.pipe === 'function' && typeof s.on === 'function' &&
    typeof s[Symbol.asyncIterator] === 'function';
}

async function localPath(input: string): Promise<LocalVideo> {
  if (input.length === 0 || input.includes('\0')) throw expected('a video file path', 'input', input);
  const file = path.resolve(input);
  let stat: fs.Stats;
  try {
    stat = await fs.promises.stat(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : (err as Error).message;
    const url = URL_LIKE.test(input) && !path.isAbsolute(input)
      ? '; URLs and ffmpeg protocols are not supported, the input is always read as a local file' : '';
    throw invalid(`${expected('an existing video file', 'input', input).message} (${why}${url})`);
  }
  if (!stat.isFile()) {
    throw invalid(`${expected('a regular file', 'input', input).message} (a directory, device, socket or FIFO)`);
  }
  return { file, name: `'${input}'`, cleanup: async () => undefined };
}

async function spool(name: string, signal: AbortSignal, write: (file: string) => Promise<void>): Promise<LocalVideo> {
  if (signal.aborted) throw signal.reason;
  const dir = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'videomae-'));
  const cleanup = () => fs.promises.rm(dir, { recursive: true, force: true });
  const file = path.join(dir, 'input');
  try {
    await write(file);
    if (signal.aborted) throw signal.reason;
  } catch (err) {
    await cleanup();
    throw signal.aborted ? signal.reason : err;
  }
  return { file, name, cleanup };
}
