'use strict';
// Seeded fuzzing of every public entry point (issue 6): thousands of calls with wrong types,
// shapes, ranks, dtypes, lengths, detached buffers, non-finite values and bad options, many of them
// in flight at once with aborts and timeouts. Every call must return, throw or reject with a
// VideoMAEError carrying a known code, never anything else and never a crash; calls with a known
// answer must give it; and a valid call at the end still matches the float64 reference.
//
// Reproduce a failure with VMAE_FUZZ_SEED=<seed> (printed in the diagnostics); VMAE_FUZZ_CALLS
// raises or lowers the number of calls.
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { after, before, test } = require('node:test');

const { VideoClassifier, Tensor } = require('..');
const { tinyModel, makeModel, randomFloats, referenceLogits, maxAbsDiff } = require('./helpers/fixtures');
const { KNOWN_CODES, rng, hostileValues, detached, outcome, show } = require('./helpers/fuzz');

const SEED = Number(process.env.VMAE_FUZZ_SEED ?? 0x5eed);
const CALLS = Number(process.env.VMAE_FUZZ_CALLS ?? 6000);
const WAVE = 24; // calls in flight at once

const T = 4;
const S = 32;
const L = 5;
const CLIP = [T, 3, S, S];
const CLIP_SIZE = T * 3 * S * S;

let tiny;
let strict; // rejectNonFinite: true (default), maxQueue large, no batching
let lenient; // rejectNonFinite: false, dynamic batching, small queue (VMAE_BUSY happens)
let scratch;
const known = []; // { data: Float32Array, logits: Float32Array }

before(async () => {
  tiny = tinyModel();
  scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'vmae-fuzz-'));
  fs.writeFileSync(path.join(scratch, 'junk.pt'), 'not a model');
  fs.writeFileSync(path.join(scratch, 'empty.pt'), '');
  strict = await VideoClassifier.load(tiny.model, { threads: 1, maxQueue: 100_000 });
  lenient = await VideoClassifier.load(tiny.model, { threads: 1, rejectNonFinite: false, maxBatchSize: 4, maxBatchDelayMs: 1, maxQueue: 16 });
  for (let k = 0; k < 3; k++) {
    const data = randomFloats(CLIP_SIZE, 100 + k);
    known.push({ data, logits: (await strict.classify(Tensor.fromBuffer(data, CLIP))).logits });
  }
});

after(async () => {
  await strict?.dispose();
  await lenient?.dispose();
  if (scratch) fs.rmSync(scratch, { recursive: true, force: true });
});

/** Typed-array constructors, including ones the API refuses. */
const VIEW_TYPES = [Float32Array, Float64Array, Uint8Array, Uint16Array, Uint8ClampedArray, Int8Array, Int16Array,
  Int32Array, Uint32Array, BigInt64Array];
const DTYPES = ['float32', 'float64', 'float16', 'bfloat16', 'uint8', 'int8', 'float', 'toString', '__proto__',
  'constructor', 'hasOwnProperty', '', undefined, undefined, undefined];
const ODD_DIMS = [0, -1, -32, 1.5, NaN, Infinity, -Infinity, 2 ** 31, 2 ** 53, 2 ** 60, '4', null, undefined, 4n, 1e9];

