/** One ranked label. `score` is the softmax probability. */
export interface Prediction {
  index: number;
  label: string;
  score: number;
}

/** The result of classifying one clip. */
export interface Classification {
  /** Raw logits, one per label, in label order. */
  logits: Float32Array;
  /** The topK labels by score, highest first. */
  predictions: Prediction[];
}

/** Softmax in float64, stable against large logits. */
export function softmax(logits: ArrayLike<number>): Float64Array {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) max = Math.max(max, logits[i]);
  const out = new Float64Array(logits.length);
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += out[i] = Math.exp(logits[i] - max);
  for (let i = 0; i < out.length; i++) out[i] /= sum;
  return out;
}

/** The topK (index, label, score) from probabilities, highest first; ties keep label order. */
export function rank(probs: ArrayLike<number>, labels: readonly string[], topK: number): Prediction[] {
  const order = Array.from({ length: probs.length }, (_, i) => i);
  order.sort((a, b) => probs[b] - probs[a] || a - b);
  return order.slice(0, topK).map((index) => ({ index, label: labels[index], score: probs[index] }));
}

/** A Classification from one row of logits. */
export function classification(logits: Float32Array, labels: readonly string[], topK: number): Classification {
  return { logits, predictions: rank(softmax(logits), labels, topK) };
}
