// Video files in: probe, check limits, decode the sampled frames, preprocess and classify every
// clip x crop view, and average them (docs/VIDEO.md).
import type { Classification } from '../classification';
import { deadline, type Deadline } from '../deadline';
import { finishEmbedding, meanRows, type EmbedOptions } from '../embedding';
import { expected, VideoMAEError } from '../errors';
import { probe, type VideoProbe } from './ffmpeg';
import { checkRgbModel, type ModelOps, type RawVideo } from './frames';
import { checkProbe, resolveLimits, type VideoLimits } from './limits';
import { checkRequestOptions, type RequestOptions } from '../requests';
import { collectSampledFrames, type Collected } from './sampled-frames';
import { averageViews, resolveSampling, type SamplingOptions } from './sampling';
import { localVideo, type VideoInput } from './video-input';

export interface ClassifyVideoOptions extends SamplingOptions, RequestOptions {
  /** How many ranked labels to return, 1..numLabels. Default min(5, numLabels). */
  topK?: number;
  /** Decoding limits; see VideoLimits for the defaults. */
  limits?: VideoLimits;
}

/** Wall-clock milliseconds spent in each stage of classifyVideo (docs/VIDEO.md). */
export interface VideoTimings {
  /** Spooling a Buffer/stream, ffprobe, and ffmpeg decoding (all passes), less preprocessMs. */
  decodeMs: number;
  /** Native resize/crop/normalize of the sampled frames, plus assembling the views' pixel values. */
  preprocessMs: number;
  /** The model's forward passes over all views. */
  inferenceMs: number;
}

/** A Classification of a whole video, from clips x crops views. */
export interface VideoClassification extends Classification {
  /** Views averaged: clips x crops. */
  views: number;
  /** Frames ffmpeg decoded. */
  framesDecoded: number;
  /** Duration from the container (or frames / fps); 0 when unknown. */
  durationSec: number;
  timings: VideoTimings;
}

/** embed() options for a video input: the sampling and limits of classifyVideo, and normalize. */
export interface EmbedVideoOptions extends SamplingOptions, EmbedOptions {
  /** Decoding limits; see VideoLimits for the defaults. */
  limits?: VideoLimits;
}

export interface ReadClipsOptions extends Omit<SamplingOptions, 'crops'>, RequestOptions {
  /** Frames per clip (a model's config.numFrames). */
  numFrames: number;
  limits?: VideoLimits;
}

/** The sampled clips of a video, as raw frames. */
export interface VideoClips {
  /** One RawVideo of numFrames frames per clip. */
  clips: RawVideo[];
  /** The decoded-frame index of every frame of every clip. */
  indices: number[][];
  framesDecoded: number;
  durationSec: number;
  /** Frame size after rotation. */
  width: number;
  height: number;
  /** Display rotation in degrees (already applied to the frames). */
  rotation: number;
}

/** Views forwarded per native call: bounds the pixel_values buffer to 8 clips. */
const VIEWS_PER_FORWARD = 8;

/** Every view's outputs, one forward's rows each, plus what decoding them took. */
interface ViewOutputs {
  /** One row of numLabels logits per view, clip-major. */
  logits: Float32Array[];
  /** One embedding per view; null for a model file with logits only. */
  embeddings: Float32Array[] | null;
  framesDecoded: number;
  durationSec: number;
  timings: VideoTimings;
}

/**
 * Async. Classifies a video by the Kinetics test protocol; see VideoClassifier.classifyVideo.
 * `topK` has been validated by the caller.
 */
export async function classifyVideoWith(ops: ModelOps, input: VideoInput, topK: number,
  options: ClassifyVideoOptions): Promise<VideoClassification> {
  const out = await forwardViews(ops, input, options);
  return {
    ...averageViews(out.logits, ops.config.labels, topK),
    views: out.logits.length,
    framesDecoded: out.framesDecoded,
    durationSec: out.durationSec,
    timings: out.timings,
  };
}

