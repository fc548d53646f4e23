// ffprobe and ffmpeg as child processes: probing a local video file and streaming its decoded
// frames as rgb24. Every process started here is killed (SIGKILL) and reaped before the function
// that started it settles, whatever the outcome.
import { spawn } from 'node:child_process';
import * as net from 'node:net';
import { constants } from 'node:os';
import * as path from 'node:path';
import { PassThrough, Readable, type Writable } from 'node:stream';
import { getSystemErrorName } from 'node:util';

import type { NativeBinding, NativeSpawned } from '../../binding';
import { VideoMAEError } from '../errors';
import { native } from '../native';

/** What ffprobe says about the first video stream of a file. */
export interface VideoProbe {
  /** Frame size after rotation (ffmpeg autorotates while decoding, so this is what it outputs). */
  width: number;
  height: number;
  /** Display rotation in degrees from the stream's display matrix (or legacy rotate tag); 0 if none. */
  rotation: number;
  /** Video packets counted by `-count_packets`; undefined when ffprobe could not count them. */
  frames: number | undefined;
  /** Seconds, from the container or the stream; undefined when unknown. */
  durationSec: number | undefined;
  /** Average frame rate; undefined when unknown. */
  fps: number | undefined;
  codec: string;
}

/** The ffmpeg and ffprobe binaries: FFMPEG_PATH / FFPROBE_PATH, or the ones on PATH. */
export function binaries(env: NodeJS.ProcessEnv = process.env): { ffmpeg: Binary; ffprobe: Binary } {
  const ffmpeg: Binary = env.FFMPEG_PATH
    ? { path: env.FFMPEG_PATH, from: 'FFMPEG_PATH' }
    : { path: 'ffmpeg', from: 'PATH' };
  let ffprobe: Binary = { path: 'ffprobe', from: 'PATH' };
  if (env.FFPROBE_PATH) ffprobe = { path: env.FFPROBE_PATH, from: 'FFPROBE_PATH' };
  else if (env.FFMPEG_PATH && /[\\/]/.test(env.FFMPEG_PATH)) {
    // An FFMPEG_PATH that names a file points at an install; take ffprobe from the same folder.
    const file = path.join(path.dirname(env.FFMPEG_PATH), 'ffprobe' + path.extname(env.FFMPEG_PATH));
    ffprobe = { path: file, from: 'the folder of FFMPEG_PATH' };
  }
  return { ffmpeg, ffprobe };
}

/** A binary to run, and where its name came from (for messages). */
export interface Binary {
  path: string;
  from: string;
}

/**
 * The argument that makes ffmpeg read `file` as a plain local file: with the `file:` protocol
 * spelled out, names such as `concat:a|b`, `http://…`, `subfile,…` or `-i` cannot be taken for
 * another protocol or an option. `-protocol_whitelist file` keeps nested opens (playlists,
 * concat scripts) local too.
 */
export function fileArg(absolutePath: string): string {
  return `file:${absolutePath}`;
}

// Inputs are always local files (Buffers and streams are spooled to one), so only `file` is allowed.
const INPUT_ARGS = ['-protocol_whitelist', 'file'];

export function decodeFailed(message: string): VideoMAEError {
  return new VideoMAEError('VMAE_DECODE_FAILED', message);
}

/** The last lines of what ffmpeg wrote to stderr, trimmed to something a message can hold. */
export function stderrTail(text: string): string {
  const lines = text.split(/\r?\n/).map((l) => l.trim()).filter(Boolean);
  const tail = lines.slice(-6).join('; ');
  return tail.length > 800 ? '…' + tail.slice(-800) : tail;
}

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  error?: NodeJS.ErrnoException;
}

/** A started process: its pipes, its exit (never rejects) and the tail of its stderr. */
export interface Running {
  /** fd 0, when start() was asked for one (else the process reads /dev/null). */
  stdin: Writable | null;
  stdout: Readable;
  /** fd 3, when start() was asked for it. */
  fd3: Readable | null;
  /** Resolves once the process has exited and its stdout, stderr and fd 3 have closed. */
  exited: Promise<Exit>;
  stderr(): string;
  /** SIGKILLs the process if it still runs, and waits until it is reaped. */
  kill(): Promise<Exit>;
}

