'use strict';
// worker_threads (issue 6): several workers load and classify at once and agree with the main
// thread; a worker terminated in the middle of inference, again and again, never takes the process
// down and leaves no threads behind; a worker that exits with work pending exits cleanly.
const assert = require('node:assert/strict');
const path = require('node:path');
const { test } = require('node:test');
const { Worker } = require('node:worker_threads');

const { VideoClassifier, Tensor } = require('..');
const { tinyModel, randomFloats, maxAbsDiff } = require('./helpers/fixtures');
const { runChild, describeChild } = require('./helpers/child');
const { heavyModel, slowModel } = require('./helpers/models');

const WORKER = path.join(__dirname, 'helpers', 'worker-classify.js');
/** Timing bounds are multiplied by this (scripts/sanitize.sh raises it: the ASan build is slower). */
const SLACK = Number(process.env.VMAE_TIMING_SLACK ?? 1);

/** Runs a worker to its first message of interest. */
function runWorker(workerData, until = (m) => typeof m === 'object') {
  const worker = new Worker(WORKER, { workerData });
  const exited = new Promise((r) => worker.once('exit', r));
  return new Promise((resolve, reject) => {
    worker.on('message', (m) => {
      if (m && m.error) reject(Object.assign(new Error(m.error), { code: m.code }));
      else if (until(m)) resolve({ worker, message: m, exited });
    });
    worker.once('error', reject);
    exited.then((code) => reject(new Error(`worker exited with ${code} first`)));
  });
}

test('four workers load and classify at once, and agree with the main thread', async () => {
  const { model } = tinyModel();
  const seeds = [11, 12, 13, 14, 15, 16];
  const runs = [0, 1, 2, 3].map(() => runWorker({ model, seeds }));
  const clf = await VideoClassifier.load(model, { threads: 1 });
  const shape = [4, 3, 32, 32];
  const mine = [];
  for (const seed of seeds) mine.push((await clf.classify(Tensor.fromBuffer(randomFloats(4 * 3 * 32 * 32, seed), shape))).logits);
  await clf.dispose();
  for (const { message, exited } of await Promise.all(runs)) {
    message.results.forEach((logits, i) => assert.ok(maxAbsDiff(logits, mine[i]) < 1e-5, `seed ${seeds[i]} differs`));
    assert.equal(await exited, 0);
  }
});

test('terminating a worker in the middle of inference, 10 times, never crashes and leaks no threads', async (t) => {
  // In a child: if terminate() crashed, it would take only the child down, with a signal we can see.
  const r = await runChild(`
    const { Worker } = require('node:worker_threads');
    const { threadCount } = require(ROOT + '/test/helpers/child');
    const { slowModel, heavyModel } = require(ROOT + '/test/helpers/models');
    (async () => {
      const models = [heavyModel().model, slowModel().model];
      const lags = [];
      let threads0;
      for (let i = 0; i < 10; i++) {
        const w = new Worker(ROOT + '/test/helpers/worker-classify.js', { workerData: { model: models[i % 2], loop: true } });
        const exited = new Promise((r) => w.once('exit', r));
        w.on('error', (e) => { console.error('worker error', e); process.exitCode = 3; });
        await new Promise((r) => w.on('message', (m) => m === 'running' && r()));
        await new Promise((r) => setTimeout(r, (i * 7) % 40)); // forwards running and queued
        const t0 = performance.now();
        await w.terminate();
        await exited;
        lags.push(performance.now() - t0);
        if (i === 1) threads0 = threadCount(); // after the first of each model: libtorch's pools exist
      }
      // Joined threads are gone (allow libtorch a pool thread or two made late).
      report({ threads0, threads1: threadCount(), lags });
    })();
  `, { timeoutMs: 120_000 });
  assert.equal(r.signal, null, describeChild(r));
  assert.equal(r.code, 0, describeChild(r));
  const o = r.result;
  t.diagnostic(`threads ${o.threads0} -> ${o.threads1}; terminate() took ${o.lags.map((l) => l.toFixed(0)).join(', ')} ms`);
  assert.ok(o.threads1 <= o.threads0 + 2, `threads ${o.threads0} -> ${o.threads1}`);
  // terminate() waits for the running forward (~100 ms at most here), not for the whole queue.
  assert.ok(Math.max(...o.lags) < 2000 * SLACK, `terminate() took up to ${Math.max(...o.lags).toFixed(0)} ms`);
});

test('a worker that calls process.exit() with work pending exits cleanly; the process carries on', async () => {
  const { model } = heavyModel();
  const worker = new Worker(`
    const { parentPort, workerData } = require('node:worker_threads');
    const { VideoClassifier, Tensor } = require(${JSON.stringify(path.join(__dirname, '..'))});
    (async () => {
      const clf = await VideoClassifier.load(workerData.model, { threads: 1, maxQueue: 1000 });
      const x = Tensor.fromBuffer(new Float32Array(4 * 3 * 32 * 32), [4, 3, 32, 32]);
      for (let i = 0; i < 200; i++) clf.classify(x).catch(() => {});
      setTimeout(() => process.exit(7), 20);
    })();
  `, { eval: true, workerData: { model } });
  const code = await new Promise((resolve, reject) => {
    worker.once('exit', resolve);
    worker.once('error', reject);
  });
  assert.equal(code, 7);
  const clf = await VideoClassifier.load(model, { threads: 1 });
  assert.equal((await clf.classify(Tensor.fromBuffer(new Float32Array(4 * 3 * 32 * 32), [4, 3, 32, 32]))).logits.length, 5);
  await clf.dispose();
});

test('a worker whose script throws with work pending dies alone', async () => {
  const { model } = slowModel();
  const worker = new Worker(`
    const { workerData } = require('node:worker_threads');
    const { VideoClassifier, Tensor } = require(${JSON.stringify(path.join(__dirname, '..'))});
    (async () => {
      const clf = await VideoClassifier.load(workerData.model, { threads: 1, maxQueue: 1000 });
      const c = clf.config;
      const shape = [c.numFrames, 3, c.imageSize, c.imageSize];
      const x = Tensor.fromBuffer(new Float32Array(shape.reduce((a, b) => a * b, 1)), shape);
      for (let i = 0; i < 20; i++) clf.classify(x).catch(() => {});
      setTimeout(() => { throw new Error('worker boom'); }, 30);
    })();
  `, { eval: true, workerData: { model } });
  const exited = new Promise((r) => worker.once('exit', r));
  const err = await new Promise((resolve) => worker.once('error', resolve));
  assert.match(err.message, /worker boom/);
  assert.equal(await exited, 1);
});
