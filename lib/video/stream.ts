// Live classification of a stream as it arrives (docs/STREAMING.md): sliding windows of numFrames
// sampled frames, a ring of preprocessed frames, dropping of stale windows when inference falls
// behind (or back-pressure on the source in mode 'every'), and optional smoothing.
import { Readable } from 'node:stream';

import type { Prediction } from '../classification';
import { expected, invalid, VideoMAEError } from '../errors';
import { abortError } from '../requests';
import { checkRgbModel, type ModelOps } from './frames';
import { resolveLimits, type VideoLimits } from './limits';
import { checkSmoothing, Smoother, type SmoothingOptions } from './smoothing';
import { FfmpegSource, FrameStream, type FfmpegInput, type FrameSink, type FrameSource, type SampledFrame } from './stream-source';
import { localVideo } from './video-input';

/** What classifyStream reads: a file path, a network URL (allowNetwork), container bytes, or pushed frames. */
export type StreamInput = string | Uint8Array | Readable | FrameStream;

export interface StreamOptions {
  /** How many ranked labels each result holds, 1..numLabels. Default min(5, numLabels). */
  topK?: number;
  /** Seconds of stream between results. Default 1 (unless strideFrames is given). */
  strideSec?: number;
  /** Decoded frames between results, instead of strideSec. */
  strideFrames?: number;
  /** Keep every sampleRate-th decoded frame (the Kinetics sampling stride). Default 4. */
  sampleRate?: number;
  /**
   * 'latest' (default for live sources: Readable, URL, FrameStream): when inference falls behind,
   * stale windows are dropped and each result says how many. 'every' (default for a file path or
   * Buffer): every window is classified, and the source waits (back-pressure).
   */
  mode?: 'latest' | 'every';
  /** Smooth predictions over windows. Off by default. */
  smoothing?: SmoothingOptions;
  /** Let a string be an rtsp:, rtsps:, rtmp(s):, http(s):, srt:, udp:, rtp: or tcp: URL. Default false. */
  allowNetwork?: boolean;
  /** Frame size limits (maxWidth, maxHeight); the other VideoLimits do not apply to streams. */
  limits?: Pick<VideoLimits, 'maxWidth' | 'maxHeight'>;
  /** Stops the stream: ffmpeg is killed and the iterator rejects with VMAE_ABORTED. */
  signal?: AbortSignal;
}

/** The classification of one window of a stream. */
export interface StreamResult {
  /** Stream time of the window's first and last frame, in seconds since the first frame. */
  startSec: number;
  endSec: number;
  /** Decoded-frame indices of the window's first and last frame. */
  startFrame: number;
  endFrame: number;
  /** Ranked labels: of this window, or smoothed when `smoothing` is set. */
  predictions: Prediction[];
  /** This window's raw logits (never smoothed). */
  logits: Float32Array;
  /** Milliseconds from the arrival of the window's last frame to this result. */
  latencyMs: number;
  /** Windows dropped (mode 'latest') since the previous result. */
  dropped: number;
}

/** A preprocessed frame in the ring. */
interface Prepared {
  j: number;
  index: number;
  timeSec: number;
  arrivedAt: number;
  pixels: Float32Array;
}

interface Window {
  frames: Prepared[];
}

/** Raw frames preprocessed per native call, and the most raw bytes a call may hold (at least one frame). */
const BATCH_FRAMES = 8;
const BATCH_BYTES = 64 * 1024 * 1024;

// Schemes a network URL may have, and the ffmpeg protocols each one may open (nested opens too).
const NETWORK: Record<string, string> = {
  http: 'http,https,tls,tcp,crypto',
  https: 'http,https,tls,tcp,crypto',
  rtsp: 'rtsp,rtsps,rtp,srtp,udp,tcp,tls',
  rtsps: 'rtsp,rtsps,rtp,srtp,udp,tcp,tls',
  rtmp: 'rtmp,rtmps,tcp,tls',
  rtmps: 'rtmp,rtmps,tcp,tls',
  srt: 'srt,udp',
  udp: 'udp',
  rtp: 'rtp,udp',
  tcp: 'tcp',
};