const STDERR_KEEP = 16 * 1024;
// Number -> name; the first name wins where two share a number (SIGABRT before SIGIOT), as in Node.
const SIGNALS = new Map<number, NodeJS.Signals>();
for (const [name, n] of Object.entries(constants.signals)) if (!SIGNALS.has(n)) SIGNALS.set(n, name as NodeJS.Signals);

const closed = (s: Readable) => new Promise<void>((resolve) => {
  if (s.destroyed) resolve();
  else s.once('close', () => resolve());
});

/** Reads `stream` as text, keeping at least its last STDERR_KEEP characters; returns their getter. */
function keepTail(stream: Readable): () => string {
  let text = '';
  stream.setEncoding('utf8');
  stream.on('data', (s: string) => {
    text += s;
    if (text.length > 2 * STDERR_KEEP) text = text.slice(-STDERR_KEEP);
  });
  return () => text;
}

/**
 * Starts `bin`; `extraPipe` adds fd 3 as a pipe, `stdin` makes fd 0 one (else it reads /dev/null).
 * Through the addon's posix_spawn (native/addon/spawn.h), so that starting ffmpeg never forks this
 * process, which with a model loaded blocks the event loop for tens of milliseconds; through
 * child_process where the addon cannot load.
 */
export function start(bin: string, args: string[], extraPipe = false, stdin = false): Running {
  let spawnProcess: NativeBinding['spawnProcess'];
  try {
    spawnProcess = native().spawnProcess;
  } catch {
    return startChild(bin, args, extraPipe, stdin);
  }
  let reaped = false;
  let exitedNow!: (exit: Exit) => void;
  const exit = new Promise<Exit>((resolve) => (exitedNow = resolve));
  let fds: NativeSpawned;
  try {
    // onExit comes later, from the event loop, once the sockets below exist.
    fds = spawnProcess(bin, args, { stdin, fd3: extraPipe }, (code, signal) => {
      reaped = true;
      exitedNow({ code, signal: signal === null ? null : SIGNALS.get(signal) ?? null });
      // As child_process does on exit: drop stdin and let paused pipes drain, so that they close.
      stdinSocket?.destroy();
      process.nextTick(() => {
        for (const s of readers) if (!s.destroyed) s.resume();
      });
    });
  } catch (e) {
    const error = e as NodeJS.ErrnoException;
    if (typeof error.errno === 'number') error.code = getSystemErrorName(-error.errno);
    const none = () => Readable.from([]);
    const done = Promise.resolve({ code: null, signal: null, error });
    return { stdin: stdin ? new PassThrough() : null, stdout: none(), fd3: extraPipe ? none() : null, exited: done, stderr: () => '', kill: () => done };
  }
  const socket = (fd: number, readable: boolean) => new net.Socket({ fd, readable, writable: !readable });
  const stdinSocket = stdin ? socket(fds.stdin, false) : null;
  const stdout = socket(fds.stdout, true);
  const stderr = socket(fds.stderr, true);
  const fd3 = extraPipe ? socket(fds.fd3, true) : null;
  const readers = [stdout, stderr, ...(fd3 ? [fd3] : [])];
  const exited = Promise.all([exit, ...readers.map(closed)]).then(([e]) => e);
  return {
    stdin: stdinSocket,
    stdout,
    fd3,
    exited,
    stderr: keepTail(stderr),
    kill: () => {
      // `reaped` is set on the JS thread together with the reaping, so the pid is still ours here.
      if (!reaped) process.kill(fds.pid, 'SIGKILL');
      return exited;
    },
  };
}

