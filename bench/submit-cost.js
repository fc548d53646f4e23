'use strict';
// JS-thread cost of submitting one 16x3x224x224 float32 clip: the synchronous part of classify()
// (validation and the snapshot copy), timed over 40 calls (after 8 not counted), 8 in flight at a time, on a model tiny
// enough that the inference thread keeps up. `node bench/submit-cost.js [package root]`.
const path = require('node:path');
const ROOT = process.argv[2] ?? path.join(__dirname, '..');
const { VideoClassifier, Tensor } = require(ROOT);
const { makeModel } = require(path.join(ROOT, 'test/helpers/fixtures'));
(async () => {
  const clf = await VideoClassifier.load(makeModel(['--frames', '16', '--image-size', '224', '--hidden', '32', '--heads', '2', '--layers', '1', '--intermediate', '32']).model, { threads: 1, maxQueue: 1000 });
  const n = 16 * 3 * 224 * 224;
  const x = Tensor.fromBuffer(new Float32Array(n).map((_, i) => Math.sin(i)), [16, 3, 224, 224]);
  const times = [];
  for (let round = 0; round < 6; round++) {  // round 0 warms up and is not counted
    const ps = [];
    for (let i = 0; i < 8; i++) {
      const t0 = performance.now();
      ps.push(clf.classify(x));
      if (round > 0) times.push(performance.now() - t0);
    }
    await Promise.all(ps);
  }
  times.sort((a, b) => a - b);
  console.log(`submit of a 9.6 MB clip on the JS thread: median ${times[times.length >> 1].toFixed(2)} ms, p90 ${times[Math.floor(times.length * 0.9)].toFixed(2)} ms (n=${times.length})`);
  await clf.dispose();
})();
