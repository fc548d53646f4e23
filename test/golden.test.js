'use strict';
// Golden logits: Node's output against an independent float64 reference forward, for every
// checkpoint layout, weight format and config variant the exporter accepts.
const assert = require('node:assert/strict');
const { test } = require('node:test');

const { VideoClassifier, Tensor } = require('..');
const { makeModel, referenceLogits, randomFloats, maxAbsDiff } = require('./helpers/fixtures');
const { BF16_NATIVE, BF16_REFUSED } = require('./helpers/cpu');

const SHAPE = [4, 3, 32, 32];
const CLIP = SHAPE.reduce((a, b) => a * b, 1);

const VARIANTS = [
  ['transformers 4.x keys, safetensors', ['--layout', 'v4', '--format', 'safetensors']],
  ['transformers 4.x keys, pytorch_model.bin', ['--layout', 'v4', '--format', 'bin']],
  ['transformers 5.x keys, safetensors', ['--layout', 'v5', '--format', 'safetensors']],
  ['transformers 5.x keys, pytorch_model.bin', ['--layout', 'v5', '--format', 'bin']],
  ['qkv_bias false', ['--no-qkv-bias']],
  ['use_mean_pooling false (final layernorm, token 0)', ['--no-mean-pooling', '--layer-norm-eps', '1e-6']],
  ['8 frames, tubelet 2, 48px, patch 16, 3 layers', ['--frames', '8', '--image-size', '48', '--layers', '3', '--heads', '4']],
];

for (const [name, args] of VARIANTS) {
  test(`golden logits within 1e-4 of the float64 reference: ${name}`, async () => {
    const { checkpoint, model } = makeModel(['--seed', '7', '--weight-std', '0.2', '--preprocessor', ...args]);
    const clf = await VideoClassifier.load(model, { threads: 2 });
    try {
      const { numFrames: t, imageSize: s, numLabels } = clf.config;
      const shape = [2, t, 3, s, s];
      const input = randomFloats(2 * t * 3 * s * s, 11);
      const expected = referenceLogits(checkpoint, input, shape);
      const results = await clf.classifyBatch(Tensor.fromBuffer(input, shape), { topK: numLabels });
      const got = new Float64Array(results.flatMap((r) => Array.from(r.logits)));
      const diff = maxAbsDiff(got, expected);
      assert.ok(diff < 1e-4, `max |node - reference| = ${diff}`);
      // The spread of the logits shows the comparison is not trivially passing on near-zero outputs.
      assert.ok(Math.max(...expected) - Math.min(...expected) > 0.1);
    } finally {
      await clf.dispose();
    }
  });
}

test('batch 1, 2 and 3 give the same per-clip logits', async () => {
  const { model } = makeModel(['--seed', '3', '--preprocessor']);
  const clf = await VideoClassifier.load(model, { threads: 2 });
  try {
    const data = randomFloats(3 * CLIP, 5);
    const singles = [];
    for (let i = 0; i < 3; i++) {
      const r = await clf.classify(Tensor.fromBuffer(data.subarray(i * CLIP, (i + 1) * CLIP), SHAPE));
      singles.push(r.logits);
    }
    for (const b of [2, 3]) {
      const rs = await clf.classifyBatch(Tensor.fromBuffer(data.subarray(0, b * CLIP), [b, ...SHAPE]));
      assert.equal(rs.length, b);
      rs.forEach((r, i) => assert.ok(maxAbsDiff(r.logits, singles[i]) < 1e-5, `batch ${b} clip ${i}`));
    }
  } finally {
    await clf.dispose();
  }
});

test('bfloat16 on the CPU stays within 5e-2 of float32 (refused where the CPU has no native bfloat16)', async () => {
  const { model } = makeModel(['--seed', '3', '--preprocessor']);
  if (!BF16_NATIVE) {
    await assert.rejects(VideoClassifier.load(model, { threads: 2, dtype: 'bfloat16' }), (err) => err.code === 'VMAE_INVALID_INPUT' && BF16_REFUSED.test(err.message));
    return;
  }
  const f32 = await VideoClassifier.load(model, { threads: 2 });
  const bf16 = await VideoClassifier.load(model, { threads: 2, dtype: 'bfloat16' });
  try {
    assert.equal(bf16.dtype, 'bfloat16');
    const x = Tensor.fromBuffer(randomFloats(CLIP, 9), SHAPE);
    const a = await f32.classify(x);
    const b = await bf16.classify(x);
    const diff = maxAbsDiff(a.logits, b.logits);
    assert.ok(diff < 5e-2, `max |bf16 - f32| = ${diff}`);
    assert.ok(diff > 0, 'bfloat16 should actually differ from float32');
  } finally {
    await Promise.all([f32.dispose(), bf16.dispose()]);
  }
});

test('predictions are the softmax of the logits, sorted, with labels', async () => {
  const { model } = makeModel(['--seed', '3', '--preprocessor']);
  const clf = await VideoClassifier.load(model);
  try {
    const r = await clf.classify(Tensor.fromBuffer(randomFloats(CLIP, 2), [1, ...SHAPE]), { topK: 5 });
    const l = Array.from(r.logits, Number);
    const z = l.reduce((s, v) => s + Math.exp(v), 0);
    assert.equal(r.predictions.length, 5);
    for (let i = 0; i < 5; i++) {
      const p = r.predictions[i];
      assert.ok(Math.abs(p.score - Math.exp(l[p.index]) / z) < 1e-12);
      assert.equal(p.label, clf.config.labels[p.index]);
      if (i > 0) assert.ok(r.predictions[i - 1].score >= p.score);
    }
    assert.equal((await clf.classify(Tensor.fromBuffer(randomFloats(CLIP, 2), SHAPE))).predictions.length, 5);
    assert.equal((await clf.classify(Tensor.fromBuffer(randomFloats(CLIP, 2), SHAPE), { topK: 1 })).predictions.length, 1);
  } finally {
    await clf.dispose();
  }
});

test('config exposes the embedded metadata', async () => {
  const { model } = makeModel(['--seed', '3', '--preprocessor']);
  const clf = await VideoClassifier.load(model);
  try {
    const c = clf.config;
    assert.deepEqual([c.numFrames, c.imageSize, c.patchSize, c.tubeletSize, c.numLabels], [4, 32, 16, 2, 5]);
    assert.deepEqual(c.labels, ['class_0', 'class_1', 'class_2', 'class_3', 'class_4']);
    assert.equal(c.preprocessing.cropSize, 32);
    assert.equal(c.preprocessing.mean.length, 3);
    assert.match(clf.model.torchVersion, /^\d+\.\d+/);
    assert.equal(clf.device, 'cpu');
  } finally {
    await clf.dispose();
  }
});