/** The scheme of a network URL ("rtsp://…"), or undefined for anything else. */
export function networkScheme(input: string): string | undefined {
  const m = /^([a-z][a-z0-9+.-]*):\/\//i.exec(input);
  const scheme = m?.[1].toLowerCase();
  return scheme !== undefined && Object.hasOwn(NETWORK, scheme) ? scheme : undefined;
}

/**
 * Sync. Validates the input and options, and returns the stream's results as an async iterable.
 * Nothing starts until the first next() (a FrameStream takes frames from this call on). Throws
 * VMAE_INVALID_INPUT (bad option, a URL without allowNetwork) before any process starts.
 */
export function classifyStreamWith(ops: ModelOps, input: StreamInput, topK: number,
  options: StreamOptions): AsyncIterableIterator<StreamResult> {
  if (options === null || typeof options !== 'object') throw expected('an options object', 'options', options);
  checkRgbModel(ops.config);
  const o = resolveStreamOptions(options, input);
  const limits = resolveLimits(options.limits);
  if (options.signal !== undefined && !(options.signal instanceof AbortSignal)) throw expected('an AbortSignal', 'signal', options.signal);
  let source: FrameSource | (() => Promise<{ source: FrameSource; cleanup(): Promise<void> }>);
  const frameLimits = { maxWidth: limits.maxWidth, maxHeight: limits.maxHeight };
  if (input instanceof FrameStream) source = input;
  else if (typeof input === 'string' && networkScheme(input) !== undefined) {
    if (!o.allowNetwork) {
      throw invalid(`Expected a local file path for input but received the network URL '${input.slice(0, 200)}'; ` +
        'pass allowNetwork: true to let ffmpeg open it');
    }
    source = new FfmpegSource({ kind: 'url', url: input, whitelist: NETWORK[networkScheme(input)!], name: `'${redact(input)}'` }, frameLimits);
  } else if (input instanceof Readable || isNodeStream(input)) {
    source = new FfmpegSource({ kind: 'pipe', stream: input as Readable, name: 'the stream input' }, frameLimits);
  } else if (typeof input === 'string' || input instanceof Uint8Array) {
    // A path is checked (and a Buffer spooled to a temp file) when the stream starts.
    source = async () => {
      const local = await localVideo(input, limits.maxInputBytes, new AbortController().signal);
      const file: FfmpegInput = { kind: 'file', file: local.file, name: local.name };
      return { source: new FfmpegSource(file, frameLimits), cleanup: local.cleanup };
    };
  } else {
    throw expected('a file path, a URL, a Buffer, a Readable or a FrameStream', 'input', input);
  }
  const run = new StreamRun(ops, source, topK, o, options.signal);
  if (input instanceof FrameStream) run.attach(input);
  return run;
}

interface ResolvedStream {
  strideSec: number | undefined;
  strideFrames: number | undefined;
  sampleRate: number;
  mode: 'latest' | 'every';
  smoothing: SmoothingOptions | undefined;
  allowNetwork: boolean;
}

function resolveStreamOptions(o: StreamOptions, input: StreamInput): ResolvedStream {
  if (o.strideSec !== undefined && o.strideFrames !== undefined) throw invalid('Expected strideSec or strideFrames, not both');
  const sec = o.strideSec;
  if (sec !== undefined && (typeof sec !== 'number' || !Number.isFinite(sec) || sec <= 0 || sec > 86400)) {
    throw expected('a number of seconds in (0, 86400]', 'strideSec', sec);
  }
  const frames = o.strideFrames;
  if (frames !== undefined && (!Number.isInteger(frames) || frames < 1 || frames > 1_000_000)) {
    throw expected('an integer in 1..1000000', 'strideFrames', frames);
  }
  const r = o.sampleRate ?? 4;
  if (!Number.isInteger(r) || r < 1 || r > 1024) throw expected('an integer in 1..1024', 'sampleRate', r);
  const offline = typeof input === 'string' ? networkScheme(input) === undefined : input instanceof Uint8Array;
  const mode = o.mode ?? (offline ? 'every' : 'latest');
  if (mode !== 'latest' && mode !== 'every') throw expected("'latest' or 'every'", 'mode', mode);
  checkSmoothing(o.smoothing);
  if (o.allowNetwork !== undefined && typeof o.allowNetwork !== 'boolean') throw expected('a boolean', 'allowNetwork', o.allowNetwork);
  return {
    strideSec: frames === undefined ? (sec ?? 1) : undefined, strideFrames: frames, sampleRate: r, mode,
    smoothing: o.smoothing, allowNetwork: o.allowNetwork ?? false,
  };
}

