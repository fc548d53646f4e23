'use strict';
// Every error code of the core API is reached, each rejection is a VideoMAEError, and a valid call
// succeeds afterwards on the same classifier.
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { before, after, test } = require('node:test');

const { VideoClassifier, Tensor, VideoMAEError } = require('..');
const { tinyModel, python, randomFloats } = require('./helpers/fixtures');

const SHAPE = [4, 3, 32, 32];
const CLIP = 4 * 3 * 32 * 32;
let model;
let faults;
let clf;

async function rejectsWith(promiseOrFn, code, pattern) {
  const p = typeof promiseOrFn === 'function' ? (async () => promiseOrFn())() : promiseOrFn;
  await assert.rejects(p, (err) => {
    assert.ok(err instanceof VideoMAEError, `expected a VideoMAEError, got ${err && err.constructor.name}: ${err}`);
    assert.equal(err.code, code, err.message);
    if (pattern) assert.match(err.message, pattern);
    return true;
  });
}

async function stillWorks() {
  const r = await clf.classify(Tensor.fromBuffer(randomFloats(CLIP, 4), SHAPE));
  assert.equal(r.logits.length, 5);
}

before(async () => {
  model = tinyModel().model;
  faults = fs.mkdtempSync(path.join(os.tmpdir(), 'vmae-faults-'));
  python(['test/tools/make_fault_model.py', '--out', faults]);
  clf = await VideoClassifier.load(model, { threads: 1 });
});

after(async () => {
  await clf.dispose();
  fs.rmSync(faults, { recursive: true, force: true });
});

test('VMAE_INVALID_INPUT: shapes, frame count, image size, dtype, buffer length, topK, non-finite', async () => {
  const x = randomFloats(CLIP, 1);
  await rejectsWith(clf.classify(Tensor.fromBuffer(x, [CLIP])), 'VMAE_INVALID_INPUT', /Expected pixel_values of shape \[1,4,3,32,32\]/);
  await rejectsWith(clf.classify(Tensor.fromBuffer(randomFloats(2 * CLIP), [2, ...SHAPE])), 'VMAE_INVALID_INPUT', /received \[2,4,3,32,32\]/);
  await rejectsWith(clf.classify(Tensor.fromBuffer(randomFloats(8 * 3 * 32 * 32), [8, 3, 32, 32])), 'VMAE_INVALID_INPUT', /Expected 4 frames .* received 8/);
  await rejectsWith(clf.classify(Tensor.fromBuffer(randomFloats(4 * 3 * 16 * 16), [4, 3, 16, 16])), 'VMAE_INVALID_INPUT', /Expected 32x32 images .* received 16x16/);
  await rejectsWith(clf.classify(Tensor.fromBuffer(randomFloats(4 * 1 * 32 * 32), [4, 1, 32, 32])), 'VMAE_INVALID_INPUT', /Expected 3 channels/);
  await rejectsWith(clf.classifyBatch(Tensor.fromBuffer(x, SHAPE)), 'VMAE_INVALID_INPUT', /\[B,4,3,32,32\]/);
  await rejectsWith(clf.classify(Tensor.fromBuffer(new Uint8Array(CLIP), SHAPE)), 'VMAE_INVALID_INPUT', /uint8/);
  await rejectsWith(clf.classify({ data: x, shape: SHAPE, dtype: 'float32' }), 'VMAE_INVALID_INPUT', /Tensor/);
  await rejectsWith(clf.classify(Tensor.fromBuffer(x, SHAPE), { topK: 0 }), 'VMAE_INVALID_INPUT', /Expected an integer in 1\.\.5 for topK but received 0 of type number/);
  await rejectsWith(clf.classify(Tensor.fromBuffer(x, SHAPE), { topK: 6 }), 'VMAE_INVALID_INPUT', /topK/);
  await rejectsWith(clf.classify(Tensor.fromBuffer(x, SHAPE), { topK: 1.5 }), 'VMAE_INVALID_INPUT', /topK/);
  const nan = randomFloats(CLIP, 1);
  nan[100] = NaN;
  await rejectsWith(clf.classify(Tensor.fromBuffer(nan, SHAPE)), 'VMAE_INVALID_INPUT', /NaN or Infinity/);
  await stillWorks();
});

