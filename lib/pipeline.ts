// A transformers.js-style entry point: `await pipeline('video-classification', model)` gives a
// function that takes videos and returns [{ label, score }]. It only delegates to VideoClassifier.
import { VideoClassifier, type LoadOptions, type ModelDtype } from './classifier';
import { expected, invalid } from './errors';
import { runtimeInfo } from './runtime';
import { checkRawVideo, type RawVideo } from './video/frames';
import { sampleIndices } from './video/sampling';
import type { VideoInput } from './video/video-input';

/** What a pipeline accepts: a path, a Buffer, a Readable, or raw rgb24 frames. */
export type PipelineInput = VideoInput | RawVideo;

/** One label and its probability, as transformers.js returns them. */
export interface PipelineLabel {
  label: string;
  score: number;
}

export interface PipelineOptions extends Omit<LoadOptions, 'device' | 'dtype'> {
  /** 'cpu' (default), 'cuda', 'cuda:N', 'gpu' (= 'cuda') or 'auto' (CUDA when available). */
  device?: string;
  /** 'fp32' (default), 'fp16', 'bf16', 'auto' (= 'fp32'), or the long names ('float32', …). */
  dtype?: string;
}

export interface PipelineCallOptions {
  /** Labels returned, highest score first. Default 5 (all labels when the model has fewer). */
  top_k?: number;
}

/** A loaded video-classification pipeline. */
export interface VideoClassificationPipeline {
  (input: PipelineInput, options?: PipelineCallOptions): Promise<PipelineLabel[]>;
  (input: PipelineInput[], options?: PipelineCallOptions): Promise<PipelineLabel[][]>;
  readonly task: 'video-classification';
  /** The classifier the pipeline delegates to. */
  readonly classifier: VideoClassifier;
  /** Frees the model. */
  dispose(): Promise<void>;
}

const DTYPES: Record<string, ModelDtype> = {
  fp32: 'float32', float32: 'float32', auto: 'float32', fp16: 'float16', float16: 'float16', bf16: 'bfloat16', bfloat16: 'bfloat16',
};

/**
 * Async. Loads `model` (a file from `videomae export`; the bundled demo model when omitted) and
 * returns a function that classifies videos. A video is classified with classifyVideo's defaults
 * (one centred clip, every 4th frame); raw frames of exactly numFrames frames are one clip as
 * they are, other counts are sampled the same way. Rejects like VideoClassifier.load, or with
 * VMAE_INVALID_INPUT for an unknown task, device or dtype.
 */
export async function pipeline(task: 'video-classification', model?: string | null,
  options: PipelineOptions = {}): Promise<VideoClassificationPipeline> {
  if (task !== 'video-classification') throw expected("'video-classification'", 'task', task);
  if (options === null || typeof options !== 'object') throw expected('an options object', 'options', options);
  const { device, dtype, ...rest } = options;
  const load: LoadOptions = { ...rest, device: resolveDevice(device), dtype: resolveDtype(dtype) };
  const clf = await VideoClassifier.load(model ?? undefined, load);

  const one = async (input: PipelineInput, topK: number): Promise<PipelineLabel[]> => {
    const r = isRawVideo(input) ? await clf.classifyFrames(clip(input, clf.config.numFrames), { topK })
      : await clf.classifyVideo(input, { topK });
    return r.predictions.map(({ label, score }) => ({ label, score }));
  };
  const classify = async (input: PipelineInput | PipelineInput[], call: PipelineCallOptions = {}) => {
    if (call === null || typeof call !== 'object') throw expected('an options object', 'options', call);
    const k = call.top_k ?? 5;
    if (!Number.isInteger(k) || k < 1) throw expected('a positive integer', 'top_k', k);
    const topK = Math.min(k, clf.config.numLabels);
    if (Array.isArray(input)) {
      const out: PipelineLabel[][] = [];
      for (const x of input) out.push(await one(x, topK));
      return out;
    }
    return one(input, topK);
  };
  return Object.assign(classify, {
    task: 'video-classification' as const,
    classifier: clf,
    dispose: () => clf.dispose(),
  }) as VideoClassificationPipeline;
}

function resolveDevice(device: string | undefined): string | undefined {
  if (device === 'gpu') return 'cuda';
  if (device === 'auto') return runtimeInfo().cudaAvailable ? 'cuda' : 'cpu';
  return device;
}

function resolveDtype(dtype: string | undefined): ModelDtype | undefined {
  if (dtype === undefined) return undefined;
  if (typeof dtype === 'string' && Object.hasOwn(DTYPES, dtype)) return DTYPES[dtype];
  if (typeof dtype === 'string' && /^(q|int|uint|bnb)\d|^q\d/.test(dtype)) {
    throw invalid(`Expected 'fp32', 'fp16' or 'bf16' for dtype but received '${dtype}': quantized models are not supported`);
  }
  throw expected("'fp32', 'fp16', 'bf16' or 'auto'", 'dtype', dtype);
}

function isRawVideo(v: unknown): v is RawVideo {
  return typeof v === 'object' && v !== null && !(v instanceof Uint8Array) && 'data' in v && 'frames' in v;
}

/** The raw frames as one clip: as they are when there are numFrames, else Kinetics-sampled. */
function clip(raw: RawVideo, numFrames: number): RawVideo {
  checkRawVideo(raw);
  if (raw.frames === numFrames) return raw;
  const frame = raw.height * raw.width * 3;
  const [indices] = sampleIndices(raw.frames, numFrames, 4, 1);
  const data = new Uint8Array(numFrames * frame);
  indices.forEach((i, f) => data.set(raw.data.subarray(i * frame, (i + 1) * frame), f * frame));
  return { data, frames: numFrames, height: raw.height, width: raw.width };
}
