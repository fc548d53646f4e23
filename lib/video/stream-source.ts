// Where a live stream's frames come from: ffmpeg decoding a file, a byte stream or a network URL
// (rgb24 PPM images on stdout, their timestamps on fd 3), or frames the caller pushes
// (FrameStream). Either way only every sampleRate-th decoded frame is delivered, because no
// window uses the others.
import { Readable } from 'node:stream';

import { expected, invalid, VideoMAEError } from '../errors';
import { binaries, decodeFailed, fileArg, notStarted, passthroughArgs, start, stderrTail, type Running } from './ffmpeg';

/** One sampled frame, rgb24 [height, width, 3]. */
export interface SampledFrame {
  /** Decoded-frame index since the stream started: a multiple of sampleRate. */
  index: number;
  /** Seconds since the stream's first frame (from the frame timestamps, or index / fps). */
  timeSec: number;
  data: Uint8Array;
  width: number;
  height: number;
  /** performance.now() when the frame's last byte arrived. */
  arrivedAt: number;
}

/** What a source delivers to. `end` is called once, with the reason when the source failed. */
export interface FrameSink {
  frame(f: SampledFrame): void;
  end(err?: unknown): void;
}

/** A source of sampled frames, started once by one stream. */
export interface FrameSource {
  /** How messages name the source. */
  readonly name: string;
  /** Starts delivering every sampleRate-th frame to `sink`. */
  start(sink: FrameSink, sampleRate: number): void;
  /** Flow control for mode 'every': stop delivering soon, and go on. */
  pause(): void;
  resume(): void;
  /** Stops for good: ffmpeg is killed and reaped before it resolves. Idempotent. */
  close(): Promise<void>;
}

/** Frame size limits a source checks (VideoLimits.maxWidth / maxHeight). */
export interface FrameLimits {
  maxWidth: number;
  maxHeight: number;
}

/** Where ffmpeg reads from. */
export type FfmpegInput =
  | { kind: 'file'; file: string; name: string }
  | { kind: 'url'; url: string; whitelist: string; name: string }
  | { kind: 'pipe'; stream: Readable; name: string };

const MAX_SIDE = 16384;
const TIME_BASE = 1_000_000; // fd 3 timestamps are in microseconds (-enc_time_base)

/**
 * Frames decoded by ffmpeg. The filter graph keeps every sampleRate-th decoded frame (`select`),
 * one output frame per decoded frame (passthrough, as classifyVideo decodes), rgb24, as PPM
 * images on stdout: each carries its own size, so nothing needs probing first (a live pipe cannot
 * be probed twice). A second branch scales the same frames to 1x1 gray and writes them with the framecrc
 * muxer to fd 3, one text line per frame with its timestamp. Both outputs flush every packet,
 * so a frame is piped as soon as it is decoded.
 */
export class FfmpegSource implements FrameSource {
  readonly name: string;
  private run: Running | undefined;
  private closed = false;
  private readonly controller = new AbortController();
  private paused = false;

  constructor(private readonly input: FfmpegInput, private readonly limits: FrameLimits) {
    this.name = input.name;
  }

  start(sink: FrameSink, sampleRate: number): void {
    this.decode(sink, sampleRate).then(() => sink.end(), (err) => sink.end(err));
  }

  pause(): void {
    this.paused = true;
    this.run?.stdout.pause();
  }

  resume(): void {
    this.paused = false;
    this.run?.stdout.resume();
  }

  async close(): Promise<void> {
    this.closed = true;
    this.controller.abort();
    if (this.input.kind === 'pipe' && this.run?.stdin) this.input.stream.unpipe(this.run.stdin);
    await this.run?.kill();
  }