test('Tensor.fromBuffer throws VMAE_INVALID_INPUT for a mismatched dtype, length or shape', () => {
  const throwsCode = (fn, pattern) => assert.throws(fn, (e) => e instanceof VideoMAEError && e.code === 'VMAE_INVALID_INPUT' && pattern.test(e.message));
  throwsCode(() => Tensor.fromBuffer(new Float32Array(10), [11]), /Expected 44 bytes .* received 40 bytes/);
  throwsCode(() => Tensor.fromBuffer(new Float32Array(10), [10], 'float64'), /does not match a Float32Array/);
  throwsCode(() => Tensor.fromBuffer(new Uint16Array(10), [10]), /Uint16Array needs dtype/);
  throwsCode(() => Tensor.fromBuffer(new Float32Array(10), [-10]), /positive integer dimensions/);
  throwsCode(() => Tensor.fromBuffer(new Float32Array(10), [2.5, 4]), /positive integer dimensions/);
  throwsCode(() => Tensor.fromBuffer(new Int32Array(10), [10]), /Unsupported array type Int32Array/);
  throwsCode(() => Tensor.fromBuffer('nope', [10]), /TypedArray/);
  throwsCode(() => Tensor.fromBuffer(new Float32Array(10), 10), /dimensions/);
  assert.equal(Tensor.fromBuffer(new Uint16Array(4), [4], 'bfloat16').dtype, 'bfloat16');
  assert.equal(Tensor.fromBuffer(new ArrayBuffer(16), [4]).dtype, 'float32');
});

test('a buffer detached after Tensor.fromBuffer is refused, never read', async () => {
  const x = randomFloats(CLIP, 1);
  const t = Tensor.fromBuffer(x, SHAPE);
  structuredClone(x.buffer, { transfer: [x.buffer] });
  await rejectsWith(clf.classify(t), 'VMAE_INVALID_INPUT', /detached/);
  await stillWorks();
});

test('float64, float16 and bfloat16 inputs are accepted and agree with float32', async () => {
  const x = randomFloats(CLIP, 8);
  const ref = await clf.classify(Tensor.fromBuffer(x, SHAPE));
  const f64 = await clf.classify(Tensor.fromBuffer(Float64Array.from(x), SHAPE));
  assert.ok(Math.max(...ref.logits.map((v, i) => Math.abs(v - f64.logits[i]))) < 1e-5);
  // bfloat16 by truncating the float32 bits: the input itself is coarser, so the tolerance is too.
  const u32 = new Uint32Array(x.buffer);
  const bf = Uint16Array.from(u32, (v) => v >>> 16);
  const rbf = await clf.classify(Tensor.fromBuffer(bf, SHAPE, 'bfloat16'));
  assert.ok(Math.max(...ref.logits.map((v, i) => Math.abs(v - rbf.logits[i]))) < 5e-2);
});

test('VMAE_MODEL_LOAD_FAILED: missing, corrupt, truncated, non-VideoMAE and inconsistent files', async () => {
  await rejectsWith(VideoClassifier.load('/nonexistent/model.pt'), 'VMAE_MODEL_LOAD_FAILED', /does not exist/);
  const junk = path.join(faults, 'junk.pt');
  fs.writeFileSync(junk, 'this is not a zip');
  await rejectsWith(VideoClassifier.load(junk), 'VMAE_MODEL_LOAD_FAILED', /not a TorchScript archive/);
  const truncated = path.join(faults, 'truncated.pt');
  const bytes = fs.readFileSync(model);
  fs.writeFileSync(truncated, bytes.subarray(0, Math.floor(bytes.length / 2)));
  await rejectsWith(VideoClassifier.load(truncated), 'VMAE_MODEL_LOAD_FAILED');
  await rejectsWith(VideoClassifier.load(path.join(faults, 'nometa.pt')), 'VMAE_MODEL_LOAD_FAILED', /no embedded videomae\.json/);
  await rejectsWith(VideoClassifier.load(path.join(faults, 'badlabels.pt')), 'VMAE_MODEL_LOAD_FAILED', /outputs 5 logits but its metadata lists 3 labels/);
  await rejectsWith(VideoClassifier.load(path.join(faults, 'badmeta.pt')), 'VMAE_MODEL_LOAD_FAILED', /numFrames/);
  await rejectsWith(VideoClassifier.load(''), 'VMAE_INVALID_INPUT');
});

