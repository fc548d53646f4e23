// Raw RGB frames in memory (RawVideo): validation, native preprocessing and classification.
import type { NativeOutputs } from '../../binding';
import { classification, type Classification } from '../classification';
import { finishEmbedding } from '../embedding';
import { expected, invalid } from '../errors';
import type { ModelConfig } from '../metadata';
import type { RequestOptions } from '../requests';
import { MAX_CROPS } from './sampling';
import { Tensor } from '../tensor';

/** Decoded video frames: rgb24, frame-major [frames, height, width, 3], one byte per channel. */
export interface RawVideo {
  data: Uint8Array;
  frames: number;
  height: number;
  width: number;
}

export interface PreprocessOptions extends RequestOptions {
  /** Crops along the long side of each frame, 1..8. Default 1 (a center crop). */
  crops?: number;
}

/**
 * @internal The native operations of one classifier that the video code needs, each submitted
 * through the classifier's RequestTracker (maxQueue, signal, timeoutMs, error translation).
 */
export interface ModelOps {
  readonly config: ModelConfig;
  /** uint8 [N,H,W,3] -> float32 [crops*N*3*S*S] (crop-major). */
  preprocess(frames: Uint8Array, shape: number[], crops: number, o: RequestOptions): Promise<Float32Array>;
  /** float32 pixel_values [B,T,3,S,S] -> logits [B*L] and embeddings [B*D] of one forward. */
  forward(pixels: Float32Array, shape: number[], o: RequestOptions): Promise<NativeOutputs>;
  /** uint8 [K*T,H,W,3] -> logits [K*crops*L] and embeddings [K*crops*D], clip-major. */
  forwardFrames(frames: Uint8Array, shape: number[], crops: number, o: RequestOptions): Promise<NativeOutputs>;
}

/** Largest frame side accepted from callers (the decoder limits default to the same). */
const MAX_SIDE = 16384;

/** Validates a RawVideo and returns its [N,H,W,3] shape. Throws VMAE_INVALID_INPUT. */
export function checkRawVideo(raw: RawVideo, name = 'raw'): number[] {
  if (raw === null || typeof raw !== 'object') throw expected('a { data, frames, height, width } object', name, raw);
  if (!(raw.data instanceof Uint8Array)) throw expected('a Uint8Array (or Buffer) of rgb24 bytes', `${name}.data`, raw.data);
  const dim = (v: unknown, key: string, max: number) => {
    if (!Number.isSafeInteger(v) || (v as number) < 1 || (v as number) > max) {
      throw expected(`an integer in 1..${max}`, `${name}.${key}`, v);
    }
  };
  dim(raw.frames, 'frames', 1_000_000);
  dim(raw.height, 'height', MAX_SIDE);
  dim(raw.width, 'width', MAX_SIDE);
  const bytes = raw.frames * raw.height * raw.width * 3;
  if (raw.data.byteLength !== bytes) {
    throw invalid(`Expected ${bytes} bytes (${raw.frames} frames × ${raw.height}×${raw.width}×3) for ${name}.data ` +
      `but received ${raw.data.byteLength} bytes`);
  }
  return [raw.frames, raw.height, raw.width, 3];
}

/** Throws VMAE_INVALID_INPUT unless the model takes RGB frames. */
export function checkRgbModel(config: ModelConfig): void {
  if (config.numChannels !== 3) {
    throw invalid(`Expected a 3-channel (RGB) model for video frames but this model takes ${config.numChannels} channels`);
  }
}

/** Async. Native resize + crop + normalize of raw frames: float32 [T,3,S,S], or [C,T,3,S,S] with crops > 1. */
export async function preprocessRaw(ops: ModelOps, raw: RawVideo, options: PreprocessOptions): Promise<Tensor> {
  if (options === null || typeof options !== 'object') throw expected('an options object', 'options', options);
  const shape = checkRawVideo(raw);
  checkRgbModel(ops.config);
  const crops = options.crops ?? 1;
  if (!Number.isInteger(crops) || crops < 1 || crops > MAX_CROPS) throw expected(`an integer in 1..${MAX_CROPS}`, 'crops', crops);
  const s = ops.config.imageSize;
  const out = await ops.preprocess(raw.data, shape, crops, options);
  const dims = [raw.frames, 3, s, s];
  return Tensor.fromBuffer(out, crops === 1 ? dims : [crops, ...dims]);
}

/** Async. Classifies one clip of exactly numFrames raw frames (center crop). */
export async function classifyRaw(ops: ModelOps, raw: RawVideo, topK: number, options: RequestOptions): Promise<Classification> {
  const out = await forwardRaw(ops, raw, options, 'classifyVideo()');
  return classification(out.logits, ops.config.labels, topK);
}

/** Async. The embedding of one clip of exactly numFrames raw frames (center crop). */
export async function embedRaw(ops: ModelOps, raw: RawVideo, options: RequestOptions, normalize: boolean): Promise<Float32Array> {
  const out = await forwardRaw(ops, raw, options, 'embed() on the video itself');
  return finishEmbedding(out.embedding!, normalize);
}

async function forwardRaw(ops: ModelOps, raw: RawVideo, options: RequestOptions, whole: string): Promise<NativeOutputs> {
  const shape = checkRawVideo(raw);
  checkRgbModel(ops.config);
  const t = ops.config.numFrames;
  if (raw.frames !== t) {
    throw invalid(`Expected exactly ${t} frames (the model's numFrames) for raw.frames but received ${raw.frames}; ` +
      `sample one clip first, or use ${whole}`);
  }
  return ops.forwardFrames(raw.data, shape, 1, options);
}
