// The VideoMAE Kinetics test protocol: which decoded frames make up each clip, and how the scores
// of the clips x crops views are combined. docs/VIDEO.md describes it in words.
import { rank, softmax, type Classification } from '../classification';
import { expected } from '../errors';

export interface SamplingOptions {
  /** Temporal clips spread over the video. Default 1. */
  clips?: number;
  /** Spatial crops along the long side of each frame. Default 1 (a center crop). */
  crops?: number;
  /** Keep every sampleRate-th decoded frame. Default 4. */
  sampleRate?: number;
}

export const MAX_CLIPS = 32;
export const MAX_CROPS = 8;

/** Validates clips/crops/sampleRate and fills in the defaults. Throws VMAE_INVALID_INPUT. */
export function resolveSampling(o: SamplingOptions): Required<SamplingOptions> {
  const int = (v: unknown, name: string, max: number, dflt: number): number => {
    if (v === undefined) return dflt;
    if (!Number.isInteger(v) || (v as number) < 1 || (v as number) > max) throw expected(`an integer in 1..${max}`, name, v);
    return v as number;
  };
  return {
    clips: int(o.clips, 'clips', MAX_CLIPS, 1),
    crops: int(o.crops, 'crops', MAX_CROPS, 1),
    sampleRate: int(o.sampleRate, 'sampleRate', 1024, 4),
  };
}

/**
 * The decoded-frame indices of each clip, `clips` arrays of `numFrames` indices.
 *
 * Sampled frames are the decoded frames 0, r, 2r, … (r = sampleRate), n = ceil(totalFrames / r)
 * of them. A clip is numFrames consecutive sampled frames, padded with the last sampled frame
 * when fewer exist. Clip k of K starts at sampled frame int(k * max((n - numFrames) / (K - 1), 0))
 * for K > 1, and at max(n - numFrames, 0) // 2 for K = 1.
 */
export function sampleIndices(totalFrames: number, numFrames: number, sampleRate: number, clips: number): number[][] {
  const positive = (v: number, name: string) => {
    if (!Number.isSafeInteger(v) || v < 1) throw expected('a positive integer', name, v);
  };
  positive(totalFrames, 'totalFrames');
  positive(numFrames, 'numFrames');
  positive(sampleRate, 'sampleRate');
  positive(clips, 'clips');
  const n = Math.ceil(totalFrames / sampleRate);
  const step = clips > 1 ? Math.max((n - numFrames) / (clips - 1), 0) : 0;
  return Array.from({ length: clips }, (_, k) => {
    const start = clips > 1 ? Math.floor(k * step) : Math.floor(Math.max(n - numFrames, 0) / 2);
    return Array.from({ length: numFrames }, (_, t) => Math.min(start + t, n - 1) * sampleRate);
  });
}

/**
 * Combines the logits of several views (rows of `numLabels`) into one Classification: the
 * predictions rank the mean of the per-view softmax, and `logits` is the mean of the logits.
 */
export function averageViews(views: readonly Float32Array[], labels: readonly string[], topK: number): Classification {
  const n = labels.length;
  const probs = new Float64Array(n);
  const sum = new Float64Array(n);
  for (const v of views) {
    const p = softmax(v);
    for (let i = 0; i < n; i++) {
      probs[i] += p[i] / views.length;
      sum[i] += v[i];
    }
  }
  const logits = Float32Array.from(sum, (x) => x / views.length);
  return { logits, predictions: rank(probs, labels, topK) };
}