test('VMAE_DEVICE_UNAVAILABLE for CUDA on a CPU libtorch; VMAE_INVALID_INPUT for a bad device or dtype', async (t) => {
  const { runtimeInfo } = require('..');
  if (runtimeInfo().cudaAvailable) return t.skip('this machine has CUDA');
  await rejectsWith(VideoClassifier.load(model, { device: 'cuda' }), 'VMAE_DEVICE_UNAVAILABLE', /no usable CUDA/);
  await rejectsWith(VideoClassifier.load(model, { device: 'cuda:1' }), 'VMAE_DEVICE_UNAVAILABLE');
  await rejectsWith(VideoClassifier.load(model, { device: 'gpu' }), 'VMAE_INVALID_INPUT', /'cpu', 'cuda' or 'cuda:N' for device but received 'gpu'/);
  await rejectsWith(VideoClassifier.load(model, { device: 'cuda:-1' }), 'VMAE_INVALID_INPUT');
  await rejectsWith(VideoClassifier.load(model, { dtype: 'int8' }), 'VMAE_INVALID_INPUT', /dtype/);
  await rejectsWith(VideoClassifier.load(model, { threads: 0 }), 'VMAE_INVALID_INPUT', /threads/);
  await rejectsWith(VideoClassifier.load(model, { maxBatchSize: 3 }), 'VMAE_INVALID_INPUT', /maxBatchSize/);
  await rejectsWith(VideoClassifier.load(model, { optimize: 'no' }), 'VMAE_INVALID_INPUT', /Expected a boolean for optimize but received 'no'/);
});

test('VMAE_RUNTIME from an exception inside the model, and the classifier stays usable', async () => {
  const bad = await VideoClassifier.load(path.join(faults, 'throws.pt'));
  try {
    const x = new Float32Array(CLIP);
    x[0] = 1000;
    await rejectsWith(bad.classify(Tensor.fromBuffer(x, SHAPE)), 'VMAE_RUNTIME', /^Failed while running the model: fault model: deliberate failure inside forward$/);
    const ok = await bad.classify(Tensor.fromBuffer(new Float32Array(CLIP), SHAPE));
    assert.equal(ok.logits.length, 5);
  } finally {
    await bad.dispose();
  }
});

test('VMAE_OUT_OF_MEMORY from a failed allocation, and the classifier stays usable', async () => {
  const bad = await VideoClassifier.load(path.join(faults, 'oom.pt'));
  try {
    const x = new Float32Array(CLIP);
    x[0] = 1000;
    await rejectsWith(bad.classify(Tensor.fromBuffer(x, SHAPE)), 'VMAE_OUT_OF_MEMORY', /can't allocate memory/);
    assert.equal((await bad.classify(Tensor.fromBuffer(new Float32Array(CLIP), SHAPE))).logits.length, 5);
  } finally {
    await bad.dispose();
  }
});

test('VMAE_DISPOSED: queued requests reject, the running one completes, later calls reject', async () => {
  const c = await VideoClassifier.load(model, { threads: 1 });
  const x = Tensor.fromBuffer(randomFloats(CLIP, 3), SHAPE);
  const calls = Array.from({ length: 20 }, () => c.classify(x).then(() => 'ok', (e) => e.code));
  const disposed = c.dispose();
  assert.equal(c.dispose(), disposed, 'a second dispose returns the same promise');
  await disposed;
  const outcomes = await Promise.all(calls);
  assert.ok(outcomes.every((o) => o === 'ok' || o === 'VMAE_DISPOSED'), outcomes.join());
  assert.ok(outcomes.includes('VMAE_DISPOSED'), 'some queued requests were rejected');
  await rejectsWith(c.classify(x), 'VMAE_DISPOSED');
  await c.dispose();
});

test('errors carry the caller\'s stack, not an anonymous native frame', async () => {
  const err = await clf.classify(Tensor.fromBuffer(randomFloats(CLIP), SHAPE), { topK: 99 }).catch((e) => e);
  assert.match(err.stack, /errors\.test\.js/);
  const loadErr = await VideoClassifier.load('/nonexistent.pt').catch((e) => e);
  assert.match(loadErr.stack, /errors\.test\.js/);
});