/** A URL for messages, without user:password. */
function redact(url: string): string {
  return url.slice(0, 200).replace(/\/\/[^/@]*@/, '//***@');
}

function isNodeStream(v: unknown): boolean {
  const s = v as { pipe?: unknown; on?: unknown } | null;
  return typeof s === 'object' && s !== null && typeof s.pipe === 'function' && typeof s.on === 'function';
}

/** One classifyStream() call: the source, the ring, the scheduling and the consumer's iterator. */
class StreamRun implements AsyncIterableIterator<StreamResult>, FrameSink {
  private readonly t: number;
  private readonly frameFloats: number;
  private readonly maxRaw: number;
  private readonly controller = new AbortController();
  private readonly smoother: Smoother;
  private source: FrameSource | undefined;
  private cleanupInput: (() => Promise<void>) | undefined;
  private started = false;
  private closing: Promise<void> | undefined;

  /** Sampled frames waiting for preprocessing; the ring of preprocessed ones, by sampled index. */
  private raw: Array<SampledFrame & { j: number; endsWindow: boolean }> = [];
  private readonly ring = new Map<number, Prepared>();
  private ready: Window[] = [];
  private results: StreamResult[] = [];
  private dropped = 0;
  private preprocessing = false;
  private inferring = false;
  private sourceEnded = false;
  /** Set when the stream failed; thrown once by next(), after which the iterator is done. */
  private failure: { err: unknown } | undefined;
  /** The consumer stopped (return()), or the failure was thrown. */
  private stopped = false;
  private done = false;

  /** Sampled frames seen, the schedule of window ends, and whether any window was scheduled. */
  private seen = 0;
  private due = 0;
  private lastEnd = 0;
  private scheduled = false;
  private last: (SampledFrame & { j: number; endsWindow: boolean }) | undefined;
  private pixels: Float32Array;
  /** next() calls waiting for a result, the end, or a failure. */
  private waiters: Array<() => void> = [];

  constructor(private readonly ops: ModelOps, private readonly input: FrameSource | (() => Promise<{ source: FrameSource; cleanup(): Promise<void> }>),
    topK: number, private readonly o: ResolvedStream, private readonly signal: AbortSignal | undefined) {
    const c = ops.config;
    this.t = c.numFrames;
    this.frameFloats = 3 * c.imageSize * c.imageSize;
    this.maxRaw = Math.max(this.t, 2 * BATCH_FRAMES);
    this.smoother = new Smoother(o.smoothing, c.labels, topK);
    this.pixels = new Float32Array(this.t * this.frameFloats);
    signal?.addEventListener('abort', this.onAbort, { once: true });
  }

  private readonly onAbort = () => {
    this.results.length = 0;
    this.fail(abortError(this.signal!));
  };