/**
 * Async. The embedding of a video: the mean of its clips x crops views' embeddings, L2-normalized
 * afterwards with options.normalize. The model must have an embedding output (the caller checks).
 */
export async function embedVideoWith(ops: ModelOps, input: VideoInput, options: EmbedVideoOptions,
  normalize: boolean): Promise<Float32Array> {
  const out = await forwardViews(ops, input, options);
  return finishEmbedding(meanRows(out.embeddings!), normalize);
}

/** Async. Decodes the sampled frames, preprocesses them and runs the model on every view. */
async function forwardViews(ops: ModelOps, input: VideoInput,
  options: SamplingOptions & RequestOptions & { limits?: VideoLimits }): Promise<ViewOutputs> {
  const { clips, crops, sampleRate } = resolveSampling(options);
  const limits = resolveLimits(options.limits);
  checkRgbModel(ops.config);
  const { numFrames: t, imageSize: s, labels } = ops.config;
  const frameFloats = 3 * s * s;
  return withDeadline(options, async (call) => {
    // Native calls get the call's signal: aborting it cancels queued work; the reason is rethrown.
    const native: RequestOptions = { signal: call.signal };
    let preprocessMs = 0;
    const t0 = performance.now();
    const { probed, collected } = await decode(input, limits, call, (file, name, p, signal) =>
      collectSampledFrames<Float32Array[]>(file, name, {
        width: p.width, height: p.height, numFrames: t, sampleRate, clips,
        expectedFrames: expectedFrames(p), maxFrames: limits.maxFrames, signal,
        convert: async (data, count) => {
          const start = performance.now();
          const out = await ops.preprocess(data, [count, p.height, p.width, 3], crops, native);
          preprocessMs += performance.now() - start;
          // out is [crops, count, 3, S, S]: keep, per frame, a view of each crop.
          return Array.from({ length: count }, (_, i) =>
            Array.from({ length: crops }, (_, c) => out.subarray((c * count + i) * frameFloats, (c * count + i + 1) * frameFloats)));
        },
      }));
    const decodeMs = performance.now() - t0 - preprocessMs;

    // Views in clip-major order (clip k, crop c), forwarded a few at a time.
    const views: Array<[number, number]> = [];
    for (let k = 0; k < clips; k++) for (let c = 0; c < crops; c++) views.push([k, c]);
    const logits: Float32Array[] = [];
    let embeddings: Float32Array[] | null = [];
    let inferenceMs = 0;
    for (let v = 0; v < views.length; v += VIEWS_PER_FORWARD) {
      const chunk = views.slice(v, v + VIEWS_PER_FORWARD);
      const assemble = performance.now();
      const pixels = new Float32Array(chunk.length * t * frameFloats);
      chunk.forEach(([k, c], row) => {
        collected.indices[k].forEach((index, f) => pixels.set(collected.frames.get(index)![c], (row * t + f) * frameFloats));
      });
      const forward = performance.now();
      preprocessMs += forward - assemble;
      const out = await ops.forward(pixels, [chunk.length, t, 3, s, s], native);
      inferenceMs += performance.now() - forward;
      const width = out.embedding ? out.embedding.length / chunk.length : 0;
      for (let row = 0; row < chunk.length; row++) {
        logits.push(out.logits.subarray(row * labels.length, (row + 1) * labels.length));
        if (out.embedding) embeddings?.push(out.embedding.subarray(row * width, (row + 1) * width));
        else embeddings = null;
      }
    }
    return {
      logits,
      embeddings,
      framesDecoded: collected.total,
      durationSec: durationOf(probed, collected.total),
      timings: { decodeMs, preprocessMs, inferenceMs },
    };
  });
}

/**
 * Async. Decodes the sampled clips of a video as raw rgb24 frames (no model needed): the frames
 * classifyVideo would classify with crops = 1, before preprocessing.
 */
