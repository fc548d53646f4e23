'use strict';
// The JS thread never waits on libtorch: during a forward of about a second, a 5 ms interval
// timer keeps firing on time.
const assert = require('node:assert/strict');
const { monitorEventLoopDelay } = require('node:perf_hooks');
const { test } = require('node:test');

const { VideoClassifier, Tensor } = require('..');
const { makeModel, randomFloats } = require('./helpers/fixtures');

test('a 5 ms timer never lags more than 50 ms during a ~1 s forward', async (t) => {
  // ViT-S-like: 16 frames of 224x224 (1568 tokens), hidden 384, 12 layers (about a second with the fused CPU kernels).
  const { model } = makeModel(['--seed', '1', '--preprocessor', '--frames', '16', '--image-size', '224',
    '--hidden', '384', '--layers', '12', '--heads', '6', '--intermediate', '1536', '--labels', '400']);
  const clf = await VideoClassifier.load(model, { threads: 2 });
  try {
    const shape = [16, 3, 224, 224];
    const x = Tensor.fromBuffer(randomFloats(shape.reduce((a, b) => a * b, 1), 1), shape);
    await clf.classify(x); // warm

    let last = performance.now();
    let worst = 0;
    let ticks = 0;
    const timer = setInterval(() => {
      const now = performance.now();
      worst = Math.max(worst, now - last - 5);
      last = now;
      ticks++;
    }, 5);
    const histogram = monitorEventLoopDelay({ resolution: 5 });
    histogram.enable();
    const started = performance.now();
    await clf.classify(x);
    const forwardMs = performance.now() - started;
    histogram.disable();
    clearInterval(timer);

    assert.ok(forwardMs > 300, `the forward should be long enough to matter (took ${forwardMs.toFixed(0)} ms)`);
    assert.ok(ticks >= forwardMs / 5 / 4, `only ${ticks} ticks in ${forwardMs.toFixed(0)} ms`);
    assert.ok(worst < 50, `worst timer lag ${worst.toFixed(1)} ms during a ${forwardMs.toFixed(0)} ms forward`);
    t.diagnostic(`forward ${forwardMs.toFixed(0)} ms, ${ticks} ticks, worst lag ${worst.toFixed(1)} ms, ` +
      `event-loop delay p99 ${(histogram.percentile(99) / 1e6).toFixed(1)} ms`);
  } finally {
    await clf.dispose();
  }
});