/** The fuzzing plan: each generator returns { what, call, expect? } for one call. */
function generators(r) {
  const hostile = hostileValues();
  const any = () => r.pick(hostile);
  const dim = () => (r.chance(0.8) ? r.pick([1, 2, 3, 4, 8, 16, 32, 64]) : r.pick(ODD_DIMS));
  const randomShape = () => {
    if (r.chance(0.05)) return any();
    return Array.from({ length: r.int(0, 10) }, dim);
  };
  /** A shape near the model's: right rank, one or two dims off, or right. */
  const nearShape = (batched) => {
    const shape = batched ? [r.int(1, 3), ...CLIP] : r.chance(0.5) ? [...CLIP] : [1, ...CLIP];
    const edits = r.int(0, 2);
    for (let e = 0; e < edits; e++) {
      const i = r.int(0, shape.length - 1);
      shape[i] = r.chance(0.7) ? r.pick([1, 2, 3, 5, 8, 16, 31, 33, 64]) : r.pick(ODD_DIMS.filter((d) => typeof d === 'number'));
    }
    if (r.chance(0.1)) shape.splice(r.int(0, shape.length - 1), 1);
    if (r.chance(0.1)) shape.push(r.pick([1, 2]));
    return shape;
  };
  const numel = (shape) => (Array.isArray(shape) ? shape.reduce((a, b) => a * (Number.isSafeInteger(b) && b > 0 ? b : 1), 1) : 1);
  /** A buffer for `shape`: the right length for its type most of the time, else off. */
  const bufferFor = (shape, Ctor = r.pick(VIEW_TYPES)) => {
    let n = Math.min(numel(shape), 1 << 20);
    if (r.chance(0.2)) n += r.pick([-1, 1, 2, -n]);
    n = Math.max(0, n);
    const roll = r.next();
    if (roll < 0.05) return detached(Ctor, n || 1);
    if (roll < 0.1) return new ArrayBuffer(n * 4);
    if (roll < 0.15) return new DataView(new ArrayBuffer(n * 4 + 1), 1);
    if (roll < 0.18) return new Float32Array(new SharedArrayBuffer(n * 4));
    if (roll < 0.2) return any();
    const a = new Ctor(n);
    if (Ctor === Float32Array || Ctor === Float64Array) {
      for (let i = 0; i < a.length; i += 97) a[i] = r.next() * 4 - 2;
    }
    return a;
  };
  const topK = () => (r.chance(0.6) ? r.int(1, L) : r.pick([0, -1, L + 1, 100, 1.5, NaN, Infinity, '3', null, undefined, 2n, {}]));
  const signal = () => {
    const roll = r.next();
    if (roll < 0.6) return undefined;
    if (roll < 0.7) return AbortSignal.abort(new Error('fuzz'));
    if (roll < 0.8) return AbortSignal.timeout(r.int(1, 3));
    if (roll < 0.9) {
      const c = new AbortController();
      setTimeout(() => c.abort(), r.int(0, 3));
      return c.signal;
    }
    return any();
  };
  const timeoutMs = () => (r.chance(0.8) ? undefined : r.chance(0.5) ? r.int(1, 4) : r.pick([0, -1, 1.5, NaN, 2 ** 31, '5', null, Infinity]));
  const classifyOptions = () => {
    if (r.chance(0.05)) return any();
    const o = {};
    if (r.chance(0.5)) o.topK = topK();
    if (r.chance(0.3)) o.signal = signal();
    if (r.chance(0.3)) o.timeoutMs = timeoutMs();
    if (r.chance(0.05)) o[r.pick(['crops', 'device', 'extra'])] = any();
    return o;
  };
  const clf = () => (r.chance(0.7) ? strict : lenient);
  const tensorOrJunk = (batched) => {
    const roll = r.next();
    if (roll < 0.05) return any();
    if (roll < 0.1) return { data: new Float32Array(CLIP_SIZE), shape: CLIP, dtype: 'float32' };
    const shape = roll < 0.7 ? nearShape(batched) : randomShape();
    try {
      return Tensor.fromBuffer(bufferFor(shape, r.chance(0.6) ? Float32Array : r.pick(VIEW_TYPES)), shape, r.pick(DTYPES));
    } catch {
      // Not every shape makes a Tensor; fall back to a right-sized one of a random float dtype.
      const s = batched ? [r.int(1, 2), ...CLIP] : CLIP;
      return Tensor.fromBuffer(r.chance(0.5) ? new Float64Array(numel(s)) : new Float32Array(numel(s)), s);
    }
  };

  const list = [
    // Tensor.fromBuffer with everything wrong, sometimes right.
    [15, () => {
      const shape = r.chance(0.5) ? randomShape() : nearShape(r.chance(0.5));
      const data = r.chance(0.9) ? bufferFor(shape) : any();
      const dtype = r.pick(DTYPES);
      return { what: `Tensor.fromBuffer(${show(data)}, ${show(shape)}, ${show(dtype)})`, call: () => Tensor.fromBuffer(data, shape, dtype) };
    }],
    // Tensor.fromBuffer cases with a known verdict.
    [5, () => {
      const kind = r.pick(['length', 'dtype', 'dims', 'detached', 'rank0']);
      let data = new Float32Array(CLIP_SIZE);
      let shape = [...CLIP];
      let dtype;
      if (kind === 'length') data = new Float32Array(CLIP_SIZE + r.pick([-1, 1, -CLIP_SIZE + 1]));
      if (kind === 'dtype') dtype = r.pick(['float64', 'uint8', 'float16', 'bfloat16']);
      if (kind === 'dims') shape[r.int(0, 3)] = r.pick([0, -4, 1.5, NaN, Infinity, '4', null]);
      if (kind === 'detached') data = detached(Float32Array, CLIP_SIZE);
      if (kind === 'rank0') shape = r.pick([[], [1, 1, 1, 1, 1, 1, 1, 1, 1], 'x', null]);
      return { what: `Tensor.fromBuffer known ${kind}`, call: () => Tensor.fromBuffer(data, shape, dtype), expect: 'VMAE_INVALID_INPUT' };
    }],
    // classify with random inputs and options.
    [20, () => {
      const input = tensorOrJunk(false);
      const o = r.chance(0.1) ? undefined : classifyOptions();
      const c = clf();
      return { what: `classify(${show(input)}, ${show(o)})`, call: () => c.classify(input, o) };
    }],
    // classifyBatch with random inputs and options.
    [12, () => {
      const input = tensorOrJunk(true);
      const o = r.chance(0.1) ? undefined : classifyOptions();
      const c = clf();
      return { what: `classifyBatch(${show(input)}, ${show(o)})`, call: () => c.classifyBatch(input, o) };
    }],
    // Wrong frame count, image size or channels: always VMAE_INVALID_INPUT.
    [5, () => {
      const shape = [...CLIP];
      const i = r.int(0, 3);
      shape[i] = r.pick([1, 2, 5, 8, 16, 64].filter((d) => d !== shape[i]));
      const input = Tensor.fromBuffer(new Float32Array(numel(shape)), shape);
      return { what: `classify wrong dims ${show(shape)}`, call: () => clf().classify(input), expect: 'VMAE_INVALID_INPUT' };
    }],
    // topK outside 1..numLabels: always VMAE_INVALID_INPUT.
    [4, () => {
      const k = r.pick([0, -1, L + 1, 1000, 2.5, NaN, Infinity, -Infinity, '2', 2n, {}, []]);
      const input = Tensor.fromBuffer(known[0].data, CLIP);
      return { what: `classify topK ${show(k)}`, call: () => clf().classify(input, { topK: k }), expect: 'VMAE_INVALID_INPUT' };
    }],
    // Non-finite values: refused with rejectNonFinite (the default), accepted without.
    [5, () => {
      const dtype = r.pick(['float32', 'float64', 'float16', 'bfloat16']);
      const n = CLIP_SIZE;
      let data;
      if (dtype === 'float32' || dtype === 'float64') {
        data = dtype === 'float32' ? new Float32Array(n) : new Float64Array(n);
        data[r.int(0, n - 1)] = r.pick([NaN, Infinity, -Infinity]);
      } else {
        data = new Uint16Array(n);
        data[r.int(0, n - 1)] = dtype === 'float16' ? r.pick([0x7c00, 0xfc00, 0x7e00]) : r.pick([0x7f80, 0xff80, 0x7fc0]);
      }
      const input = Tensor.fromBuffer(data, CLIP, dtype);
      const useStrict = r.chance(0.5);
      return useStrict
        ? { what: `classify non-finite ${dtype} (strict)`, call: () => strict.classify(input), expect: 'VMAE_INVALID_INPUT' }
        : { what: `classify non-finite ${dtype} (lenient)`, call: () => lenient.classify(input), expect: 'resolve-or-busy' };
    }],
    // A buffer detached after Tensor.fromBuffer: refused.
    [3, () => {
      const data = new Float32Array(CLIP_SIZE);
      const input = Tensor.fromBuffer(data, CLIP);
      structuredClone(data.buffer, { transfer: [data.buffer] });
      return { what: 'classify detached', call: () => clf().classify(input), expect: 'VMAE_INVALID_INPUT' };
    }],
    // The same clip through other views (offsets, DataView, ArrayBuffer, float64): same logits.
    [6, () => {
      const k = r.int(0, known.length - 1);
      const src = known[k].data;
      const kind = r.pick(['subarray', 'dataview', 'arraybuffer', 'float64', 'batch', 'buffer-pool']);
      let input;
      if (kind === 'subarray') {
        const big = new Float32Array(CLIP_SIZE + 7);
        big.set(src, 3);
        input = Tensor.fromBuffer(big.subarray(3, 3 + CLIP_SIZE), CLIP);
      } else if (kind === 'dataview') {
        const bytes = new Uint8Array(CLIP_SIZE * 4 + 3);
        bytes.set(new Uint8Array(src.buffer, src.byteOffset, src.byteLength), 1);
        input = Tensor.fromBuffer(new DataView(bytes.buffer, 1, CLIP_SIZE * 4), [1, ...CLIP]);
      } else if (kind === 'arraybuffer') {
        input = Tensor.fromBuffer(src.slice().buffer, CLIP, 'float32');
      } else if (kind === 'float64') {
        input = Tensor.fromBuffer(Float64Array.from(src), CLIP);
      } else if (kind === 'buffer-pool') {
        const b = Buffer.allocUnsafe(CLIP_SIZE * 4); // may sit at an offset inside Node's pool
        b.set(new Uint8Array(src.buffer, src.byteOffset, src.byteLength));
        input = Tensor.fromBuffer(new DataView(b.buffer, b.byteOffset, b.byteLength), CLIP);
      } else {
        const two = new Float32Array(2 * CLIP_SIZE);
        two.set(src, 0);
        two.set(src, CLIP_SIZE);
        input = Tensor.fromBuffer(two, [2, ...CLIP]);
      }
      const c = clf();
      return {
        what: `classify known clip ${k} via ${kind}`,
        call: () => (kind === 'batch' ? c.classifyBatch(input) : c.classify(input)),
        expect: 'resolve-or-busy',
        check: (v) => {
          for (const row of kind === 'batch' ? v : [v]) assert.ok(maxAbsDiff(row.logits, known[k].logits) < 1e-5, `logits differ for ${kind}`);
        },
      };
    }],
    // A buffer detached or overwritten while its request is queued: the addon copied it at submit.
    [3, () => {
      const k = r.int(0, known.length - 1);
      const data = known[k].data.slice();
      const input = Tensor.fromBuffer(data, CLIP);
      const c = clf();
      return {
        what: `classify then detach clip ${k}`,
        call: () => {
          const p = c.classify(input);
          // classify() is async: its body, and so the native submit, ran before it returned.
          if (r.chance(0.5)) structuredClone(data.buffer, { transfer: [data.buffer] });
          else data.fill(1e6);
          return p;
        },
        expect: 'resolve-or-busy',
        check: (v) => assert.ok(maxAbsDiff(v.logits, known[k].logits) < 1e-5, 'a detached/overwritten buffer changed the result'),
      };
    }],
    // VideoClassifier.load with bad paths and options.
    [10, () => {
      const paths = [tiny.model, tiny.model, '/nonexistent/model.pt', '', scratch, path.join(scratch, 'junk.pt'),
        path.join(scratch, 'empty.pt'), `${tiny.model}\u0000.txt`, 42, null, undefined, {}, ['a'], Symbol('p')];
      const p = r.pick(paths);
      const bad = {
        device: ['gpu', 'CPU', ' cpu', 'cuda:-1', 'cuda:1234', 'cuda:0x1', 'cpu\u0000', 'mps', 'cuda:', '', 0, {}, true],
        dtype: ['float64', 'int8', 'uint8', 'FLOAT32', 'half', '', 1, {}, true],
        threads: [0, -1, 1.5, NaN, Infinity, 1025, '2', null, 2 ** 53, {}],
        maxBatchSize: [0, 3, 5, 16, 1.5, '1', -8, null, NaN],
        maxBatchDelayMs: [-1, 1001, 0.5, NaN, '2', null, Infinity],
        maxQueue: [0, -1, 1.5, 1e7, '64', NaN, null],
        rejectNonFinite: ['yes', 0, 1, {}, 'false'],
      };
      const good = {
        device: ['cpu', 'cpu', undefined, 'cuda', 'cuda:0', 'cuda:3'],
        dtype: ['float32', undefined, 'bfloat16'],
        threads: [1, 2, undefined],
        maxBatchSize: [1, 2, 4, 8, undefined],
        maxBatchDelayMs: [0, 1, 5, undefined],
        maxQueue: [1, 64, undefined],
        rejectNonFinite: [true, false, undefined],
      };
      let o;
      if (r.chance(0.05)) o = any();
      else {
        o = {};
        for (const key of Object.keys(good)) if (r.chance(0.4)) o[key] = r.pick(good[key]);
        // Mostly one bad option, so most loads fail fast in validation without a native thread.
        if (r.chance(0.85)) {
          const key = r.pick(Object.keys(bad));
          o[key] = r.pick(bad[key]);
        }
      }
      return {
        what: `load(${show(p)}, ${show(o)})`,
        call: () => VideoClassifier.load(p, o).then(async (c) => {
          await c.dispose();
          return c;
        }),
      };
    }],
  ];
  if (typeof strict.preprocess === 'function' || typeof strict.classifyFrames === 'function') {
    const raw = () => {
      if (r.chance(0.1)) return any();
      const frames = r.chance(0.7) ? T : r.pick([0, 1, 3, 5, 8, -1, 1.5, NaN, '4', null]);
      const height = r.chance(0.7) ? r.pick([32, 40, 24, 1, 2]) : r.pick([0, -1, 1.5, NaN, 16385, '32', null, 2 ** 40]);
      const width = r.chance(0.7) ? r.pick([32, 48, 24, 1, 3]) : r.pick([0, -1, 1.5, NaN, 16385, '32', null, 2 ** 40]);
      const ok = [frames, height, width].every((d) => Number.isSafeInteger(d) && d > 0 && d < 100);
      let n = ok ? frames * height * width * 3 : r.int(0, 5000);
      if (ok && r.chance(0.2)) n += r.pick([-1, 1, 3]);
      const roll = r.next();
      const data = roll < 0.05 ? detached(Uint8Array, n || 1) : roll < 0.1 ? new Float32Array(n) : roll < 0.15 ? any() : Buffer.alloc(Math.max(0, n), 7);
      return { data, frames, height, width };
    };
    const frameOptions = () => {
      const o = r.chance(0.1) ? any() : classifyOptions();
      if (o && typeof o === 'object' && r.chance(0.4)) o.crops = r.chance(0.6) ? r.int(1, 3) : r.pick([0, -1, 9, 17, 1.5, NaN, '2', null]);
      return o;
    };
    if (typeof strict.preprocess === 'function') {
      list.push([5, () => {
        const v = raw();
        const o = frameOptions();
        return { what: `preprocess(${show(v)}, ${show(o)})`, call: () => clf().preprocess(v, o) };
      }]);
    }
    if (typeof strict.classifyFrames === 'function') {
      list.push([6, () => {
        const v = raw();
        const o = frameOptions();
        return { what: `classifyFrames(${show(v)}, ${show(o)})`, call: () => clf().classifyFrames(v, o) };
      }]);
    }
  }
  const total = list.reduce((a, [w]) => a + w, 0);
  return () => {
    let roll = r.next() * total;
    for (const [w, gen] of list) {
      if ((roll -= w) < 0) return gen();
    }
    return list[0][1]();
  };
}