export async function readVideoClips(input: VideoInput, options: ReadClipsOptions): Promise<VideoClips> {
  if (options === null || typeof options !== 'object') throw expected('an options object', 'options', options);
  const { numFrames } = options;
  if (!Number.isInteger(numFrames) || numFrames < 1 || numFrames > 256) throw expected('an integer in 1..256', 'numFrames', numFrames);
  const { clips, sampleRate } = resolveSampling({ clips: options.clips, sampleRate: options.sampleRate });
  const limits = resolveLimits(options.limits);
  return withDeadline(options, async (call) => {
    const { probed, collected } = await decode(input, limits, call, (file, name, p, signal) =>
      collectSampledFrames<Uint8Array>(file, name, {
        width: p.width, height: p.height, numFrames, sampleRate, clips,
        expectedFrames: expectedFrames(p), maxFrames: limits.maxFrames, signal,
        convert: (data, count) => {
          const size = data.length / count;
          return Array.from({ length: count }, (_, i) => data.slice(i * size, (i + 1) * size));
        },
      }));
    const frameBytes = probed.width * probed.height * 3;
    return {
      clips: collected.indices.map((clip) => {
        const data = new Uint8Array(clip.length * frameBytes);
        clip.forEach((index, f) => data.set(collected.frames.get(index)!, f * frameBytes));
        return { data, frames: clip.length, height: probed.height, width: probed.width };
      }),
      indices: collected.indices,
      framesDecoded: collected.total,
      durationSec: durationOf(probed, collected.total),
      width: probed.width,
      height: probed.height,
      rotation: probed.rotation,
    };
  });
}

/**
 * Runs `body` under the request's signal and timeoutMs (covering decoding and inference); when
 * either fires, rejects with VMAE_ABORTED / VMAE_TIMEOUT whatever the stage was doing.
 */
async function withDeadline<R>(options: RequestOptions, body: (call: Deadline) => Promise<R>): Promise<R> {
  checkRequestOptions(options);
  const call = deadline(options.signal, options.timeoutMs, () =>
    new VideoMAEError('VMAE_TIMEOUT', `The request took longer than timeoutMs (${options.timeoutMs} ms)`));
  try {
    if (call.signal.aborted) throw call.signal.reason;
    return await body(call);
  } catch (err) {
    throw call.signal.aborted ? call.signal.reason : err;
  } finally {
    call.dispose();
  }
}

/** Makes the input a local file, probes it, checks the limits and collects the sampled frames. */
async function decode<T>(input: VideoInput, limits: Required<VideoLimits>, call: Deadline,
  collect: (file: string, name: string, p: VideoProbe, signal: AbortSignal) => Promise<Collected<T>>,
): Promise<{ probed: VideoProbe; collected: Collected<T> }> {
  const stage = deadline(call, limits.decodeTimeoutMs, () =>
    new VideoMAEError('VMAE_TIMEOUT', `Decoding took longer than limits.decodeTimeoutMs (${limits.decodeTimeoutMs} ms)`));
  try {
    const src = await localVideo(input, limits.maxInputBytes, stage.signal);
    try {
      const probed = await probe(src.file, src.name, stage.signal);
      checkProbe(probed, limits, src.name);
      return { probed, collected: await collect(src.file, src.name, probed, stage.signal) };
    } finally {
      await src.cleanup();
    }
  } catch (err) {
    // A decode timeout is this stage's own reason; the caller's abort/timeout is handled above it.
    throw stage.signal.aborted ? stage.signal.reason : err;
  } finally {
    stage.dispose();
  }
}

function expectedFrames(p: VideoProbe): number | undefined {
  if (p.frames !== undefined) return p.frames;
  return p.durationSec !== undefined && p.fps !== undefined ? Math.max(1, Math.round(p.durationSec * p.fps)) : undefined;
}

function durationOf(p: VideoProbe, frames: number): number {
  return p.durationSec ?? (p.fps ? frames / p.fps : 0);
}
