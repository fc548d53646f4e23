/** The stable codes every rejection carries. */
export type ErrorCode =
  | 'VMAE_INVALID_INPUT'
  | 'VMAE_MODEL_LOAD_FAILED'
  | 'VMAE_DEVICE_UNAVAILABLE'
  | 'VMAE_OUT_OF_MEMORY'
  | 'VMAE_DISPOSED'
  | 'VMAE_RUNTIME'
  | 'VMAE_DECODE_FAILED'
  | 'VMAE_BUSY'
  | 'VMAE_ABORTED'
  | 'VMAE_TIMEOUT'
  | 'VMAE_NATIVE_UNAVAILABLE'
  | 'VMAE_SETUP_FAILED';

const KNOWN_CODES = new Set<string>([
  'VMAE_INVALID_INPUT', 'VMAE_MODEL_LOAD_FAILED', 'VMAE_DEVICE_UNAVAILABLE', 'VMAE_OUT_OF_MEMORY',
  'VMAE_DISPOSED', 'VMAE_RUNTIME', 'VMAE_DECODE_FAILED', 'VMAE_BUSY', 'VMAE_ABORTED', 'VMAE_TIMEOUT',
  'VMAE_NATIVE_UNAVAILABLE', 'VMAE_SETUP_FAILED',
]);

/** Whether `value` is one of the stable codes. */
export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && KNOWN_CODES.has(value);
}

/** Every error this package throws or rejects with. Switch on `code`, not on the message. */
export class VideoMAEError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'VideoMAEError';
    this.code = code;
  }
}

/** Shorthand for a VMAE_INVALID_INPUT error. */
export function invalid(message: string): VideoMAEError {
  return new VideoMAEError('VMAE_INVALID_INPUT', message);
}

/** sharp's wording: "Expected positive integer for topK but received -1 of type number". */
export function expected(what: string, name: string, received: unknown): VideoMAEError {
  return invalid(`Expected ${what} for ${name} but received ${describe(received)}`);
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'string') return `'${value.length > 80 ? value.slice(0, 80) + '…' : value}' of type string`;
  if (typeof value === 'object') return `an object of type ${value.constructor?.name ?? 'Object'}`;
  return `${String(value)} of type ${typeof value}`;
}

/**
 * Runs a native call and turns its rejection into a VideoMAEError whose stack is the caller's,
 * so users see their own call site rather than an anonymous native frame (as sharp does).
 */
export async function nativeCall<T>(call: () => Promise<T>): Promise<T> {
  const site: { stack?: string } = {};
  Error.captureStackTrace(site, nativeCall);
  try {
    return await call();
  } catch (err) {
    throw fromNative(err, site.stack);
  }
}

/** Converts whatever a native call threw into a VideoMAEError. */
export function fromNative(err: unknown, callerStack?: string): VideoMAEError {
  if (err instanceof VideoMAEError) return err;
  const raw = err as { code?: unknown; message?: unknown };
  const code = isErrorCode(raw?.code) ? raw.code : 'VMAE_RUNTIME';
  const message = typeof raw?.message === 'string' ? raw.message : String(err);
  const error = new VideoMAEError(code, message);
  if (callerStack) error.stack = `${error.name}: ${message}\n${callerStack.split('\n').slice(1).join('\n')}`;
  return error;
}
