// Optional smoothing of a stream's window predictions: an exponential moving average of the
// probabilities, or a majority vote of the top labels over the last K windows.
import { rank, softmax, type Prediction } from '../classification';
import { expected } from '../errors';

/**
 * `ema`: scores are p̄ ← alpha·p + (1 − alpha)·p̄ over the windows' softmax (alpha in (0, 1],
 * default 0.5). `vote`: labels rank by how many of the last `windows` windows (default 5) had
 * them on top, ties broken by their mean probability; `score` is that share of the votes.
 */
export type SmoothingOptions = { method: 'ema'; alpha?: number } | { method: 'vote'; windows?: number };

/** Validates SmoothingOptions. Throws VMAE_INVALID_INPUT. */
export function checkSmoothing(o: SmoothingOptions | undefined): void {
  if (o === undefined) return;
  if (o === null || typeof o !== 'object') throw expected("{ method: 'ema' | 'vote' }", 'smoothing', o);
  if (o.method === 'ema') {
    const a = o.alpha;
    if (a !== undefined && (typeof a !== 'number' || !(a > 0 && a <= 1))) throw expected('a number in (0, 1]', 'smoothing.alpha', a);
  } else if (o.method === 'vote') {
    const k = o.windows;
    if (k !== undefined && (!Number.isInteger(k) || k < 1 || k > 1000)) throw expected('an integer in 1..1000', 'smoothing.windows', k);
  } else {
    throw expected("'ema' or 'vote'", 'smoothing.method', (o as { method: unknown }).method);
  }
}

/** Turns each window's logits into the predictions to report. */
export class Smoother {
  private ema: Float64Array | undefined;
  private readonly recent: Float64Array[] = [];

  constructor(private readonly o: SmoothingOptions | undefined, private readonly labels: readonly string[],
    private readonly topK: number) {}

  next(logits: Float32Array): Prediction[] {
    const p = softmax(logits);
    const o = this.o;
    if (!o) return rank(p, this.labels, this.topK);
    if (o.method === 'ema') {
      const a = o.alpha ?? 0.5;
      if (!this.ema) this.ema = p;
      else for (let i = 0; i < p.length; i++) this.ema[i] = a * p[i] + (1 - a) * this.ema[i];
      return rank(this.ema, this.labels, this.topK);
    }
    this.recent.push(p);
    if (this.recent.length > (o.windows ?? 5)) this.recent.shift();
    const votes = new Float64Array(p.length);
    const mean = new Float64Array(p.length);
    for (const q of this.recent) {
      votes[rank(q, this.labels, 1)[0].index] += 1 / this.recent.length;
      for (let i = 0; i < q.length; i++) mean[i] += q[i] / this.recent.length;
    }
    const order = rank(mean, this.labels, this.labels.length).map((x) => x.index);
    order.sort((a, b) => votes[b] - votes[a]); // stable: equal votes keep the mean-probability order
    return order.slice(0, this.topK).map((index) => ({ index, label: this.labels[index], score: votes[index] }));
  }
}