  private async decode(sink: FrameSink, r: number): Promise<void> {
    const { ffmpeg } = binaries();
    const passthrough = await passthroughArgs(ffmpeg, this.controller.signal);
    if (this.closed) return;
    const i = this.input;
    const [whitelist, inputArg] = i.kind === 'file' ? ['file', fileArg(i.file)]
      : i.kind === 'url' ? [i.whitelist, i.url] : ['pipe', 'pipe:0'];
    const run = this.run = start(ffmpeg.path, [
      ...(i.kind === 'pipe' ? [] : ['-nostdin']), '-hide_banner', '-loglevel', 'error',
      '-protocol_whitelist', whitelist, '-i', inputArg,
      '-filter_complex', `[0:V:0]select=not(mod(n\\,${r})),split=2[img][t];[t]scale=1:1,format=gray[ts]`,
      '-map', '[img]', ...passthrough, '-pix_fmt', 'rgb24', '-c:v', 'ppm', '-f', 'image2pipe', '-flush_packets', '1', 'pipe:1',
      '-map', '[ts]', ...passthrough, '-enc_time_base', `1/${TIME_BASE}`, '-f', 'framecrc', '-flush_packets', '1', 'pipe:3',
    ], true, i.kind === 'pipe');
    let inputError: Error | undefined;
    if (i.kind === 'pipe') {
      const stdin = run.stdin!;
      stdin.on('error', () => undefined); // EPIPE once ffmpeg exits; its exit status says why
      i.stream.once('error', (err: Error) => {
        inputError = err;
        void run.kill();
      });
      i.stream.pipe(stdin);
    }
    if (this.paused) run.stdout.pause();

    const images = new PpmParser(this.limits, this.name);
    const stamps = new StampParser();
    const frames: Array<Omit<SampledFrame, 'timeSec' | 'index'>> = [];
    let delivered = 0;
    let first: number | undefined;
    let failure: unknown;
    const pair = () => {
      while (frames.length > 0 && stamps.pts.length > 0) {
        const f = frames.shift()!;
        const pts = stamps.pts.shift()!;
        first ??= pts;
        sink.frame({ ...f, index: delivered * r, timeSec: (pts - first) / TIME_BASE });
        delivered++;
      }
    };
    const fail = (err: unknown) => {
      failure ??= err;
      void run.kill();
    };
    run.stdout.on('data', (chunk: Buffer) => {
      if (failure !== undefined) return;
      try {
        for (const f of images.push(chunk)) frames.push(f);
        pair();
      } catch (err) {
        fail(err);
      }
    });
    const fd3 = run.fd3!;
    fd3.on('error', () => undefined);
    fd3.setEncoding('utf8');
    fd3.on('data', (text: string) => {
      if (failure !== undefined) return;
      try {
        stamps.push(text);
        pair();
      } catch (err) {
        fail(err);
      }
    });
    const ended = (s: Readable) => new Promise<void>((resolve) => {
      if (s.readableEnded || s.destroyed) resolve();
      else { s.once('end', resolve); s.once('close', resolve); }
    });
    const exit = await run.exited;
    await Promise.all([ended(run.stdout), ended(fd3)]);
    if (this.closed) return;
    if (failure !== undefined) throw failure;
    if (inputError) {
      throw new VideoMAEError('VMAE_DECODE_FAILED', `Could not read ${this.name}: ${inputError.message}`, { cause: inputError });
    }
    if (exit.error) throw notStarted('ffmpeg', ffmpeg, exit.error);
    if (exit.code !== 0) {
      throw decodeFailed(`ffmpeg could not decode ${this.name}: ${stderrTail(run.stderr()) || `exit ${exit.code ?? exit.signal}`}`);
    }
    if (images.partial) throw decodeFailed(`ffmpeg returned a partial last frame for ${this.name}`);
    if (frames.length > 0 || stamps.pts.length > 0) {
      throw decodeFailed(`ffmpeg returned ${delivered + frames.length} frames but ${delivered + stamps.pts.length} timestamps for ${this.name}`);
    }
    if (delivered === 0) {
      const why = stderrTail(run.stderr());
      throw decodeFailed(`ffmpeg decoded no frames from ${this.name}${why ? `: ${why}` : ''}`);
    }
  }
}

