import * as os from 'node:os';

import type { NativeClassifier, NativeModelDtype } from '../binding';
import { classification, type Classification } from './classification';
import { finishEmbedding, resolveNormalize, type EmbedOptions } from './embedding';
import { expected, invalid, nativeCall, VideoMAEError } from './errors';
import { parseMetadata, type ModelConfig, type ModelDescription } from './metadata';
import { requireDefaultModel } from './default-model';
import { native } from './native';
import { RequestTracker, requestId, type RequestOptions } from './requests';
import { Tensor } from './tensor';
import { classifyRaw, embedRaw, preprocessRaw, type ModelOps, type PreprocessOptions, type RawVideo } from './video/frames';
import {
  classifyVideoWith, embedVideoWith, type ClassifyVideoOptions, type EmbedVideoOptions, type VideoClassification,
} from './video/clips';
import { isVideoInput, type VideoInput } from './video/video-input';
import { classifyStreamWith, type StreamInput, type StreamOptions, type StreamResult } from './video/stream';
import { FrameStream, type FrameStreamOptions } from './video/stream-source';

export type ModelDtype = NativeModelDtype;

export interface LoadOptions {
  /** 'cpu' (default), 'cuda' or 'cuda:N'. */
  device?: string;
  /** The dtype the model is cast to at load: 'float32' (default), 'float16' or 'bfloat16'. */
  dtype?: ModelDtype;
  /** Intra-op threads for this model. Default: os.availableParallelism(). */
  threads?: number;
  /** Merge queued single-clip requests into batches of up to this many clips (1, 2, 4 or 8). Default 1. */
  maxBatchSize?: number;
  /** How long a batch waits to fill up, in ms. Default 2. */
  maxBatchDelayMs?: number;
  /** Requests pending at once (queued and running); more reject with VMAE_BUSY. Default 64. */
  maxQueue?: number;
  /** Reject inputs that hold NaN or ±Infinity with VMAE_INVALID_INPUT. Default true. */
  rejectNonFinite?: boolean;
  /**
   * Rewrite the graph at load for speed: fused attention, and on the CPU in float32 packed linear
   * kernels (docs/PERFORMANCE.md). false runs the exported graph as plain libtorch would. Default true.
   */
  optimize?: boolean;
}

/** What the load-time rewrites did (all 0 with `optimize: false`). */
export interface Optimizations {
  /** Attention blocks now run as one fused kernel. */
  fusedAttention: number;
  /** Linear layers now run as packed kernels with their bias, GELU or residual add fused. */
  fusedLinear: number;
}

export interface ClassifyOptions extends RequestOptions {
  /** How many ranked labels to return, 1..numLabels. Default min(5, numLabels). */
  topK?: number;
}

const DEVICE = /^(cpu|cuda|cuda:\d{1,3})$/;
const DTYPES: readonly ModelDtype[] = ['float32', 'float16', 'bfloat16'];
const BATCH_SIZES = [1, 2, 4, 8];

/** Validates LoadOptions and fills in the defaults. Throws VMAE_INVALID_INPUT. */
function resolveLoadOptions(o: LoadOptions): Required<LoadOptions> {
  if (o === null || typeof o !== 'object') throw expected('an options object', 'options', o);
  const device = o.device ?? 'cpu';
  if (typeof device !== 'string' || !DEVICE.test(device)) throw expected("'cpu', 'cuda' or 'cuda:N'", 'device', device);
  const dtype = o.dtype ?? 'float32';
  if (!DTYPES.includes(dtype)) throw expected("'float32', 'float16' or 'bfloat16'", 'dtype', dtype);
  const int = (v: unknown, name: string, min: number, max: number, dflt: number): number => {
    if (v === undefined) return dflt;
    if (!Number.isInteger(v) || (v as number) < min || (v as number) > max) throw expected(`an integer in ${min}..${max}`, name, v);
    return v as number;
  };
  const maxBatchSize = int(o.maxBatchSize, 'maxBatchSize', 1, 8, 1);
  if (!BATCH_SIZES.includes(maxBatchSize)) throw expected('1, 2, 4 or 8', 'maxBatchSize', maxBatchSize);
  const rejectNonFinite = o.rejectNonFinite ?? true;
  if (typeof rejectNonFinite !== 'boolean') throw expected('a boolean', 'rejectNonFinite', rejectNonFinite);
  const optimize = o.optimize ?? true;
  if (typeof optimize !== 'boolean') throw expected('a boolean', 'optimize', optimize);
  return {
    device,
    dtype,
    threads: int(o.threads, 'threads', 1, 1024, os.availableParallelism()),
    maxBatchSize,
    maxBatchDelayMs: int(o.maxBatchDelayMs, 'maxBatchDelayMs', 0, 1000, 2),
    maxQueue: int(o.maxQueue, 'maxQueue', 1, 1_000_000, 64),
    rejectNonFinite,
    optimize,
  };
}

