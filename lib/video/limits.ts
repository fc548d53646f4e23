// Resource limits for decoding untrusted videos, checked against ffprobe's numbers before any
// frame is decoded (and, for the frame count, again while decoding).
import { expected, invalid } from '../errors';
import type { VideoProbe } from './ffmpeg';

export interface VideoLimits {
  /** Largest frame width after rotation, in pixels. Default 8192. */
  maxWidth?: number;
  /** Largest frame height after rotation, in pixels. Default 8192. */
  maxHeight?: number;
  /** Longest duration, in seconds. Default 3600. */
  maxDurationSec?: number;
  /** Most frames (counted by ffprobe, and enforced while decoding). Default 216000 (1 h at 60 fps). */
  maxFrames?: number;
  /** Wall-clock budget of the whole decode (ffprobe + ffmpeg passes), in ms. Default 600000. */
  decodeTimeoutMs?: number;
  /** Largest Buffer or stream input, in bytes (they are spooled to a temp file). Default 4 GiB. */
  maxInputBytes?: number;
}

export const DEFAULT_LIMITS: Readonly<Required<VideoLimits>> = Object.freeze({
  maxWidth: 8192,
  maxHeight: 8192,
  maxDurationSec: 3600,
  maxFrames: 216_000,
  decodeTimeoutMs: 600_000,
  maxInputBytes: 4 * 1024 ** 3,
});

/** Validates `limits` and fills in the defaults. Throws VMAE_INVALID_INPUT. */
export function resolveLimits(limits: VideoLimits | undefined): Required<VideoLimits> {
  if (limits === undefined) return { ...DEFAULT_LIMITS };
  if (limits === null || typeof limits !== 'object') throw expected('an object', 'limits', limits);
  const out = { ...DEFAULT_LIMITS };
  for (const key of Object.keys(DEFAULT_LIMITS) as Array<keyof VideoLimits>) {
    const v = limits[key];
    if (v === undefined) continue;
    const max = key === 'decodeTimeoutMs' ? 2 ** 31 - 1 : Number.MAX_SAFE_INTEGER;
    if (typeof v !== 'number' || !(v > 0) || v > max || (key !== 'maxDurationSec' && !Number.isInteger(v))) {
      throw expected(key === 'maxDurationSec' ? 'a positive number' : 'a positive integer', `limits.${key}`, v);
    }
    out[key] = v;
  }
  return out;
}

/** Rejects a probed video that exceeds `limits`. Throws VMAE_INVALID_INPUT. */
export function checkProbe(p: VideoProbe, limits: Required<VideoLimits>, name: string): void {
  if (p.width > limits.maxWidth || p.height > limits.maxHeight) {
    throw invalid(`Expected a video of at most ${limits.maxWidth}x${limits.maxHeight} pixels (limits.maxWidth/maxHeight) ` +
      `but ${name} is ${p.width}x${p.height}`);
  }
  if (p.durationSec !== undefined && p.durationSec > limits.maxDurationSec) {
    throw invalid(`Expected a video of at most ${limits.maxDurationSec} s (limits.maxDurationSec) ` +
      `but ${name} lasts ${p.durationSec.toFixed(1)} s`);
  }
  if (p.frames !== undefined && p.frames > limits.maxFrames) {
    throw invalid(`Expected a video of at most ${limits.maxFrames} frames (limits.maxFrames) but ${name} has ${p.frames}`);
  }
}