/** Checks the shape of a successful result. Throws an AssertionError. */
function checkResult(what, value) {
  const one = (c) => {
    assert.ok(c.logits instanceof Float32Array && c.logits.length === L, `${what}: logits`);
    assert.ok(Array.isArray(c.predictions) && c.predictions.length >= 1 && c.predictions.length <= L, `${what}: predictions`);
    for (const p of c.predictions) assert.ok(p.label === `class_${p.index}`, `${what}: label`);
  };
  if (value instanceof VideoClassifier || value instanceof Tensor || value === undefined) return;
  if (Array.isArray(value)) value.forEach(one);
  else if (value && value.logits) one(value);
}

test(`${CALLS} fuzzed calls across the API settle with known codes (seed ${SEED})`, { timeout: 300_000 }, async (t) => {
  const next = generators(rng(SEED));
  const failures = [];
  const tally = new Map();
  const count = (key) => tally.set(key, (tally.get(key) ?? 0) + 1);
  const started = performance.now();
  for (let done = 0; done < CALLS; done += WAVE) {
    const wave = [];
    for (let i = done; i < Math.min(CALLS, done + WAVE); i++) {
      const c = next();
      wave.push(outcome(c.call).then((o) => {
        count(`${c.what.split('(')[0].split(' ')[0]} ${o.kind === 'resolve' || o.kind === 'return' ? 'ok' : o.code ?? 'bad'}`);
        const fail = (why) => failures.push(`#${i} ${c.what}: ${why}`);
        if (o.kind === 'bad') return fail(`non-VideoMAEError ${o.error && o.error.stack ? o.error.stack.split('\n').slice(0, 3).join(' | ') : show(o.error)}`);
        if (c.expect === 'resolve-or-busy') {
          if (o.kind !== 'resolve' && o.code !== 'VMAE_BUSY') return fail(`expected a result, got ${o.code}: ${o.message}`);
        } else if (c.expect && o.code !== c.expect) {
          return fail(`expected ${c.expect}, got ${o.kind} ${o.code ?? show(o.value)}`);
        }
        try {
          if (o.kind === 'resolve' || o.kind === 'return') {
            checkResult(c.what, o.value);
            c.check?.(o.value);
          }
        } catch (err) {
          fail(err.message);
        }
      }));
    }
    await Promise.all(wave);
  }
  const ms = performance.now() - started;
  t.diagnostic(`${CALLS} calls in ${(ms / 1000).toFixed(1)} s, seed ${SEED}`);
  t.diagnostic([...tally].sort().map(([k, v]) => `${k}: ${v}`).join(', '));
  assert.deepEqual(failures.slice(0, 20), [], `${failures.length} failures`);
  // Enough of the calls did real work for the fuzzing to mean something.
  const ok = [...tally].filter(([k]) => /^classify\S* ok$/.test(k)).reduce((a, [, v]) => a + v, 0);
  assert.ok(ok > CALLS / 40, `only ${ok} classify calls succeeded`);

  // Afterwards both classifiers still answer, and match the float64 reference.
  const x = randomFloats(CLIP_SIZE, 77);
  const ref = referenceLogits(tiny.checkpoint, x, [1, ...CLIP]);
  for (const c of [strict, lenient]) {
    const r = await c.classify(Tensor.fromBuffer(x, CLIP));
    assert.ok(maxAbsDiff(r.logits, ref) < 1e-4, `max |diff| ${maxAbsDiff(r.logits, ref)} vs the float64 reference`);
  }
});

