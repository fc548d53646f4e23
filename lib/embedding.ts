// Embeddings: the options of embed(), averaging views, L2 normalization, and cosine similarity.
import { expected, VideoMAEError } from './errors';
import type { RequestOptions } from './requests';

export interface EmbedOptions extends RequestOptions {
  /**
   * Scale the vector to unit L2 norm, so that a dot product is the cosine similarity. A vector
   * whose norm is 0 (or not finite) cannot be normalized and rejects with VMAE_RUNTIME. Default false.
   */
  normalize?: boolean;
}

/** Validates options.normalize. Throws VMAE_INVALID_INPUT. */
export function resolveNormalize(options: EmbedOptions): boolean {
  if (options === null || typeof options !== 'object') throw expected('an options object', 'options', options);
  const n = options.normalize ?? false;
  if (typeof n !== 'boolean') throw expected('a boolean', 'normalize', n);
  return n;
}

/** The elementwise mean of equally long rows, accumulated in float64. */
export function meanRows(rows: readonly Float32Array[]): Float32Array {
  const sum = new Float64Array(rows[0].length);
  for (const r of rows) for (let i = 0; i < r.length; i++) sum[i] += r[i];
  return Float32Array.from(sum, (x) => x / rows.length);
}

/**
 * A copy of `v` (its own buffer, not a view into a batch), scaled to unit L2 norm when `normalize`.
 * Throws VMAE_RUNTIME when it cannot be normalized.
 */
export function finishEmbedding(v: Float32Array, normalize: boolean): Float32Array {
  if (!normalize) return v.slice();
  let sq = 0;
  for (let i = 0; i < v.length; i++) sq += v[i] * v[i];
  const norm = Math.sqrt(sq);
  if (!(norm > 0) || !Number.isFinite(norm)) {
    const what = norm === 0 ? 'its L2 norm is 0 (every value is zero)' : 'it holds NaN or Infinity';
    throw new VideoMAEError('VMAE_RUNTIME',
      `Cannot normalize the embedding: ${what}. Call embed() without normalize to get the raw vector`);
  }
  return Float32Array.from(v, (x) => x / norm);
}

/**
 * Cosine similarity of two equally long vectors, in [-1, 1] (a dot product for normalized ones).
 * Throws VMAE_INVALID_INPUT for vectors of different lengths or a zero vector.
 */
export function cosineSimilarity(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length || a.length === 0) {
    throw new VideoMAEError('VMAE_INVALID_INPUT',
      `Expected two non-empty vectors of the same length but received lengths ${a.length} and ${b.length}`);
  }
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i] * b[i];
    na += a[i] * a[i];
    nb += b[i] * b[i];
  }
  if (na === 0 || nb === 0) throw new VideoMAEError('VMAE_INVALID_INPUT', 'Cosine similarity is undefined for a zero vector');
  return dot / Math.sqrt(na * nb);
}
