'use strict';
// pipeline('video-classification'): the transformers.js-style entry point delegates to VideoClassifier.
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { test, before, after } = require('node:test');

const { pipeline, VideoClassifier } = require('../lib');
const { ROOT, decodeAll, pick } = require('./helpers/video');

const EXAMPLES = path.join(ROOT, 'examples');
let classify;
let clf;
before(async () => {
  classify = await pipeline('video-classification', undefined, { device: 'cpu', dtype: 'fp32', threads: 1 });
  clf = await VideoClassifier.load(undefined, { threads: 1 });
});
after(async () => {
  await classify?.dispose();
  await clf?.dispose();
});

test('a path, a Buffer and raw frames give [{ label, score }] as classifyVideo / classifyFrames do', async () => {
  const file = path.join(EXAMPLES, 'moving_left.mp4');
  const out = await classify(file);
  assert.equal(out.length, 5); // top_k defaults to 5
  assert.deepEqual(Object.keys(out[0]), ['label', 'score']);
  assert.equal(out[0].label, 'moving_left');
  const ref = await clf.classifyVideo(file, { topK: 5 });
  assert.deepEqual(out, ref.predictions.map(({ label, score }) => ({ label, score })));
  assert.deepEqual(await classify(fs.readFileSync(file), { top_k: 2 }), out.slice(0, 2));
  assert.equal((await classify(file, { top_k: 50 })).length, 9); // capped at the labels

  // Raw frames: 32 decoded frames are sampled like a video; exactly numFrames (8) are one clip as they are.
  const decoded = decodeAll(file, 128, 96);
  const all = { data: decoded.data, frames: decoded.count, height: 96, width: 128 };
  assert.deepEqual(await classify(all), out);
  const eight = pick(decoded, [1, 5, 9, 13, 17, 21, 25, 29], 128, 96);
  const clip = await clf.classifyFrames(eight, { topK: 3 });
  assert.deepEqual(await classify(eight, { top_k: 3 }), clip.predictions.map(({ label, score }) => ({ label, score })));
});

test('an array of inputs gives an array of results, in order', async () => {
  const files = ['moving_right.mp4', 'rotating.mp4', 'static.mp4'].map((f) => path.join(EXAMPLES, f));
  const out = await classify(files, { top_k: 1 });
  assert.deepEqual(out.map((r) => r[0].label), ['moving_right', 'rotating', 'static']);
});

test('bad task, dtype, device or top_k are VMAE_INVALID_INPUT', async () => {
  await assert.rejects(pipeline('image-classification'), { code: 'VMAE_INVALID_INPUT' });
  await assert.rejects(pipeline('video-classification', undefined, { dtype: 'q8' }), { code: 'VMAE_INVALID_INPUT', message: /quantized/ });
  await assert.rejects(pipeline('video-classification', undefined, { dtype: 'fp64' }), { code: 'VMAE_INVALID_INPUT' });
  await assert.rejects(pipeline('video-classification', undefined, { device: 'webgpu' }), { code: 'VMAE_INVALID_INPUT' });
  await assert.rejects(pipeline('video-classification', '/nonexistent/model.pt'), { code: 'VMAE_MODEL_LOAD_FAILED' });
  await assert.rejects(classify(path.join(EXAMPLES, 'static.mp4'), { top_k: 0 }), { code: 'VMAE_INVALID_INPUT' });
  assert.equal(classify.task, 'video-classification');
  assert.ok(classify.classifier instanceof VideoClassifier);
});