/** Splits ffmpeg's image2pipe PPM output ("P6\n<w> <h>\n255\n" + rgb24) into frames. */
class PpmParser {
  private header = '';
  private frame: Buffer | undefined;
  private filled = 0;
  private width = 0;
  private height = 0;

  constructor(private readonly limits: FrameLimits, private readonly name: string) {}

  get partial(): boolean {
    return this.header.length > 0 || this.frame !== undefined;
  }

  push(chunk: Buffer): Array<Omit<SampledFrame, 'timeSec' | 'index'>> {
    const out: Array<Omit<SampledFrame, 'timeSec' | 'index'>> = [];
    let offset = 0;
    while (offset < chunk.length) {
      if (!this.frame) {
        // The header is 4 whitespace-separated fields followed by one whitespace byte.
        const c = chunk[offset++];
        this.header += String.fromCharCode(c);
        if (this.header.length > 64) throw decodeFailed(`ffmpeg returned an unreadable image header for ${this.name}`);
        const fields = this.header.split(/\s+/);
        if (!(fields.length === 5 && /\s$/.test(this.header))) continue;
        const [magic, w, h, max] = fields;
        const width = Number(w);
        const height = Number(h);
        if (magic !== 'P6' || max !== '255' || !(width >= 1 && height >= 1 && width <= MAX_SIDE && height <= MAX_SIDE)) {
          throw decodeFailed(`ffmpeg returned an unexpected image header '${this.header.trim()}' for ${this.name}`);
        }
        if (width > this.limits.maxWidth || height > this.limits.maxHeight) {
          throw invalid(`Expected frames of at most ${this.limits.maxWidth}x${this.limits.maxHeight} pixels ` +
            `(limits.maxWidth/maxHeight) but ${this.name} has ${width}x${height}`);
        }
        this.header = '';
        this.width = width;
        this.height = height;
        this.frame = Buffer.allocUnsafe(width * height * 3);
        this.filled = 0;
        continue;
      }
      const n = Math.min(this.frame.length - this.filled, chunk.length - offset);
      chunk.copy(this.frame, this.filled, offset, offset + n);
      this.filled += n;
      offset += n;
      if (this.filled === this.frame.length) {
        out.push({ data: this.frame, width: this.width, height: this.height, arrivedAt: performance.now() });
        this.frame = undefined;
      }
    }
    return out;
  }
}

/** Reads the pts column of framecrc lines ("0, dts, pts, duration, size, crc"). */
class StampParser {
  readonly pts: number[] = [];
  private rest = '';

  push(text: string): void {
    const lines = (this.rest + text).split('\n');
    this.rest = lines.pop()!;
    if (this.rest.length > 4096) throw decodeFailed('ffmpeg printed an unreadable timestamp line');
    for (const line of lines) {
      if (line.startsWith('#') || line.trim() === '') continue;
      const pts = Number(line.split(',')[2]);
      if (!Number.isFinite(pts)) throw decodeFailed(`ffmpeg printed an unreadable timestamp line '${line.slice(0, 100)}'`);
      this.pts.push(pts);
    }
  }
}

export interface FrameStreamOptions {
  /** Frame width in pixels. */
  width: number;
  /** Frame height in pixels. */
  height: number;
  /** Frames per second: frame n is at n / fps seconds. */
  fps: number;
}

/** Frames pushed while paused (mode 'every') beyond which push() throws VMAE_BUSY. */
const MAX_PUSHED_WHILE_PAUSED = 256;

/**
 * A live source of raw rgb24 frames that the caller pushes, one frame per push(), for
 * VideoClassifier.classifyStream. Only every sampleRate-th frame is copied; the others are
 * counted and let go. Make one with VideoClassifier.createFrameStream().
 */
export class FrameStream implements FrameSource {
  readonly width: number;
  readonly height: number;
  readonly fps: number;
  readonly name = 'the frame stream';
  private sink: FrameSink | undefined;
  private sampleRate = 1;
  private pushed = 0;
  private paused = false;
  private pendingWhilePaused = 0;
  private ended = false;
  private stopped = false;
  private waiters: Array<() => void> = [];

