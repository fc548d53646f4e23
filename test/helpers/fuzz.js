'use strict';
// Building blocks for seeded fuzzing: a small PRNG, pools of hostile values, and an outcome
// checker that accepts only a return value or a VideoMAEError with a known code.
const { VideoMAEError } = require('../..');

/** Every code in lib/errors.ts's ErrorCode. */
const KNOWN_CODES = new Set([
  'VMAE_INVALID_INPUT', 'VMAE_MODEL_LOAD_FAILED', 'VMAE_DEVICE_UNAVAILABLE', 'VMAE_OUT_OF_MEMORY',
  'VMAE_DISPOSED', 'VMAE_RUNTIME', 'VMAE_DECODE_FAILED', 'VMAE_BUSY', 'VMAE_ABORTED', 'VMAE_TIMEOUT',
  'VMAE_NATIVE_UNAVAILABLE',
]);

/** mulberry32: a tiny seeded PRNG. Returns helpers bound to one stream. */
function rng(seed) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const r = {
    next,
    int: (lo, hi) => lo + Math.floor(next() * (hi - lo + 1)),
    chance: (p) => next() < p,
    pick: (list) => list[Math.floor(next() * list.length)],
  };
  return r;
}

/** Values of every JS type, and the awkward corners of numbers and strings. */
function hostileValues() {
  // Not here: revoked proxies and objects whose getters throw. `instanceof` and property reads
  // rethrow the caller's own TypeError, which is the right outcome but not a VideoMAEError.
  return [
    undefined, null, true, false, 0, -0, -1, 1, 1.5, -2.5, NaN, Infinity, -Infinity, 2 ** 31, 2 ** 32,
    2 ** 53, Number.MAX_VALUE, Number.MIN_VALUE, 1e-300, '', ' ', '0', '1', 'cpu', 'float32', 'x'.repeat(10_000),
    '\u0000', '\ud800', Symbol('fuzz'), 10n, -1n, {}, [], [1], [1, 2, 3], ['1'], () => 1, new Date(0),
    new Map(), new Set(), Object.create(null), new Proxy({}, {}), /re/, new Error('x'),
    new Float32Array(3), new Uint8Array(0), new ArrayBuffer(8), new DataView(new ArrayBuffer(8)),
    Promise.resolve(1), new WeakMap(), globalThis, { valueOf: () => 4 }, { toString: () => 'cpu' },
  ];
}

/** A buffer that has been transferred away (detached). */
function detached(ctor = Float32Array, n = 16) {
  const a = new ctor(n);
  structuredClone(a.buffer, { transfer: [a.buffer] });
  return a;
}

/**
 * Runs `call` and classifies the outcome: { kind: 'return' | 'resolve', value } or
 * { kind: 'throw' | 'reject', code }. Anything thrown or rejected that is not a VideoMAEError
 * with a known code is returned as { kind: 'bad', error }.
 */
async function outcome(call) {
  const judge = (kind, error) => {
    if (error instanceof VideoMAEError && KNOWN_CODES.has(error.code) && typeof error.message === 'string') {
      return { kind, code: error.code, message: error.message };
    }
    return { kind: 'bad', error };
  };
  let value;
  try {
    value = call();
  } catch (error) {
    return judge('throw', error);
  }
  if (value && typeof value.then === 'function') {
    try {
      return { kind: 'resolve', value: await value };
    } catch (error) {
      return judge('reject', error);
    }
  }
  return { kind: 'return', value };
}

/** Short text for a fuzzed argument, for failure messages. */
function show(v, depth = 0) {
  if (typeof v === 'symbol' || typeof v === 'bigint') return String(v) + (typeof v === 'bigint' ? 'n' : '');
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? v.slice(0, 40) + '…' : v);
  if (typeof v === 'function') return 'function';
  if (v === null || typeof v !== 'object') return String(v);
  try {
    if (ArrayBuffer.isView(v) || v instanceof ArrayBuffer) {
      return `${v.constructor.name}(${v.byteLength}b${ArrayBuffer.isView(v) ? ` @${v.byteOffset}` : ''})`;
    }
    if (Array.isArray(v)) return depth > 1 ? '[…]' : `[${v.slice(0, 10).map((x) => show(x, depth + 1)).join(',')}]`;
    if (depth > 1) return '{…}';
    const name = v.constructor && v.constructor !== Object ? v.constructor.name : '';
    return `${name}{${Object.keys(v).slice(0, 10).map((k) => `${k}:${show(v[k], depth + 1)}`).join(',')}}`;
  } catch {
    return '(unprintable)';
  }
}

module.exports = { KNOWN_CODES, rng, hostileValues, detached, outcome, show };
