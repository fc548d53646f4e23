import type { NativeClassifier } from '../binding';
import { expected, fromNative, VideoMAEError } from './errors';

/** Per-request controls, accepted by every classify* call. */
export interface RequestOptions {
  /** Aborts the request: queued work is cancelled; a running forward finishes but its result is dropped. */
  signal?: AbortSignal;
  /** Rejects with VMAE_TIMEOUT after this many ms, cancelling the work if it has not started. */
  timeoutMs?: number;
}

let nextId = 0;
/** A process-wide request id, for NativeClassifier.cancel(). */
export function requestId(): number {
  nextId = nextId >= 0xfffffffe ? 1 : nextId + 1;
  return nextId;
}

/** Validates signal/timeoutMs. Throws VMAE_INVALID_INPUT. */
export function checkRequestOptions(o: RequestOptions): void {
  if (o.signal !== undefined && !(o.signal instanceof AbortSignal)) throw expected('an AbortSignal', 'signal', o.signal);
  if (o.timeoutMs !== undefined && (!Number.isInteger(o.timeoutMs) || o.timeoutMs < 1 || o.timeoutMs > 2 ** 31 - 1)) {
    throw expected('a positive integer', 'timeoutMs', o.timeoutMs);
  }
}

/** The error an aborted signal stands for. */
export function abortError(signal: AbortSignal): VideoMAEError {
  const reason = signal.reason instanceof Error ? `: ${signal.reason.message}` : '';
  return new VideoMAEError('VMAE_ABORTED', `The request was aborted${reason}`, { cause: signal.reason });
}

/**
 * Admission control (maxQueue), cancellation (AbortSignal, timeoutMs) and error translation for
 * the requests of one classifier.
 */
export class RequestTracker {
  /** Requests submitted to the native thread and not yet settled there. */
  pending = 0;

  constructor(private readonly nc: NativeClassifier, private readonly maxQueue: number) {}

  /**
   * Throws VMAE_BUSY when maxQueue requests are pending. Cheap: callers shed load with it before
   * validating their input and copying it (O(n) on the JS thread).
   */
  admit(): void {
    if (this.pending >= this.maxQueue) {
      throw new VideoMAEError('VMAE_BUSY', `Too many pending requests (maxQueue is ${this.maxQueue}); retry later or raise maxQueue`);
    }
  }

  /** Submits one native request under `options`. */
  run<T>(options: RequestOptions, submit: (id: number) => Promise<T>): Promise<T> {
    const site: { stack?: string } = {};
    Error.captureStackTrace(site, this.run);
    checkRequestOptions(options);
    const { signal, timeoutMs } = options;
    if (signal?.aborted) return Promise.reject(abortError(signal));
    try {
      this.admit();
    } catch (err) {
      return Promise.reject(err);
    }
    const id = requestId();
    this.pending++;
    const work = submit(id);
    return new Promise<T>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      let done = false;
      const stop = (error: VideoMAEError) => {
        if (done) return;
        // A queued request is cancelled natively (its slot is freed as `work` rejects); a running
        // one cannot be interrupted, and its result is dropped when it arrives. Either way the
        // caller gets `error` itself, with the abort reason as its cause.
        this.nc.cancel(id, error.code, error.message);
        finish(() => reject(error));
      };
      const onAbort = () => stop(abortError(signal!));
      const finish = (settle: () => void) => {
        if (done) return;
        done = true;
        if (timer) clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        settle();
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      if (timeoutMs !== undefined) {
        timer = setTimeout(() => stop(new VideoMAEError('VMAE_TIMEOUT', `The request took longer than timeoutMs (${timeoutMs} ms)`)), timeoutMs);
      }
      work.then(
        (value) => finish(() => resolve(value)),
        (err) => finish(() => reject(fromNative(err, site.stack))),
      ).finally(() => this.pending--);
    });
  }
}
