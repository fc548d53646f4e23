'use strict';
// Dynamic batching (LoadOptions.maxBatchSize > 1): concurrent single-clip requests are merged into
// one forward on the inference thread, padded to a bucket (1, 2, 4, 8), and split back. Each
// promise must get the logits of its own clip, equal to an unbatched forward of that clip.
const assert = require('node:assert/strict');
const { test, before, after } = require('node:test');

const { VideoClassifier, Tensor } = require('..');
const { makeModel, randomFloats, maxAbsDiff } = require('./helpers/fixtures');

const CLIPS = 8;
let model;
let shape;
let clips;
let expected;  // unbatched logits per clip
let unbatched;

before(async () => {
  // Large weights (std 0.2) so that different clips give clearly different logits.
  ({ model } = makeModel(['--seed', '21', '--weight-std', '0.2', '--preprocessor', '--labels', '7']));
  unbatched = await VideoClassifier.load(model, { threads: 2, maxBatchSize: 1 });
  const c = unbatched.config;
  shape = [c.numFrames, c.numChannels, c.imageSize, c.imageSize];
  const per = shape.reduce((a, b) => a * b, 1);
  const data = randomFloats(CLIPS * per, 99);
  clips = Array.from({ length: CLIPS }, (_, i) => data.subarray(i * per, (i + 1) * per));
  expected = [];
  for (const clip of clips) expected.push((await unbatched.classify(Tensor.fromBuffer(clip, shape))).logits);
  // The check below is only meaningful if the clips are told apart by the model.
  for (let i = 1; i < CLIPS; i++) assert.ok(maxAbsDiff(expected[i], expected[0]) > 1e-2, `clip ${i} vs clip 0`);
});

after(async () => {
  await unbatched?.dispose();
});

/** Fires `indices.length` single-clip requests at once and returns their logits in order. */
function concurrent(clf, indices) {
  return Promise.all(indices.map((i) => clf.classify(Tensor.fromBuffer(clips[i], shape), { topK: 1 })
    .then((r) => r.logits)));
}

function assertMatches(got, indices, what) {
  got.forEach((logits, j) => {
    const i = indices[j];
    const diff = maxAbsDiff(logits, expected[i]);
    assert.ok(diff < 1e-5, `${what}: request ${j} (clip ${i}) differs from its unbatched logits by ${diff}`);
    // ... and is not another clip's result.
    for (let k = 0; k < CLIPS; k++) {
      if (k !== i) assert.ok(maxAbsDiff(logits, expected[k]) > 1e-3, `${what}: request ${j} got clip ${k}'s logits`);
    }
  });
}

test('maxBatchSize 4: concurrent single-clip requests give the unbatched logits, each to its own promise', async () => {
  // A long delay lets the queue fill, so that the requests are really merged.
  const clf = await VideoClassifier.load(model, { threads: 2, maxBatchSize: 4, maxBatchDelayMs: 200 });
  try {
    const order = [3, 0, 7, 1, 6, 2, 5, 4];
    assertMatches(await concurrent(clf, order), order, '8 requests, buckets of 4');
    // 3 requests: one batch padded to the bucket of 4.
    assertMatches(await concurrent(clf, [5, 1, 6]), [5, 1, 6], '3 requests padded to 4');
    // 5 requests: a batch of 4, then one alone (or padded).
    assertMatches(await concurrent(clf, [2, 2, 7, 0, 4]), [2, 2, 7, 0, 4], '5 requests with a repeated clip');
  } finally {
    await clf.dispose();
  }
});

test('maxBatchSize 8: every bucket (1, 2, 4, 8) and a batched request queued among single clips', async () => {
  const clf = await VideoClassifier.load(model, { threads: 2, maxBatchSize: 8, maxBatchDelayMs: 200 });
  try {
    for (const n of [1, 2, 4, 8]) {
      const idx = Array.from({ length: n }, (_, i) => (i * 3 + n) % CLIPS);
      assertMatches(await concurrent(clf, idx), idx, `${n} requests`);
    }
    // A classifyBatch request is not merged: the singles around it still get their own results.
    const per = clips[0].length;
    const both = new Float32Array(2 * per);
    both.set(clips[6], 0);
    both.set(clips[3], per);
    const singlesBefore = concurrent(clf, [0, 1]);
    const batch = clf.classifyBatch(Tensor.fromBuffer(both, [2, ...shape]), { topK: 1 });
    const singlesAfter = concurrent(clf, [2, 5, 4]);
    const [b, a, rs] = await Promise.all([singlesBefore, singlesAfter, batch]);
    assertMatches(b, [0, 1], 'singles before a batch');
    assertMatches(a, [2, 5, 4], 'singles after a batch');
    assertMatches(rs.map((r) => r.logits), [6, 3], 'the batch request');
  } finally {
    await clf.dispose();
  }
});

test('maxBatchSize 4: float64 and float32 requests in one batch', async () => {
  const clf = await VideoClassifier.load(model, { threads: 2, maxBatchSize: 4, maxBatchDelayMs: 200 });
  try {
    const idx = [4, 1, 7, 2];
    const got = await Promise.all(idx.map((i, j) => {
      const t = j % 2 ? Tensor.fromBuffer(Float64Array.from(clips[i]), shape, 'float64') : Tensor.fromBuffer(clips[i], shape);
      return clf.classify(t).then((r) => r.logits);
    }));
    assertMatches(got, idx, 'mixed dtypes');
  } finally {
    await clf.dispose();
  }
});

test('maxBatchSize 4: a clip holding NaN or Infinity is refused alone; the clips batched with it are right', async () => {
  const clf = await VideoClassifier.load(model, { threads: 2, maxBatchSize: 4, maxBatchDelayMs: 200 });
  try {
    const bad = (value, at) => {
      const x = Float32Array.from(clips[2]);
      x[at] = value;
      return clf.classify(Tensor.fromBuffer(x, shape), { topK: 1 }).then(() => 'ok', (e) => e.code);
    };
    const good = (i) => clf.classify(Tensor.fromBuffer(clips[i], shape), { topK: 1 }).then((r) => r.logits);
    const [a, nan, b, inf] = await Promise.all([good(0), bad(NaN, 0), good(5), bad(-Infinity, clips[2].length - 1)]);
    assert.equal(nan, 'VMAE_INVALID_INPUT');
    assert.equal(inf, 'VMAE_INVALID_INPUT');
    assertMatches([a, b], [0, 5], 'the finite clips of a batch with two non-finite ones');
    // The largest finite float32, -0 and subnormals are finite: accepted.
    const edge = Float32Array.from(clips[3]);
    edge.set([3.4028234663852886e38, -0, 1e-45, -1.17e-38], 10);
    assert.equal((await clf.classify(Tensor.fromBuffer(edge, shape))).logits.length, 7);
  } finally {
    await clf.dispose();
  }
});