/** A VideoMAE model on one device, with its own inference thread. */
export class VideoClassifier {
  /** The model's geometry, labels and preprocessing, from its embedded metadata. */
  readonly config: ModelConfig;
  /** The model's name, description and exporting torch version. */
  readonly model: ModelDescription;
  /** The device the model runs on, e.g. 'cpu' or 'cuda:0'. */
  readonly device: string;
  readonly dtype: ModelDtype;
  /** The model file. */
  readonly path: string;
  /** What the load-time graph rewrites did (LoadOptions.optimize). */
  readonly optimizations: Readonly<Optimizations>;

  /** @internal */
  protected readonly requests: RequestTracker;
  private disposing: Promise<void> | undefined;

  /** @internal Use VideoClassifier.load(). */
  protected constructor(
    protected readonly nativeClassifier: NativeClassifier,
    init: {
      config: ModelConfig; model: ModelDescription; device: string; dtype: ModelDtype; path: string;
      optimizations: Optimizations; options: Required<LoadOptions>;
    },
  ) {
    this.config = init.config;
    this.model = init.model;
    this.device = init.device;
    this.dtype = init.dtype;
    this.path = init.path;
    this.optimizations = Object.freeze({ ...init.optimizations });
    this.requests = new RequestTracker(nativeClassifier, init.options.maxQueue);
  }

  /**
   * Loads a model exported by `videomae export` (scripts/export_videomae.py), off the JS thread,
   * and runs one warm-up forward (one per batch bucket with maxBatchSize > 1). Without a path (or
   * with `undefined`), loads the package's demo model, a small VideoMAE trained on synthetic
   * motion clips (docs/DEMO-MODEL.md) — not a Kinetics model.
   * Rejects with VMAE_MODEL_LOAD_FAILED, VMAE_DEVICE_UNAVAILABLE, VMAE_INVALID_INPUT or VMAE_OUT_OF_MEMORY.
   */
  static async load(path?: string, options: LoadOptions = {}): Promise<VideoClassifier> {
    return loadInto(this, path === undefined ? requireDefaultModel() : path, options);
  }

  /** Classifies one clip of pixel_values, [T,C,H,W] or [1,T,C,H,W], already preprocessed. */
  async classify(input: Tensor, options: ClassifyOptions = {}): Promise<Classification> {
    this.requests.admit(); // shed load before validating and copying the input
    const topK = this.topK(options);
    const shape = this.checkPixelValues(input, false);
    const out = await this.requests.run(options, (id) =>
      this.nativeClassifier.forward(id, input.data, input.dtype, shape));
    return classification(out.logits, this.config.labels, topK);
  }

  /** Classifies a batch of clips, [B,T,C,H,W]; one Classification per clip, in order. */
  async classifyBatch(input: Tensor, options: ClassifyOptions = {}): Promise<Classification[]> {
    this.requests.admit(); // shed load before validating and copying the input
    const topK = this.topK(options);
    const shape = this.checkPixelValues(input, true);
    const out = await this.requests.run(options, (id) =>
      this.nativeClassifier.forward(id, input.data, input.dtype, shape));
    return this.split(out.logits, shape[0], this.config.numLabels).map((row) => classification(row, this.config.labels, topK));
  }

