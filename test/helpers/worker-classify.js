'use strict';
// A worker_threads script for the lifecycle and worker suites. workerData:
//   model     the model file
//   threads   intra-op threads (default 1)
//   seeds     classify one clip of randomFloats(size, seed) per seed and post { logits: [...] }
//   loop      keep 8 requests in flight forever (until terminated); posts 'running' once started
// It posts 'loaded' after the load, then its results; errors are posted as { error, code }.
const { parentPort, workerData } = require('node:worker_threads');

const { VideoClassifier, Tensor } = require('../..');
const { randomFloats } = require('./fixtures');

(async () => {
  const clf = await VideoClassifier.load(workerData.model, { threads: workerData.threads ?? 1, maxQueue: 1000 });
  parentPort.postMessage('loaded');
  const c = clf.config;
  const shape = [c.numFrames, c.numChannels, c.imageSize, c.imageSize];
  const size = shape.reduce((a, b) => a * b, 1);
  if (workerData.seeds) {
    const results = [];
    for (const seed of workerData.seeds) {
      results.push(Array.from((await clf.classify(Tensor.fromBuffer(randomFloats(size, seed), shape))).logits));
    }
    await clf.dispose();
    parentPort.postMessage({ results });
    return;
  }
  if (workerData.loop) {
    const x = Tensor.fromBuffer(randomFloats(size, 1), shape);
    const one = () => clf.classify(x).then(one, () => {});
    for (let i = 0; i < 8; i++) one();
    parentPort.postMessage('running');
  }
})().catch((err) => parentPort.postMessage({ error: err.message, code: err.code }));
