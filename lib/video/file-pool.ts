// Several videos at once: while the model classifies one file, ffmpeg decodes the next ones.

import * as os from 'node:os';

/**
 * How many files to work on at once: one per two cores, 1 to 4. Each file costs ffprobe and ffmpeg
 * start-up and decoding, CPU-bound work that competes with inference: on a 2-core machine decoding
 * the next file while one infers gained nothing measurable (docs/PERFORMANCE.md), so 1 there.
 */
export function defaultFileConcurrency(): number {
  return Math.max(1, Math.min(4, Math.floor(os.availableParallelism() / 2)));
}

/**
 * Runs `work` on every item with at most `limit` in flight, and calls `done` for each result in
 * the items' order as soon as it and every earlier one have finished. `work` must not throw (turn
 * failures into results). Resolves with all results in order.
 */
export async function mapOrdered<T, R>(items: readonly T[], limit: number, work: (item: T, index: number) => Promise<R>,
  done?: (result: R, index: number) => void): Promise<R[]> {
  const results: R[] = new Array(items.length);
  const finished: boolean[] = new Array(items.length).fill(false);
  let next = 0;
  let reported = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      results[i] = await work(items[i], i);
      finished[i] = true;
      while (reported < items.length && finished[reported]) {
        done?.(results[reported], reported);
        reported++;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  return results;
}