  /**
   * The embedding of one clip or video, a Float32Array of config.embeddingSize values: the pooled
   * features the classifier takes (an encoder-only model: the mean of the last hidden states), as
   * transformers computes them. It comes from the same single forward as the logits. `input` is
   *  - a Tensor of pixel_values [T,C,H,W] or [1,T,C,H,W], already preprocessed;
   *  - raw rgb24 frames (RawVideo): exactly numFrames frames, center crop;
   *  - a video (path, Buffer or Readable), decoded and sampled as classifyVideo does: the
   *    embedding is the mean over its clips x crops views.
   * normalize: true scales it to unit length (a dot product is then the cosine similarity).
   * Rejects with VMAE_INVALID_INPUT for a model file exported before embeddings (re-export it).
   */
  async embed(input: Tensor | RawVideo | VideoInput, options: EmbedVideoOptions = {}): Promise<Float32Array> {
    if (this.disposing) throw new VideoMAEError('VMAE_DISPOSED', 'The classifier has been disposed');
    this.requests.admit(); // shed load before validating, copying or decoding the input
    const normalize = this.embedOptions(options);
    if (input instanceof Tensor) {
      this.videoOnly(options, 'a Tensor');
      const shape = this.checkPixelValues(input, false);
      const out = await this.requests.run(options, (id) => this.nativeClassifier.forward(id, input.data, input.dtype, shape));
      return finishEmbedding(out.embedding!, normalize);
    }
    if (isVideoInput(input)) return embedVideoWith(this.videoOps(), input, options, normalize);
    if (input === null || typeof input !== 'object') {
      throw expected('a Tensor, raw frames ({ data, frames, height, width }) or a video (path, Buffer or Readable)', 'input', input);
    }
    this.videoOnly(options, 'raw frames');
    return embedRaw(this.videoOps(), input, options, normalize);
  }

  /** The embeddings of a batch of clips, pixel_values [B,T,C,H,W]: one Float32Array per clip, in order. */
  async embedBatch(input: Tensor, options: EmbedOptions = {}): Promise<Float32Array[]> {
    this.requests.admit();
    const normalize = this.embedOptions(options);
    const shape = this.checkPixelValues(input, true);
    const out = await this.requests.run(options, (id) => this.nativeClassifier.forward(id, input.data, input.dtype, shape));
    return this.split(out.embedding!, shape[0], this.config.embeddingSize!).map((row) => finishEmbedding(row, normalize));
  }

  /**
   * Resizes, crops and normalizes raw rgb24 frames as the model's preprocessing says, natively
   * (docs/VIDEO.md). Resolves with float32 pixel values [T,3,S,S], or [crops,T,3,S,S] with crops > 1.
   */
  async preprocess(raw: RawVideo, options: PreprocessOptions = {}): Promise<Tensor> {
    return preprocessRaw(this.videoOps(), raw, options);
  }

  /** Classifies one clip of raw rgb24 frames: exactly numFrames frames, preprocessed natively (center crop). */
  async classifyFrames(raw: RawVideo, options: ClassifyOptions = {}): Promise<Classification> {
    return classifyRaw(this.videoOps(), raw, this.topK(options), options);
  }

  /**
   * Classifies a video file (path), Buffer or Readable with ffmpeg decoding and the VideoMAE
   * Kinetics test protocol: `clips` x `crops` views, softmax averaged (docs/VIDEO.md).
   */
  async classifyVideo(input: VideoInput, options: ClassifyVideoOptions = {}): Promise<VideoClassification> {
    // Refuse before ffmpeg decodes the whole video only for the native side to refuse it.
    if (this.disposing) throw new VideoMAEError('VMAE_DISPOSED', 'The classifier has been disposed');
    this.requests.admit(); // and shed load before spending ffmpeg time on a video that gets VMAE_BUSY
    return classifyVideoWith(this.videoOps(), input, this.topK(options), options);
  }

