'use strict';
// The load-time rewrites (native/core/graph_passes.cc) and the CPU kernels behind them
// (native/core/kernels*.{h,cc}): vmae::attention in place of matmul -> softmax -> matmul, and
// vmae::linear (packed weight, fused bias / exact GELU / residual add) in place of aten::linear in
// the frozen float32 graph. Both must equal the unrewritten graph (1e-5) and the float64 reference
// (1e-4), on shapes that exercise the kernels' edges (head dims and widths that are not a multiple
// of the vector width, token counts that are not a multiple of the tile, the key panel or the row
// block), in every instruction-set variant this CPU runs.
const assert = require('node:assert/strict');
const { test } = require('node:test');

const { VideoClassifier, Tensor, runtimeInfo } = require('..');
const { makeModel, referenceLogits, randomFloats, maxAbsDiff, withEnv } = require('./helpers/fixtures');
const { runChild } = require('./helpers/child');
const { BF16_NATIVE, TORCH_2_1 } = require('./helpers/cpu');

const VARIANTS = [
  // [name, make_checkpoint flags]; tokens = (frames/2) * (image/16)^2, head dim = hidden/heads
  ['12 tokens, head dim 8', ['--frames', '6', '--hidden', '40', '--heads', '5']],
  ['50 tokens, head dim 24', ['--image-size', '80', '--hidden', '48', '--heads', '2']],
  ['128 tokens (3 tiles), head dim 32', ['--image-size', '128', '--hidden', '64', '--heads', '2', '--layers', '1']],
  ['196 tokens, head dim 80 (the huge model\'s)', ['--frames', '2', '--image-size', '224', '--hidden', '160', '--heads', '2', '--layers', '1', '--intermediate', '64']],
  ['no qkv bias, no mean pooling, widths 72/200, 9 labels', ['--image-size', '48', '--hidden', '72', '--heads', '3', '--intermediate', '200',
    '--no-qkv-bias', '--no-mean-pooling', '--labels', '9']],
];

/** Loads `model` with both rewrites on (the default) or off (LoadOptions.optimize: false). */
function load(model, fused) {
  return VideoClassifier.load(model, { threads: 2, optimize: fused });
}

async function logitsOf(clf, input, shape) {
  const rs = await clf.classifyBatch(Tensor.fromBuffer(input, shape), { topK: clf.config.numLabels });
  return new Float64Array(rs.flatMap((r) => Array.from(r.logits)));
}

for (const [name, args] of VARIANTS) {
  test(`fused attention and linear equal the unrewritten graph and the float64 reference: ${name}`, async () => {
    const { checkpoint, model } = makeModel(['--seed', '5', '--weight-std', '0.2', '--preprocessor', ...args]);
    const fused = await load(model, true);
    const unfused = await load(model, false);
    try {
      const { numFrames: t, imageSize: s } = fused.config;
      const shape = [2, t, 3, s, s];
      const input = randomFloats(2 * t * 3 * s * s, 17);
      const a = await logitsOf(fused, input, shape);
      const b = await logitsOf(unfused, input, shape);
      assert.ok(maxAbsDiff(a, b) < 1e-5, `max |fused - unfused| = ${maxAbsDiff(a, b)}`);
      const ref = referenceLogits(checkpoint, input, shape);
      assert.ok(maxAbsDiff(a, ref) < 1e-4, `max |fused - reference| = ${maxAbsDiff(a, ref)}`);
      assert.ok(Math.max(...ref) - Math.min(...ref) > 0.1, 'the logits are not trivially close');
    } finally {
      await fused.dispose();
      await unfused.dispose();
    }
  });
}

test('runtimeInfo names the CPU kernels in use', () => {
  assert.ok(['avx512', 'avx2', 'generic'].includes(runtimeInfo().cpuKernels), runtimeInfo().cpuKernels);
});

test('every instruction-set variant of the kernels gives the same logits (VIDEOMAE_CPU_ISA)', async () => {
  const { model } = makeModel(['--seed', '5', '--weight-std', '0.2', '--preprocessor', ...VARIANTS[1][1]]);
  const source = `
    (async () => {
      const clf = await vmae.VideoClassifier.load(${JSON.stringify(model)}, { threads: 2 });
      const { numFrames: t, imageSize: s, numLabels } = clf.config;
      const input = fixtures.randomFloats(t * 3 * s * s, 23);
      const r = await clf.classify(vmae.Tensor.fromBuffer(input, [t, 3, s, s]), { topK: numLabels });
      report({ isa: vmae.runtimeInfo().cpuKernels, logits: Array.from(r.logits) });
      await clf.dispose();
    })();`;
  const results = {};
  for (const isa of ['avx512', 'avx2', 'generic']) {
    const r = await runChild(source, { env: { VIDEOMAE_CPU_ISA: isa } });
    assert.equal(r.code, 0, r.stderr);
    results[r.result.isa] = r.result.logits;  // a CPU without AVX-512 falls back to a narrower one
  }
  assert.ok('generic' in results);
  for (const [isa, logits] of Object.entries(results)) {
    assert.ok(maxAbsDiff(logits, results.generic) < 1e-5, `${isa} vs generic: ${maxAbsDiff(logits, results.generic)}`);
  }
});

test('the rewrites: one attention and four linears per layer (plus the patch embedding and the head); each switch turns its own off', async () => {
  const { native } = require('../lib/native');
  const { model } = makeModel(['--seed', '5', '--preprocessor', '--layers', '3']);
  const loadInfo = (options, env = {}) => withEnv(env, async () => {
    const nc = new (native().NativeClassifier)({ threads: 1 });
    try {
      const info = await nc.load(1, model, { device: 'cpu', dtype: 'float32', ...options });
      return [info.fusedAttention, info.fusedLinear];
    } finally {
      await nc.dispose();
    }
  });
  assert.deepEqual(await loadInfo({}), [3, 14]);
  for (const [options, expected] of [[{}, [3, 14]], [{ optimize: false }, [0, 0]]]) {
    const clf = await VideoClassifier.load(model, { threads: 1, ...options });
    assert.deepEqual(clf.optimizations, { fusedAttention: expected[0], fusedLinear: expected[1] });
    await clf.dispose();
  }
  assert.deepEqual(await loadInfo({ optimize: false }), [0, 0]);
  assert.deepEqual(await loadInfo({}, { VIDEOMAE_DISABLE_FUSED_ATTENTION: '1' }), [0, 14]);
  assert.deepEqual(await loadInfo({}, { VIDEOMAE_DISABLE_FUSED_LINEAR: '1' }), [3, 0]);
  // bfloat16: oneDNN's packed linear on libtorch >= 2.1 (test/cpu-bf16.test.js), else as exported;
  // refused on a CPU without native bfloat16.
  if (BF16_NATIVE) assert.deepEqual(await loadInfo({ dtype: 'bfloat16' }), [3, TORCH_2_1 ? 14 : 0]);
  else await assert.rejects(loadInfo({ dtype: 'bfloat16' }), (err) => err.code === 'VMAE_INVALID_INPUT');
});
