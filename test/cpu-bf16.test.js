'use strict';
// bfloat16 (and float16) on the CPU. On libtorch >= 2.1 the load-time rewrite freezes the graph,
// runs the tubelet embedding as a GEMM, every linear layer through oneDNN's pre-packed linear with
// its bias, exact GELU and residual add in the GEMM epilogue (vmae::onednn_linear), and attention
// through scaled_dot_product_attention (native/core/graph_passes.cc, linear.cc, attention.cc).
// The fast path must be as accurate as plain libtorch running the exported graph in bfloat16: both
// are compared with the float64 reference (test/tools/reference.py), never with each other alone.
const assert = require('node:assert/strict');
const { test } = require('node:test');

const { VideoClassifier, Tensor, runtimeInfo } = require('..');
const { makeModel, referenceLogits, randomFloats, maxAbsDiff } = require('./helpers/fixtures');
const { TORCH_2_1, BF16_NATIVE, BF16_REFUSED, FP16_NATIVE } = require('./helpers/cpu');

// 50 tokens (not a multiple of any block), head dim 24, 2 layers, 5 labels.
const ARGS = ['--seed', '7', '--weight-std', '0.2', '--preprocessor', '--image-size', '80', '--hidden', '48', '--heads', '2'];

async function logitsOf(clf, input, shape) {
  const rs = await clf.classifyBatch(Tensor.fromBuffer(input, shape), { topK: clf.config.numLabels });
  return rs.map((r) => Array.from(r.logits));
}

const argmax = (xs) => xs.indexOf(Math.max(...xs));

test('bfloat16 on a CPU without native bfloat16 (no AVX-512 or AMX) is refused with a clear error', { skip: BF16_NATIVE && 'this CPU runs bfloat16 natively' }, async () => {
  const { model } = makeModel(ARGS);
  assert.equal(runtimeInfo().cpuBfloat16, false);
  for (const optimize of [true, false]) {
    await assert.rejects(VideoClassifier.load(model, { threads: 2, dtype: 'bfloat16', optimize }), (err) => {
      assert.equal(err.code, 'VMAE_INVALID_INPUT');
      assert.match(err.message, BF16_REFUSED);
      assert.match(err.message, /Use 'float32' here/);
      return true;
    });
  }
  // The process and a float32 classifier of the same file carry on.
  const clf = await VideoClassifier.load(model, { threads: 2 });
  try {
    const { numFrames: t, imageSize: s } = clf.config;
    const [logits] = await logitsOf(clf, randomFloats(t * 3 * s * s, 3), [1, t, 3, s, s]);
    assert.equal(logits.length, clf.config.numLabels);
  } finally {
    await clf.dispose();
  }
});

test('bfloat16 on the CPU: the rewritten graph is as close to the float64 reference as plain libtorch bfloat16', { skip: !BF16_NATIVE && 'refused on this CPU (above)' }, async () => {
  const { checkpoint, model } = makeModel(ARGS);
  assert.equal(runtimeInfo().cpuBfloat16, true);
  const fast = await VideoClassifier.load(model, { threads: 2, dtype: 'bfloat16' });
  const plain = await VideoClassifier.load(model, { threads: 2, dtype: 'bfloat16', optimize: false });
  try {
    assert.equal(fast.optimizations.fusedLinear > 0, TORCH_2_1, JSON.stringify(fast.optimizations));
    const { numFrames: t, imageSize: s } = fast.config;
    const clips = 8;
    const shape = [clips, t, 3, s, s];
    const input = randomFloats(clips * t * 3 * s * s, 31);
    const ref = referenceLogits(checkpoint, input, shape);
    const n = fast.config.numLabels;
    const refRows = Array.from({ length: clips }, (_, i) => Array.from(ref.slice(i * n, (i + 1) * n)));
    // Batches of 8 take the residual adds that do not fuse (the position table broadcasts).
    const a = await logitsOf(fast, input, shape);
    const b = await logitsOf(plain, input, shape);
    const errFast = maxAbsDiff(a.flat(), ref);
    const errPlain = maxAbsDiff(b.flat(), ref);
    const range = Math.max(...ref) - Math.min(...ref);
    assert.ok(range > 1, `the logits are spread (${range})`);
    assert.ok(errFast > 0, 'bfloat16 should differ from float64');
    assert.ok(errFast <= Math.max(2 * errPlain, 0.01 * range),
      `max |fast - ref| = ${errFast}, plain libtorch bfloat16: ${errPlain} (logit range ${range})`);
    let agree = 0;
    for (let i = 0; i < clips; i++) if (argmax(a[i]) === argmax(refRows[i])) agree++;
    let agreePlain = 0;
    for (let i = 0; i < clips; i++) if (argmax(b[i]) === argmax(refRows[i])) agreePlain++;
    assert.ok(agree >= agreePlain, `top-1 agreement with float64: fast ${agree}/${clips}, plain ${agreePlain}/${clips}`);
    // One clip alone (the fused residual add) equals its row of the batch to bfloat16 precision.
    const [one] = await logitsOf(fast, input.subarray(0, t * 3 * s * s), [1, t, 3, s, s]);
    assert.ok(maxAbsDiff(one, a[0]) <= 0.01 * range, `single vs batched: ${maxAbsDiff(one, a[0])}`);
  } finally {
    await Promise.all([fast.dispose(), plain.dispose()]);
  }
});

test('float16 on the CPU: rewritten like bfloat16 where oneDNN supports it, else refused with a clear error', async () => {
  const { checkpoint, model } = makeModel(ARGS);
  if (!FP16_NATIVE) {
    await assert.rejects(VideoClassifier.load(model, { threads: 2, dtype: 'float16' }), (err) => {
      assert.equal(err.code, 'VMAE_INVALID_INPUT');
      assert.match(err.message, /float16 on the CPU needs libtorch 2\.1 or newer and a CPU with AVX512-FP16 or AMX-FP16/);
      assert.match(err.message, /'bfloat16'/);
      return true;
    });
    return;
  }
  const clf = await VideoClassifier.load(model, { threads: 2, dtype: 'float16' });
  try {
    assert.ok(clf.optimizations.fusedLinear > 0, JSON.stringify(clf.optimizations));
    const { numFrames: t, imageSize: s } = clf.config;
    const shape = [2, t, 3, s, s];
    const input = randomFloats(2 * t * 3 * s * s, 37);
    const ref = referenceLogits(checkpoint, input, shape);
    const a = (await logitsOf(clf, input, shape)).flat();
    const range = Math.max(...ref) - Math.min(...ref);
    assert.ok(maxAbsDiff(a, ref) <= 0.01 * range, `max |float16 - ref| = ${maxAbsDiff(a, ref)} (range ${range})`);
  } finally {
    await clf.dispose();
  }
});