  /**
   * Starts a FrameStream at once, so that frames pushed before the first next() count. Throws
   * VMAE_INVALID_INPUT when another stream already reads it.
   */
  attach(source: FrameStream): void {
    source.start(this, this.o.sampleRate);
    this.started = true;
    this.source = source;
    if (this.signal?.aborted) this.onAbort();
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<StreamResult> {
    return this;
  }

  async next(): Promise<IteratorResult<StreamResult>> {
    this.begin();
    for (;;) {
      const r = this.stopped ? undefined : this.results.shift();
      if (r) {
        this.pump();
        return { value: r, done: false };
      }
      if (this.failure) {
        const { err } = this.failure;
        this.failure = undefined;
        this.stopped = true;
        await this.close();
        throw err;
      }
      if (this.done || this.stopped) {
        await this.close();
        return { value: undefined, done: true };
      }
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
  }

  async return(): Promise<IteratorResult<StreamResult>> {
    this.stopped = true;
    this.failure = undefined;
    this.notify();
    await this.close();
    return { value: undefined, done: true };
  }

  async throw(err?: unknown): Promise<IteratorResult<StreamResult>> {
    await this.return();
    throw err;
  }

  // ---- the source side (FrameSink) -------------------------------------------------------

  frame(f: SampledFrame): void {
    if (this.closing) return;
    const j = this.seen++;
    const frame = { ...f, j, endsWindow: this.isWindowEnd(f, j) };
    this.raw.push(frame);
    this.last = frame;
    // Mode 'every' pauses the source instead; ffmpeg and FrameStream bound what comes meanwhile.
    if (this.o.mode === 'latest') {
      // Preprocessing is behind. Frames before the newest window's first frame only serve older
      // windows, which that window supersedes; past maxRaw, the oldest go anyway.
      const keepFrom = frame.endsWindow ? j - this.t + 1 : -Infinity;
      while (this.raw.length > 0 && (this.raw[0].j < keepFrom || this.raw.length > this.maxRaw)) {
        if (this.raw.shift()!.endsWindow) this.dropped++;
      }
    }
    this.pump();
  }

  end(err?: unknown): void {
    if (this.sourceEnded) return;
    this.sourceEnded = true;
    if (err !== undefined) {
      this.fail(err);
      return;
    }
    // A stream shorter than one window gets one window, padded with its last frame (as classifyVideo pads).
    if (!this.scheduled && this.last) {
      this.scheduled = true;
      // Already preprocessed, or still queued or being preprocessed (which reads the flag after).
      if (this.ring.has(this.last.j)) this.schedule(this.last.j);
      else this.last.endsWindow = true;
    }
    this.pump();
  }

  /** Whether sampled frame j ends a window: the first full window, then one per stride. */
  private isWindowEnd(f: SampledFrame, j: number): boolean {
    if (j < this.t - 1) return false;
    const pos = this.o.strideFrames !== undefined ? f.index : f.timeSec;
    const stride = this.o.strideFrames ?? this.o.strideSec!;
    if (this.scheduled && pos >= this.lastEnd && pos < this.due - 1e-9) return false;
    // The next stride point after this frame. Stream time can jump: a gap skips the points it
    // covers, and a jump backwards (a timestamp reset) restarts the schedule here.
    if (!this.scheduled || pos < this.lastEnd) this.due = pos;
    this.due += (Math.floor((pos - this.due + 1e-9) / stride) + 1) * stride;
    this.lastEnd = pos;
    this.scheduled = true;
    return true;
  }

  // ---- the work: preprocessing and inference, each one call at a time ----------------------

  private begin(): void {
    if (this.started) return;
    this.started = true;
    if (this.signal?.aborted) {
      this.fail(abortError(this.signal));
      return;
    }
    const input = this.input;
    if (typeof input !== 'function') {
      this.source = input;
      this.startSource();
      return;
    }
    input().then(({ source, cleanup }) => {
      if (this.closing) {
        void cleanup();
        return;
      }
      this.cleanupInput = cleanup;
      this.source = source;
      this.startSource();
    }, (err) => this.fail(err));
  }

  private startSource(): void {
    try {
      this.source!.start(this, this.o.sampleRate);
    } catch (err) {
      this.source = undefined; // not ours to close: it belongs to another stream
      this.fail(err);
    }
  }

  /** Starts whatever work can start, applies flow control, and finishes when all is done. */
  private pump(): void {
    if (this.closing) return;
    if (!this.preprocessing && this.raw.length > 0) void this.preprocess();
    if (!this.inferring && this.ready.length > 0 && (this.o.mode === 'latest' || this.results.length < 2)) void this.infer();
    if (this.o.mode === 'every') {
      const full = this.raw.length >= BATCH_FRAMES || this.ready.length >= 2 || this.results.length >= 2;
      if (full) this.source?.pause();
      else this.source?.resume();
    }
    if (this.sourceEnded && !this.preprocessing && !this.inferring && this.raw.length === 0 && this.ready.length === 0) {
      this.done = true;
      if (this.dropped > 0 && this.results.length > 0) this.results[this.results.length - 1].dropped += this.dropped;
      this.dropped = 0;
    }
    this.notify();
  }

  private async preprocess(): Promise<void> {
    this.preprocessing = true;
    const first = this.raw[0];
    const frameBytes = first.width * first.height * 3;
    const max = Math.max(1, Math.min(BATCH_FRAMES, Math.floor(BATCH_BYTES / frameBytes)));
    let n = 0;
    while (n < this.raw.length && n < max && this.raw[n].width === first.width && this.raw[n].height === first.height) n++;
    const batch = this.raw.splice(0, n);
    try {
      let data: Uint8Array;
      if (n === 1) data = batch[0].data;
      else {
        data = new Uint8Array(n * frameBytes);
        batch.forEach((f, i) => data.set(f.data, i * frameBytes));
      }
      const out = await this.ops.preprocess(data, [n, first.height, first.width, 3], 1, { signal: this.controller.signal });
      batch.forEach((f, i) => {
        this.ring.set(f.j, {
          j: f.j, index: f.index, timeSec: f.timeSec, arrivedAt: f.arrivedAt,
          pixels: out.subarray(i * this.frameFloats, (i + 1) * this.frameFloats),
        });
        // Map order is insertion order: evict from the oldest until the last t frames remain.
        for (const k of this.ring.keys()) {
          if (k > f.j - this.t) break;
          this.ring.delete(k);
        }
        if (f.endsWindow) this.schedule(f.j);
      });
    } catch (err) {
      if (!this.busy(err)) this.fail(err);
      else this.dropped += batch.filter((f) => f.endsWindow).length;
    } finally {
      this.preprocessing = false;
      this.pump();
    }
  }

  /** Window ending at sampled frame j: ready when all its frames are in the ring, else dropped. */
  private schedule(j: number): void {
    // A stream shorter than a window: frames 0..j, then frame j repeated.
    const ids = Array.from({ length: this.t }, (_, k) => (j >= this.t - 1 ? j - this.t + 1 + k : Math.min(k, j)));
    const frames = ids.map((k) => this.ring.get(k));
    if (frames.some((f) => f === undefined)) {
      this.dropped++;
      return;
    }
    this.ready.push({ frames: frames as Prepared[] });
    if (this.o.mode === 'latest' && this.ready.length > 1) {
      this.dropped += this.ready.length - 1;
      this.ready.splice(0, this.ready.length - 1);
    }
  }

  private async infer(): Promise<void> {
    this.inferring = true;
    const w = this.o.mode === 'latest' ? this.ready.pop()! : this.ready.shift()!;
    if (this.o.mode === 'latest') {
      this.dropped += this.ready.length;
      this.ready.length = 0;
    }
    try {
      w.frames.forEach((f, i) => this.pixels.set(f.pixels, i * this.frameFloats));
      const c = this.ops.config;
      const { logits } = await this.ops.forward(this.pixels, [1, this.t, 3, c.imageSize, c.imageSize], { signal: this.controller.signal });
      if (this.closing) return;
      const lastFrame = w.frames[w.frames.length - 1];
      const result: StreamResult = {
        startSec: w.frames[0].timeSec,
        endSec: lastFrame.timeSec,
        startFrame: w.frames[0].index,
        endFrame: lastFrame.index,
        predictions: this.smoother.next(logits),
        logits,
        latencyMs: performance.now() - lastFrame.arrivedAt,
        dropped: this.dropped,
      };
      this.dropped = 0;
      if (this.o.mode === 'latest' && this.results.length > 0) {
        // The consumer has not taken the previous result yet: it is stale now.
        result.dropped += this.results.reduce((sum, r) => sum + r.dropped + 1, 0);
        this.results.length = 0;
      }
      this.results.push(result);
    } catch (err) {
      if (!this.busy(err)) this.fail(err);
      else this.dropped++;
    } finally {
      this.inferring = false;
      this.pump();
    }
  }

  /** In mode 'latest', a full request queue (VMAE_BUSY) drops the work rather than ending the stream. */
  private busy(err: unknown): boolean {
    return this.o.mode === 'latest' && err instanceof VideoMAEError && err.code === 'VMAE_BUSY';
  }

  private fail(err: unknown): void {
    if (this.failure || this.stopped || this.closing) return;
    this.failure = { err };
    void this.close();
    this.notify();
  }

  private notify(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  /** Stops the source (ffmpeg killed and reaped), cancels queued native work and lets go of every frame. */
  private close(): Promise<void> {
    this.closing ??= (async () => {
      this.signal?.removeEventListener('abort', this.onAbort);
      this.controller.abort();
      this.raw = [];
      this.ready = [];
      this.ring.clear();
      this.last = undefined;
      try {
        await this.source?.close();
      } finally {
        await this.cleanupInput?.();
      }
    })();
    return this.closing;
  }
}