test('the raw native binding rejects malformed arguments with a coded Error, never a crash', { timeout: 120_000 }, async (t) => {
  // lib/ validates before the binding sees anything; this reaches native/addon's own checks.
  const { native } = require('../lib/native');
  const r = rng(SEED ^ 0xbeef);
  const hostile = hostileValues();
  const any = () => r.pick(hostile);
  const nc = new (native().NativeClassifier)({ threads: 1 });
  await nc.load(1, tiny.model, { device: 'cpu', dtype: 'float32' });
  const params = { shortestEdge: 32, cropSize: 32, rescaleFactor: 1 / 255, mean: [0.45, 0.45, 0.45], std: [0.225, 0.225, 0.225] };
  const smallShape = () => (r.chance(0.3) ? any() : Array.from({ length: r.int(0, 9) }, () =>
    r.chance(0.8) ? r.int(1, 6) : r.pick([0, -1, 1.5, NaN, 2 ** 31, 2 ** 32, 2 ** 40, 2 ** 62, Infinity, '2', null])));
  const buffer = () => (r.chance(0.2) ? any() : r.chance(0.1) ? detached(Uint8Array, 8)
    : r.pick([new Float32Array(r.int(0, 64)), new Uint8Array(r.int(0, 300)), new ArrayBuffer(r.int(0, 64)),
      new DataView(new ArrayBuffer(16), 3), new Float32Array(new SharedArrayBuffer(16)), new BigInt64Array(2)]));
  const paramsLike = () => {
    if (r.chance(0.2)) return any();
    const p = structuredClone(params);
    const key = r.pick(Object.keys(p));
    p[key] = r.chance(0.5) ? any() : r.pick([0, -1, 8193, NaN, [1, 2], [0, 0, 0], ['a', 1, 2], 1e-300]);
    if (r.chance(0.3)) p.cropSize = r.int(1, 40);
    return p;
  };
  const calls = [
    () => nc.forward(r.chance(0.8) ? r.int(1, 1000) : any(), buffer(), r.pick(['float32', 'float64', 'uint8', 'int8', any()]), smallShape()),
    () => nc.forwardFrames(r.int(1, 1000), buffer(), smallShape(), paramsLike(), r.pick([1, 2, 4, 0, -1, 5000, any()]), r.pick([1, 2, 0, 17, any()])),
    () => nc.preprocess(r.int(1, 1000), buffer(), smallShape(), paramsLike(), r.pick([1, 3, 0, 17, any()])),
    () => nc.warmup(r.chance(0.8) ? r.int(1, 1000) : any(), r.chance(0.5) ? any() : [1, r.pick([1, 2, 4, 5]), 3, r.pick([16, 32]), 32]),
    () => nc.cancel(any(), any(), any()),
    () => nc.load(r.int(1, 1000), r.pick([tiny.model, '/nonexistent', any()]), r.chance(0.5) ? any() : { device: any(), dtype: any() }),
  ];
  const tally = new Map();
  const failures = [];
  for (let i = 0; i < 1500; i++) {
    const which = r.int(0, calls.length - 1);
    let value;
    try {
      value = calls[which]();
    } catch (err) {
      failures.push(`#${i} call ${which} threw synchronously: ${err && err.message}`);
      continue;
    }
    if (typeof value === 'boolean') continue; // cancel()
    try {
      await value;
      tally.set(`${which} ok`, (tally.get(`${which} ok`) ?? 0) + 1);
    } catch (err) {
      if (!(err instanceof Error) || !KNOWN_CODES.has(err.code)) failures.push(`#${i} call ${which}: ${err && err.code} ${err && err.message}`);
      tally.set(`${which} ${err.code}`, (tally.get(`${which} ${err.code}`) ?? 0) + 1);
    }
  }
  t.diagnostic([...tally].sort().map(([k, v]) => `${k}: ${v}`).join(', '));
  assert.deepEqual(failures.slice(0, 20), []);
  const x = known[0].data;
  const { logits } = await nc.forward(1, x, 'float32', [1, ...CLIP]);
  assert.ok(maxAbsDiff(logits, known[0].logits) < 1e-6);
  await nc.dispose();
});

