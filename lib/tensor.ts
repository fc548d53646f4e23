import { invalid, expected } from './errors';

/** Element types a Tensor can hold. float16 and bfloat16 live in a Uint16Array. */
export type DType = 'float32' | 'float64' | 'float16' | 'bfloat16' | 'uint8';

const ITEM_SIZE: Record<DType, number> = { float32: 4, float64: 8, float16: 2, bfloat16: 2, uint8: 1 };

/** The dtype a typed array implies, or the ones it may carry. */
function dtypesFor(view: ArrayBufferView | ArrayBuffer): DType[] | null {
  if (view instanceof Float32Array) return ['float32'];
  if (view instanceof Float64Array) return ['float64'];
  if (view instanceof Uint8Array || view instanceof Uint8ClampedArray) return ['uint8'];
  if (view instanceof Uint16Array) return ['float16', 'bfloat16'];
  if (view instanceof DataView || view instanceof ArrayBuffer) return null; // untyped bytes: any dtype
  return [];
}

/**
 * A shaped view over caller-owned memory. `Tensor.fromBuffer` makes no copy; the classifier takes
 * one snapshot of the bytes when a request is submitted, so the buffer can be reused right after
 * `classify()` returns its promise.
 */
export class Tensor {
  private constructor(
    readonly data: ArrayBufferView | ArrayBuffer,
    readonly shape: readonly number[],
    readonly dtype: DType,
  ) {}

  /**
   * Wraps `view` as a tensor of `shape`. `dtype` defaults to what the typed array implies
   * (float32 for a Float32Array); a Uint16Array needs 'float16' or 'bfloat16'.
   * Throws VideoMAEError VMAE_INVALID_INPUT when the shape, dtype or byte length do not agree.
   */
  static fromBuffer(view: ArrayBufferView | ArrayBuffer, shape: readonly number[], dtype?: DType): Tensor {
    if (!ArrayBuffer.isView(view) && !(view instanceof ArrayBuffer)) {
      throw expected('a TypedArray, DataView or ArrayBuffer', 'data', view);
    }
    if (!Array.isArray(shape) || shape.length === 0 || shape.length > 8) {
      throw expected('an array of 1 to 8 dimensions', 'shape', shape);
    }
    for (const d of shape) {
      if (!Number.isSafeInteger(d) || d <= 0) throw expected('positive integer dimensions', 'shape', d);
    }
    const allowed = dtypesFor(view);
    if (dtype !== undefined && !Object.hasOwn(ITEM_SIZE, dtype)) throw expected(`one of ${Object.keys(ITEM_SIZE).join(', ')}`, 'dtype', dtype);
    if (allowed !== null && allowed.length === 0) {
      throw invalid(`Unsupported array type ${view.constructor.name}: use Float32Array, Float64Array, Uint8Array or Uint16Array`);
    }
    const resolved: DType | undefined = dtype ?? (allowed === null ? 'float32' : allowed.length === 1 ? allowed[0] : undefined);
    if (resolved === undefined) throw invalid("A Uint16Array needs dtype 'float16' or 'bfloat16'");
    if (allowed !== null && !allowed.includes(resolved)) {
      throw invalid(`dtype '${resolved}' does not match a ${view.constructor.name} (expected ${allowed.join(' or ')})`);
    }
    const numel = shape.reduce((a, b) => a * b, 1);
    const bytes = numel * ITEM_SIZE[resolved];
    if (view.byteLength !== bytes) {
      throw invalid(
        `Expected ${bytes} bytes (${numel} × ${resolved}) for shape [${shape.join(',')}] but received ${view.byteLength} bytes` +
          (view.byteLength === 0 ? ' (is the buffer detached?)' : ''),
      );
    }
    return new Tensor(view, Object.freeze([...shape]), resolved);
  }

  /** Number of elements. */
  get size(): number {
    return this.shape.reduce((a, b) => a * b, 1);
  }

  /** True when the buffer was detached or transferred (e.g. by postMessage) after wrapping. */
  get detached(): boolean {
    return this.data.byteLength !== this.size * ITEM_SIZE[this.dtype];
  }
}

