// An AbortSignal for one stage of a request: it aborts when the caller's signal does or when a
// time budget runs out, and its `reason` is always the VideoMAEError the stage should reject with.
import type { VideoMAEError } from './errors';
import { abortError } from './requests';

export interface Deadline {
  /** Aborts with a VideoMAEError reason. */
  readonly signal: AbortSignal;
  /** Milliseconds left before the budget runs out (undefined without a budget; at least 1). */
  remainingMs(): number | undefined;
  /** Stops the timer and detaches from the parent. */
  dispose(): void;
}

/**
 * Aborts when `parent` does, or after `ms` with `onTimeout()` as the reason. A user's AbortSignal
 * as parent gives VMAE_ABORTED; a parent Deadline passes its own reason on.
 */
export function deadline(parent: AbortSignal | Deadline | undefined, ms: number | undefined,
  onTimeout: () => VideoMAEError): Deadline {
  const controller = new AbortController();
  const end = ms === undefined ? undefined : Date.now() + ms;
  const parentSignal = parent instanceof AbortSignal ? parent : parent?.signal;
  const fromParent = () =>
    controller.abort(parent instanceof AbortSignal ? abortError(parent) : parentSignal!.reason);
  let timer: NodeJS.Timeout | undefined;
  if (parentSignal?.aborted) fromParent();
  else {
    parentSignal?.addEventListener('abort', fromParent, { once: true });
    if (ms !== undefined) timer = setTimeout(() => controller.abort(onTimeout()), ms);
  }
  return {
    signal: controller.signal,
    remainingMs: () => (end === undefined ? undefined : Math.max(1, end - Date.now())),
    dispose: () => {
      if (timer) clearTimeout(timer);
      parentSignal?.removeEventListener('abort', fromParent);
    },
  };
}