/** start() through child_process.spawn (a fork of this process). */
function startChild(bin: string, args: string[], extraPipe: boolean, stdin: boolean): Running {
  const proc = spawn(bin, args, {
    stdio: [stdin ? 'pipe' : 'ignore', 'pipe', 'pipe', ...(extraPipe ? ['pipe' as const] : [])], windowsHide: true,
  });
  const stderr = keepTail(proc.stderr!);
  const exited = new Promise<Exit>((resolve) => {
    // 'error' without 'close' happens when the binary cannot be started at all.
    proc.on('error', (error: NodeJS.ErrnoException) => {
      if (proc.pid === undefined) resolve({ code: null, signal: null, error });
    });
    proc.once('close', (code, signal) => resolve({ code, signal }));
  });
  return {
    stdin: proc.stdin,
    stdout: proc.stdout!,
    fd3: extraPipe ? proc.stdio[3] as Readable : null,
    exited,
    stderr,
    kill: () => {
      if (proc.pid !== undefined && proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
      return exited;
    },
  };
}

/** The error for a process that could not be started. */
export function notStarted(tool: 'ffmpeg' | 'ffprobe', bin: Binary, error: NodeJS.ErrnoException): VideoMAEError {
  const hint = 'Install FFmpeg (apt-get install ffmpeg, brew install ffmpeg, or https://ffmpeg.org/download.html), ' +
    'or set FFMPEG_PATH and FFPROBE_PATH to its binaries';
  const why = error.code === 'ENOENT' ? 'was not found' : `could not be started (${error.message})`;
  return decodeFailed(`${tool} ${why} ('${bin.path}', from ${bin.from}). ${hint}`);
}

/** Kills the process when `signal` aborts; returns the listener's remover. */
export function killOnAbort(run: Running, signal: AbortSignal): () => void {
  const onAbort = () => void run.kill();
  signal.addEventListener('abort', onAbort, { once: true });
  return () => signal.removeEventListener('abort', onAbort);
}

const MAX_TEXT_OUTPUT = 8 * 1024 * 1024;

/**
 * Async. Runs a tool to completion and resolves with its stdout. Rejects with VMAE_DECODE_FAILED
 * when it cannot start or exits non-zero (`failure` prefixes its stderr), or with signal.reason.
 */
async function runText(tool: 'ffmpeg' | 'ffprobe', bin: Binary, args: string[], failure: string,
  signal: AbortSignal): Promise<string> {
  if (signal.aborted) throw signal.reason;
  const run = start(bin.path, args);
  const remove = killOnAbort(run, signal);
  let out = '';
  try {
    run.stdout.setEncoding('utf8');
    for await (const s of run.stdout as AsyncIterable<string>) {
      out += s;
      if (out.length > MAX_TEXT_OUTPUT) throw decodeFailed(`${tool} printed more than ${MAX_TEXT_OUTPUT} bytes (${failure})`);
    }
    const exit = await run.exited;
    if (signal.aborted) throw signal.reason;
    if (exit.error) throw notStarted(tool, bin, exit.error);
    if (exit.code !== 0) throw decodeFailed(`${failure}: ${stderrTail(run.stderr()) || `exit ${exit.code ?? exit.signal}`}`);
    return out;
  } finally {
    remove();
    await run.kill();
  }
}

/**
 * Async. Runs ffprobe on a local file (absolute path). Rejects with VMAE_DECODE_FAILED (ffprobe's
 * own message when it fails, or when there is no video stream), or with signal.reason on abort.
 */
export async function probe(file: string, name: string, signal: AbortSignal): Promise<VideoProbe> {
  const { ffprobe } = binaries();
  const json = await runText('ffprobe', ffprobe, [
    '-v', 'error', '-hide_banner', ...INPUT_ARGS,
    // V, not v: the first video stream that is not cover art (attached picture).
    '-select_streams', 'V:0', '-count_packets', '-show_streams', '-show_format', '-of', 'json',
    fileArg(file),
  ], `ffprobe could not read ${name}`, signal);
  return parseProbe(json, name);
}

const syncArgs = new Map<string, string[]>();

/**
 * Async. The output option for one frame out per decoded frame: `-fps_mode passthrough` from
 * ffmpeg 5.1 on (newer releases drop `-vsync`), `-vsync passthrough` before. Cached per binary.
 */
export async function passthroughArgs(bin: Binary, signal: AbortSignal): Promise<string[]> {
  let args = syncArgs.get(bin.path);
  if (!args) {
    const text = await runText('ffmpeg', bin, ['-hide_banner', '-version'], 'ffmpeg -version failed', signal);
    // "ffmpeg version 5.1.9-0+deb12u1", "ffmpeg version n7.1"; git builds ("N-11…") are new.
    const m = /^ffmpeg version n?(\d+)\.(\d+)/.exec(text);
    const old = m !== null && (Number(m[1]) < 5 || (Number(m[1]) === 5 && Number(m[2]) < 1));
    args = old ? ['-vsync', 'passthrough'] : ['-fps_mode', 'passthrough'];
    syncArgs.set(bin.path, args);
  }
  return args;
}

interface ProbeJson {
  streams?: Array<Record<string, unknown> & {
    side_data_list?: Array<Record<string, unknown>>;
    tags?: Record<string, unknown>;
  }>;
  format?: Record<string, unknown>;
}

const num = (v: unknown): number | undefined => {
  const n = typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : NaN;
  return Number.isFinite(n) ? n : undefined;
};

const rate = (v: unknown): number | undefined => {
  if (typeof v !== 'string') return undefined;
  const [a, b] = v.split('/').map(Number);
  const r = b === undefined ? a : a / b;
  return Number.isFinite(r) && r > 0 ? r : undefined;
};

/** Parses `ffprobe -show_streams -show_format -of json` output. Throws VMAE_DECODE_FAILED. */
export function parseProbe(json: string, name: string): VideoProbe {
  let data: ProbeJson;
  try {
    data = JSON.parse(json) as ProbeJson;
  } catch {
    throw decodeFailed(`ffprobe printed unreadable JSON for ${name}`);
  }
  const s = data.streams?.[0];
  if (!s) throw decodeFailed(`${name} has no video stream`);
  const width = num(s.width);
  const height = num(s.height);
  if (!width || !height || !Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw decodeFailed(`ffprobe reports no frame size for the video stream of ${name}`);
  }
  // ffmpeg >= 5 reports the display matrix rotation in side data; older versions a `rotate` tag.
  let rotation = 0;
  const matrix = s.side_data_list?.find((d) => num(d.rotation) !== undefined);
  if (matrix) rotation = num(matrix.rotation)!;
  else if (num(s.tags?.rotate) !== undefined) rotation = num(s.tags?.rotate)!;
  // ffmpeg transposes only for (near) multiples of 90°; other angles keep the frame size.
  const quarter = Math.round(rotation / 90);
  const swap = Math.abs(rotation - quarter * 90) < 1 && Math.abs(quarter) % 2 === 1;
  const frames = num(s.nb_read_packets) ?? num(s.nb_frames);
  const duration = num(data.format?.duration) ?? num(s.duration);
  return {
    width: swap ? height : width,
    height: swap ? width : height,
    rotation,
    frames: frames !== undefined && frames > 0 ? frames : undefined,
    durationSec: duration !== undefined && duration > 0 ? duration : undefined,
    fps: rate(s.avg_frame_rate) ?? rate(s.r_frame_rate),
    codec: typeof s.codec_name === 'string' ? s.codec_name : 'unknown',
  };
}

export interface DecodeOptions {
  /** The output frame size (VideoProbe.width/height). */
  height: number;
  width: number;
  /**
   * The frames wanted (0-based, in decode order), ascending and distinct. ffmpeg's `select`
   * filter drops the others before they are converted to rgb24 and piped.
   */
  wanted: readonly number[];
  /**
   * Receives each wanted frame, rgb24 [height,width,3]. `frame` is reused for the next one: copy
   * what you keep. Decoding pauses while a returned promise is pending; a throw stops it.
   */
  onFrame(index: number, frame: Buffer): void | Promise<void>;
  /** Stop with VMAE_INVALID_INPUT once more than this many frames have been decoded. */
  maxFrames: number;
  signal: AbortSignal;
}

/** Bytes per frame of the counting output: every decoded frame scaled to 2x2 gray. */
const COUNT_FRAME_BYTES = 4;

/** An ffmpeg `select` expression true for exactly the frames in `wanted` (ascending, distinct). */
export function selectExpression(wanted: readonly number[]): string {
  if (wanted.length === 0) return '0';
  const terms: string[] = [];
  for (let i = 0; i < wanted.length;) {
    let j = i;
    while (j + 1 < wanted.length && wanted[j + 1] === wanted[j] + 1) j++;
    // Commas inside a filter's arguments are escaped for the filtergraph parser.
    terms.push(i === j ? `eq(n\\,${wanted[i]})` : `between(n\\,${wanted[i]}\\,${wanted[j]})`);
    i = j + 1;
  }
  return terms.join('+');
}

/**
 * Async. Decodes the first video stream of a local file (absolute path) and streams the wanted
 * frames, rgb24, to `onFrame`; resolves with the number of frames decoded. ffmpeg splits the
 * decoded stream: one branch keeps the wanted frames (`select`) for stdout, the other turns every
 * frame into 4 bytes on fd 3, which is how the frames are counted without piping them all.
 * Rejects with VMAE_DECODE_FAILED (with ffmpeg's message), VMAE_INVALID_INPUT (maxFrames),
 * signal.reason on abort, or whatever onFrame throws.
 */
export async function decodeFrames(file: string, name: string, o: DecodeOptions): Promise<number> {
  const { ffmpeg } = binaries();
  // One output frame per decoded frame: no duplicates or drops to reach a constant rate.
  const passthrough = await passthroughArgs(ffmpeg, o.signal);
  if (o.signal.aborted) throw o.signal.reason;
  const frameBytes = o.width * o.height * 3;
  const run = start(ffmpeg.path, [
    '-nostdin', '-hide_banner', '-loglevel', 'error', ...INPUT_ARGS,
    '-i', fileArg(file),
    '-filter_complex', `[0:V:0]split=2[all][count];[all]select=${selectExpression(o.wanted)}[kept];` +
      '[count]scale=2:2:flags=neighbor,format=gray[counted]',
    // The probed (post-rotation) size; this also keeps frames one size if the stream changes size.
    '-map', '[kept]', ...passthrough, '-s', `${o.width}x${o.height}`, '-f', 'rawvideo', '-pix_fmt', 'rgb24', 'pipe:1',
    '-map', '[counted]', ...passthrough, '-f', 'rawvideo', 'pipe:3',
  ], true);
  const remove = killOnAbort(run, o.signal);
  let counted = 0;
  let tooMany = false;
  const counter = run.fd3!;
  counter.on('error', () => undefined); // the process's own exit status reports what went wrong
  counter.on('data', (chunk: Buffer) => {
    counted += chunk.length;
    if (!tooMany && counted > o.maxFrames * COUNT_FRAME_BYTES) {
      tooMany = true;
      void run.kill();
    }
  });
  const frame = Buffer.allocUnsafe(frameBytes);
  let delivered = 0;
  let filled = 0;
  try {
    for await (const chunk of run.stdout as AsyncIterable<Buffer>) {
      let offset = 0;
      while (offset < chunk.length) {
        if (delivered === o.wanted.length) throw decodeFailed(`ffmpeg returned more frames than were selected from ${name}`);
        const n = Math.min(frameBytes - filled, chunk.length - offset);
        chunk.copy(frame, filled, offset, offset + n);
        filled += n;
        offset += n;
        if (filled < frameBytes) continue;
        await o.onFrame(o.wanted[delivered], frame);
        delivered++;
        filled = 0;
      }
    }
    const exit = await run.exited;
    if (o.signal.aborted) throw o.signal.reason;
    if (tooMany) {
      throw new VideoMAEError('VMAE_INVALID_INPUT',
        `Expected a video of at most ${o.maxFrames} frames (limits.maxFrames) but ${name} decodes to more`);
    }
    if (exit.error) throw notStarted('ffmpeg', ffmpeg, exit.error);
    if (exit.code !== 0) {
      throw decodeFailed(`ffmpeg could not decode ${name}: ${stderrTail(run.stderr()) || `exit ${exit.code ?? exit.signal}`}`);
    }
    if (filled !== 0) throw decodeFailed(`ffmpeg returned a partial last frame for ${name} (${filled} of ${frameBytes} bytes)`);
    const total = Math.floor(counted / COUNT_FRAME_BYTES);
    if (total === 0) {
      const why = stderrTail(run.stderr());
      throw decodeFailed(`ffmpeg decoded no frames from ${name}${why ? `: ${why}` : ''}`);
    }
    const expected = o.wanted.filter((i) => i < total).length;
    if (counted % COUNT_FRAME_BYTES !== 0 || delivered !== expected) {
      throw decodeFailed(`ffmpeg's frame count and selected frames disagree for ${name} ` +
        `(${counted} count bytes, ${delivered} frames selected, ${expected} expected)`);
    }
    return total;
  } finally {
    remove();
    await run.kill();
  }
}
