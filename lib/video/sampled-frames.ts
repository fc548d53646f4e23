// Decodes a video file once (twice at most) and keeps only the frames that sampleIndices() picks.
import { decodeFailed, decodeFrames } from './ffmpeg';
import { sampleIndices } from './sampling';

export interface CollectOptions<T> {
  width: number;
  height: number;
  numFrames: number;
  sampleRate: number;
  clips: number;
  /** The frame count ffprobe announced (a guess: the decoded count can differ). */
  expectedFrames: number | undefined;
  maxFrames: number;
  signal: AbortSignal;
  /**
   * Turns a batch of kept frames, rgb24 [count,H,W,3] in `data`, into one T per frame. `data` is
   * reused after the returned promise settles. Decoding waits meanwhile, so memory stays bounded.
   */
  convert(data: Uint8Array, count: number, indices: number[]): Promise<T[]> | T[];
}

export interface Collected<T> {
  /** Frames decoded (in the final pass). */
  total: number;
  /** sampleIndices(total, …): the decoded-frame index of every clip position. */
  indices: number[][];
  /** One converted frame per distinct index in `indices`. */
  frames: Map<number, T>;
}

/** Frames converted per batch, and the most raw bytes a batch may hold (at least one frame). */
const BATCH_FRAMES = 8;
const BATCH_BYTES = 64 * 1024 * 1024;

/**
 * Async. Decodes `file` and keeps the frames the sampling needs. Which frames those are depends
 * on the frame count, which is only known for sure once decoding ends: the first pass keeps the
 * frames that the probed count implies, and if the decoded count differs and needs other frames,
 * a second pass (now with the true count) decodes again and keeps the missing ones. Rejects like
 * decodeFrames, or with VMAE_DECODE_FAILED when the two passes disagree on the count.
 */
export async function collectSampledFrames<T>(file: string, name: string, o: CollectOptions<T>): Promise<Collected<T>> {
  const frameBytes = o.width * o.height * 3;
  const batchFrames = Math.max(1, Math.min(BATCH_FRAMES, Math.floor(BATCH_BYTES / frameBytes)));
  const batch = new Uint8Array(batchFrames * frameBytes);
  const kept = new Map<number, T>();
  const sample = (total: number) => sampleIndices(total, o.numFrames, o.sampleRate, o.clips);
  let guess = o.expectedFrames;
  let firstTotal: number | undefined;
  for (;;) {
    const want = new Set<number>();
    if (guess) for (const clip of sample(guess)) for (const i of clip) if (!kept.has(i)) want.add(i);
    let pending: number[] = [];
    const flush = async () => {
      if (pending.length === 0) return;
      const out = await o.convert(batch.subarray(0, pending.length * frameBytes), pending.length, pending);
      pending.forEach((index, j) => kept.set(index, out[j]));
      pending = [];
    };
    const total = await decodeFrames(file, name, {
      width: o.width,
      height: o.height,
      maxFrames: o.maxFrames,
      signal: o.signal,
      wanted: [...want].sort((a, b) => a - b),
      onFrame: async (index, frame) => {
        batch.set(frame, pending.length * frameBytes);
        pending.push(index);
        if (pending.length === batchFrames) await flush();
      },
    });
    await flush();
    const indices = sample(total);
    const needed = new Set(indices.flat());
    if ([...needed].every((i) => kept.has(i))) {
      for (const i of kept.keys()) if (!needed.has(i)) kept.delete(i);
      return { total, indices, frames: kept };
    }
    if (firstTotal !== undefined) {
      throw decodeFailed(`ffmpeg decoded ${firstTotal} frames from ${name}, then ${total} when decoding it again`);
    }
    firstTotal = guess = total;
  }
}