  /**
   * Classifies a live stream as it arrives: a window of numFrames frames (every sampleRate-th
   * decoded frame) every strideSec seconds, as an async iterable of results (docs/STREAMING.md).
   * The input is a file path, a Buffer, a Readable of container bytes (e.g. ffmpeg's matroska
   * output), a FrameStream, or a network URL with `allowNetwork: true`. Throws VMAE_INVALID_INPUT
   * for bad options or a URL without allowNetwork; the iterator rejects with VMAE_DECODE_FAILED,
   * VMAE_ABORTED, or whatever inference rejects with. Breaking out of the loop stops ffmpeg.
   */
  classifyStream(input: StreamInput, options: StreamOptions = {}): AsyncIterableIterator<StreamResult> {
    if (this.disposing) throw new VideoMAEError('VMAE_DISPOSED', 'The classifier has been disposed');
    return classifyStreamWith(this.videoOps(), input, this.topK(options), options);
  }

  /**
   * A source of raw rgb24 frames you push yourself, for classifyStream():
   * `const s = clf.createFrameStream({ width, height, fps }); s.push(frame); … s.end()`.
   * Throws VMAE_INVALID_INPUT for a bad size or fps.
   */
  createFrameStream(options: FrameStreamOptions): FrameStream {
    return new FrameStream(options);
  }

  /**
   * Frees the model. Queued requests reject with VMAE_DISPOSED; the running one finishes first.
   * Calling it again is a no-op; any call after it rejects with VMAE_DISPOSED.
   */
  dispose(): Promise<void> {
    this.disposing ??= nativeCall(() => this.nativeClassifier.dispose());
    return this.disposing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.dispose();
  }

  /** @internal The native calls lib/video.ts and lib/frames.ts build on. */
  protected videoOps(): ModelOps {
    const nc = this.nativeClassifier;
    const { preprocessing, numFrames } = this.config;
    return {
      config: this.config,
      preprocess: (frames, shape, crops, o) => this.requests.run(o, (id) => nc.preprocess(id, frames, shape, preprocessing, crops)),
      forward: (pixels, shape, o) => this.requests.run(o, (id) => nc.forward(id, pixels, 'float32', shape)),
      forwardFrames: (frames, shape, crops, o) =>
        this.requests.run(o, (id) => nc.forwardFrames(id, frames, shape, preprocessing, numFrames, crops)),
    };
  }

  /** @internal Splits a flat [rows, n] output into rows. */
  protected split(flat: Float32Array, rows: number, n: number): Float32Array[] {
    return Array.from({ length: rows }, (_, i) => flat.slice(i * n, (i + 1) * n));
  }

  /** @internal Validates embed options; rejects models without an embedding output. */
  protected embedOptions(options: EmbedOptions): boolean {
    const normalize = resolveNormalize(options);
    if (this.config.embeddingSize === null) {
      throw invalid(`Model file '${this.path}' has no embedding output: it was exported before embeddings ` +
        '(videomae-node/1, logits only). Re-export its checkpoint with `videomae export` (scripts/export_videomae.py) to embed');
    }
    return normalize;
  }

  /** @internal Sampling and limits options only make sense for a video. */
  protected videoOnly(options: EmbedVideoOptions, what: string): void {
    for (const key of ['clips', 'crops', 'sampleRate', 'limits'] as const) {
      if (options[key] !== undefined) throw invalid(`${key} applies to video inputs (a path, Buffer or Readable), not to ${what}`);
    }
  }

  /** @internal */
  protected topK(options: ClassifyOptions): number {
    if (this.config.numLabels === 0) {
      throw invalid(`This model has no classification head (an encoder-only export of '${this.path}'); use embed()`);
    }
    if (options === null || typeof options !== 'object') throw expected('an options object', 'options', options);
    const n = this.config.numLabels;
    const k = options.topK ?? Math.min(5, n);
    if (!Number.isInteger(k) || k < 1 || k > n) throw expected(`an integer in 1..${n}`, 'topK', k);
    return k;
  }