test('a view over a SharedArrayBuffer is classified like any other', async () => {
  const shared = new Float32Array(new SharedArrayBuffer(CLIP_SIZE * 4));
  shared.set(known[1].data);
  const r = await strict.classify(Tensor.fromBuffer(shared, CLIP));
  assert.ok(maxAbsDiff(r.logits, known[1].logits) < 1e-6);
  const dv = new DataView(shared.buffer);
  assert.ok(maxAbsDiff((await strict.classify(Tensor.fromBuffer(dv, CLIP))).logits, known[1].logits) < 1e-6);
});

test('inputs over 1 MB go through reused staging buffers: each result is its own clip\'s, under reuse, overwrite and dispose', async () => {
  // Inputs of at least StagingPool::kMinPooledBytes (native/core/staging_pool.h) are copied into
  // buffers that finished requests hand back. The expected logits come from the float64 reference.
  const { checkpoint, model } = makeModel(['--seed', '8', '--weight-std', '0.2', '--preprocessor', '--frames', '4',
    '--image-size', '160', '--hidden', '32', '--heads', '2', '--layers', '1', '--intermediate', '32', '--labels', '5']);
  const shape = [4, 3, 160, 160];
  const n = shape.reduce((a, b) => a * b, 1); // 1.2 MB as float32
  const clips = [0, 1, 2].map((i) => randomFloats(n, 40 + i));
  const ref = clips.map((c) => referenceLogits(checkpoint, c, [1, ...shape]));
  for (let i = 1; i < 3; i++) assert.ok(maxAbsDiff(ref[i], ref[0]) > 1e-2, 'the clips are told apart');
  const clf = await VideoClassifier.load(model, { threads: 2 });
  const order = [0, 1, 2, 2, 1, 0, 1, 2];
  for (let round = 0; round < 5; round++) {
    const scratch = order.map((i) => Float32Array.from(clips[i]));
    const pending = order.map((i, j) => clf.classify(Tensor.fromBuffer(scratch[j], shape), { topK: 1 }));
    for (const s of scratch) s.fill(NaN); // overwritten after submit: the snapshot is what counts
    const results = await Promise.all(pending);
    results.forEach((r, j) => {
      const d = maxAbsDiff(r.logits, ref[order[j]]);
      assert.ok(d < 1e-4, `round ${round}, request ${j} (clip ${order[j]}): ${d} from its reference`);
    });
  }
  // float64 (2.5 MB, another buffer size), then dispose with requests in flight.
  const inflight = Array.from({ length: 6 }, (_, j) =>
    clf.classify(Tensor.fromBuffer(Float64Array.from(clips[j % 3]), shape)).then((r) => r.logits, (e) => e.code));
  await clf.dispose();
  const outcomes = await Promise.all(inflight);
  outcomes.forEach((o, j) => {
    if (typeof o === 'string') assert.equal(o, 'VMAE_DISPOSED');
    else assert.ok(maxAbsDiff(o, ref[j % 3]) < 1e-4, `float64 request ${j}`);
  });
  assert.ok(outcomes.some((o) => typeof o !== 'string'), 'the running request finished');
});