  /** Throws VMAE_INVALID_INPUT for a size or fps that is not a positive number in range. */
  constructor(options: FrameStreamOptions) {
    if (options === null || typeof options !== 'object') throw expected('a { width, height, fps } object', 'options', options);
    const side = (v: unknown, name: string) => {
      if (!Number.isSafeInteger(v) || (v as number) < 1 || (v as number) > MAX_SIDE) throw expected(`an integer in 1..${MAX_SIDE}`, name, v);
      return v as number;
    };
    this.width = side(options.width, 'width');
    this.height = side(options.height, 'height');
    const fps = options.fps;
    if (typeof fps !== 'number' || !Number.isFinite(fps) || fps <= 0 || fps > 1000) {
      throw expected('a number of frames per second in (0, 1000]', 'fps', fps);
    }
    this.fps = fps;
  }

  /** Bytes one frame must have: width × height × 3. */
  get frameBytes(): number {
    return this.width * this.height * 3;
  }

  /** True once end() was called or the stream reading it stopped: push() then throws. */
  get closed(): boolean {
    return this.ended || this.stopped;
  }

  /**
   * Sync. Adds the next frame: rgb24 [height, width, 3], frameBytes bytes; the bytes are copied,
   * so the buffer can be reused at once. Returns false when the stream asks you to wait
   * (mode 'every', inference behind): await drained() before pushing more. Throws
   * VMAE_INVALID_INPUT for a frame of the wrong size, before classifyStream() or after end(),
   * VMAE_ABORTED once the stream reading it stopped, VMAE_BUSY when far more frames than asked
   * for were pushed while paused.
   */
  push(frame: Uint8Array): boolean {
    if (this.stopped) throw new VideoMAEError('VMAE_ABORTED', 'push() on a frame stream whose classifyStream() has stopped');
    if (this.ended) throw invalid('push() after end() on a frame stream');
    if (!this.sink) throw invalid('push() before classifyStream(): pass the frame stream to classifyStream() first');
    if (!(frame instanceof Uint8Array)) throw expected('a Uint8Array (or Buffer) of rgb24 bytes', 'frame', frame);
    if (frame.byteLength !== this.frameBytes) {
      throw invalid(`Expected ${this.frameBytes} bytes (${this.width}x${this.height}x3 rgb24) for frame ${this.pushed} ` +
        `but received ${frame.byteLength} bytes`);
    }
    if (this.paused && ++this.pendingWhilePaused > MAX_PUSHED_WHILE_PAUSED) {
      throw new VideoMAEError('VMAE_BUSY',
        `More than ${MAX_PUSHED_WHILE_PAUSED} frames were pushed after push() returned false; await drained() first`);
    }
    const index = this.pushed++;
    if (index % this.sampleRate === 0) {
      this.sink.frame({
        index, timeSec: index / this.fps, data: Uint8Array.prototype.slice.call(frame), width: this.width,
        height: this.height, arrivedAt: performance.now(),
      });
    }
    return !this.paused;
  }

  /** Async. Resolves when push() would return true again (at once if it would now), or the stream stopped. */
  drained(): Promise<void> {
    if (!this.paused || this.closed) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Sync. No more frames: the stream finishes its last windows and ends. Idempotent. */
  end(): void {
    if (this.ended || this.stopped) return;
    this.ended = true;
    this.sink?.end();
    this.wake();
  }

  /** @internal */
  start(sink: FrameSink, sampleRate: number): void {
    if (this.sink || this.stopped) throw invalid('A frame stream can be read by one classifyStream() only');
    this.sink = sink;
    this.sampleRate = sampleRate;
    if (this.ended) sink.end();
  }

  /** @internal */
  pause(): void {
    this.paused = true;
  }

  /** @internal */
  resume(): void {
    this.paused = false;
    this.pendingWhilePaused = 0;
    this.wake();
  }

  /** @internal */
  async close(): Promise<void> {
    this.stopped = true;
    this.wake();
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }
}