  /** @internal Validates pixel_values against the model and returns the [B,T,C,H,W] shape. */
  protected checkPixelValues(input: Tensor, batched: boolean): number[] {
    if (!(input instanceof Tensor)) throw expected('a Tensor (Tensor.fromBuffer)', 'input', input);
    if (input.dtype === 'uint8') {
      throw invalid('Expected float pixel_values but received a uint8 tensor: use classifyFrames() for raw RGB frames');
    }
    if (input.detached) throw invalid('The tensor\'s buffer was detached or transferred after Tensor.fromBuffer()');
    const { numFrames: t, numChannels: c, imageSize: s } = this.config;
    const want = `[${batched ? 'B,' : '1,'}${t},${c},${s},${s}]${batched ? '' : ` or [${t},${c},${s},${s}]`}`;
    const shape = !batched && input.shape.length === 4 ? [1, ...input.shape] : [...input.shape];
    if (shape.length !== 5 || (!batched && shape[0] !== 1)) {
      throw invalid(`Expected pixel_values of shape ${want} but received [${input.shape.join(',')}]`);
    }
    const [, ft, fc, fh, fw] = shape;
    if (ft !== t) throw invalid(`Expected ${t} frames (the model's numFrames) but received ${ft}; shape ${want}`);
    if (fc !== c) throw invalid(`Expected ${c} channels but received ${fc}; shape ${want}`);
    if (fh !== s || fw !== s) throw invalid(`Expected ${s}x${s} images (the model's imageSize) but received ${fh}x${fw}; shape ${want}`);
    return shape;
  }
}

/** @internal Shared by VideoClassifier.load and subclasses. */
export async function loadInto<T extends VideoClassifier>(
  cls: { prototype: T },
  path: string,
  options: LoadOptions,
): Promise<T> {
  if (typeof path !== 'string' || path.length === 0) throw expected('a model file path', 'path', path);
  // C++ would stop reading at the NUL and open another file; node:fs refuses such paths too.
  if (path.includes('\0')) throw expected('a path without NUL bytes', 'path', path);
  const o = resolveLoadOptions(options);
  const binding = native();
  const nc = new binding.NativeClassifier({
    threads: o.threads, maxBatchSize: o.maxBatchSize, maxBatchDelayMs: o.maxBatchDelayMs, rejectNonFinite: o.rejectNonFinite,
  });
  try {
    const info = await nativeCall(() => nc.load(requestId(), path, { device: o.device, dtype: o.dtype, optimize: o.optimize }));
    const { config, description } = parseMetadata(info.metadata, path);
    const buckets = BATCH_SIZES.filter((b) => b <= o.maxBatchSize);
    for (const b of buckets) {
      const widths = await nativeCall(() =>
        nc.warmup(requestId(), [b, config.numFrames, config.numChannels, config.imageSize, config.imageSize]))
        .catch((err: VideoMAEError) => {
          // The warm-up forward is part of loading: a model whose forward fails on zeros (or returns
          // something other than [batch, labels]) is a bad model file, not a failed request.
          if (err.code !== 'VMAE_RUNTIME') throw err;
          throw new VideoMAEError('VMAE_MODEL_LOAD_FAILED', `Model file '${path}' failed its warm-up forward: ${err.message}`, { cause: err });
        });
      if (widths.labels !== config.numLabels) {
        throw new VideoMAEError('VMAE_MODEL_LOAD_FAILED',
          `Model file '${path}' outputs ${widths.labels} logits but its metadata lists ${config.numLabels} labels`);
      }
      if (widths.embeddingSize !== config.embeddingSize) {
        const got = widths.embeddingSize === null ? 'no embedding' : `an embedding of ${widths.embeddingSize} values`;
        const want = config.embeddingSize === null ? 'none (videomae-node/1)' : `embeddingSize ${config.embeddingSize}`;
        throw new VideoMAEError('VMAE_MODEL_LOAD_FAILED', `Model file '${path}' outputs ${got} but its metadata says ${want}`);
      }
    }
    const Ctor = cls as unknown as new (nc: NativeClassifier, init: object) => T;
    const optimizations = { fusedAttention: info.fusedAttention, fusedLinear: info.fusedLinear };
    return new Ctor(nc, { config, model: description, device: info.device, dtype: info.dtype, path, optimizations, options: o });
  } catch (err) {
    await nc.dispose().catch(() => undefined);
    throw err;
  }
}
