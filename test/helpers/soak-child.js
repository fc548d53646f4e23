'use strict';
// The soak run of test/soak.test.js, in its own process so that its RSS, file descriptors and
// child processes are its own. Env: SOAK_REQUESTS (default 10000), SOAK_CONCURRENCY (32),
// SOAK_VIDEO (an mp4 to classify now and then; optional). Prints one JSON line (@@RESULT).
const fs = require('node:fs');
const { monitorEventLoopDelay } = require('node:perf_hooks');

const { VideoClassifier, Tensor } = require('../..');
const { tinyModel, randomFloats, maxAbsDiff } = require('./fixtures');
const { fdCount, rss, childProcesses } = require('./child');

const REQUESTS = Number(process.env.SOAK_REQUESTS ?? 10_000);
const CONCURRENCY = Number(process.env.SOAK_CONCURRENCY ?? 32);
const VIDEO = process.env.SOAK_VIDEO || undefined;

const T = 4;
const S = 32;
const CLIP = T * 3 * S * S;

async function main() {
  const { model } = tinyModel();
  // One plain classifier and one that batches, sharing the traffic.
  const plain = await VideoClassifier.load(model, { threads: 1, maxQueue: 256 });
  const batching = await VideoClassifier.load(model, { threads: 1, maxQueue: 256, maxBatchSize: 8, maxBatchDelayMs: 1 });
  const hasFrames = typeof plain.classifyFrames === 'function';
  const hasVideo = typeof plain.classifyVideo === 'function' && VIDEO !== undefined;

  // Inputs and their expected answers, computed once.
  const clips = [1, 2, 3, 4].map((seed) => randomFloats(CLIP, seed));
  const expected = [];
  for (const c of clips) expected.push((await plain.classify(Tensor.fromBuffer(c, [T, 3, S, S]))).logits);
  const frames = [40, 48].map((w, i) => ({ data: Buffer.alloc(T * 36 * w * 3, 17 + 40 * i), frames: T, height: 36, width: w }));
  const framesExpected = [];
  if (hasFrames) for (const f of frames) framesExpected.push((await plain.classifyFrames(f)).logits);
  let videoExpected;
  let videoBytes;
  if (hasVideo) {
    videoExpected = (await plain.classifyVideo(VIDEO)).logits;
    videoBytes = fs.readFileSync(VIDEO);
  }

  const counts = { tensor: 0, batch: 0, frames: 0, video: 0, aborted: 0, busy: 0 };
  const failures = [];
  let issued = 0;
  let completed = 0;
  let warm;
  const histogram = monitorEventLoopDelay({ resolution: 10 });

  async function one(i) {
    const clf = i % 2 ? batching : plain;
    const k = i % clips.length;
    const kind = hasVideo && i % 500 === 250 ? 'video' : hasFrames && i % 7 === 3 ? 'frames' : i % 11 === 5 ? 'batch' : i % 97 === 13 ? 'aborted' : 'tensor';
    try {
      if (kind === 'tensor') {
        // A fresh buffer each time, as an application would have; checked against the answer.
        const r = await clf.classify(Tensor.fromBuffer(clips[k].slice(), [T, 3, S, S]));
        if (maxAbsDiff(r.logits, expected[k]) > 1e-5) throw new Error(`tensor ${k}: wrong logits`);
      } else if (kind === 'batch') {
        const two = new Float32Array(2 * CLIP);
        two.set(clips[k]);
        two.set(clips[(k + 1) % clips.length], CLIP);
        const [a, b] = await clf.classifyBatch(Tensor.fromBuffer(two, [2, T, 3, S, S]));
        if (maxAbsDiff(a.logits, expected[k]) > 1e-5 || maxAbsDiff(b.logits, expected[(k + 1) % clips.length]) > 1e-5) {
          throw new Error('batch: wrong logits');
        }
      } else if (kind === 'frames') {
        const f = i % 2;
        const r = await clf.classifyFrames(frames[f]);
        if (maxAbsDiff(r.logits, framesExpected[f]) > 1e-5) throw new Error('frames: wrong logits');
      } else if (kind === 'video') {
        const r = await clf.classifyVideo(i % 1000 === 250 ? VIDEO : videoBytes);
        if (maxAbsDiff(r.logits, videoExpected) > 1e-4) throw new Error('video: wrong logits');
      } else {
        // Cancellation under load: a request aborted while queued or running.
        const c = new AbortController();
        const p = clf.classify(Tensor.fromBuffer(clips[k], [T, 3, S, S]), { signal: c.signal });
        setTimeout(() => c.abort(), i % 3);
        await p.then(() => undefined, (e) => {
          if (e.code !== 'VMAE_ABORTED') throw e;
        });
      }
      counts[kind]++;
    } catch (err) {
      if (err.code === 'VMAE_BUSY') counts.busy++;
      else failures.push(`#${i} ${kind}: ${err.code ?? ''} ${err.message}`);
    }
    completed++;
  }

  const started = performance.now();
  let warmAt;
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (issued < REQUESTS) {
      const i = issued++;
      await one(i);
      if (completed === Math.floor(REQUESTS / 10) && !warm) {
        // Warmed up: the allocator's pools, libtorch's caches and Node's buffers are at size.
        warm = { rss: rss(), fds: fdCount() };
        warmAt = performance.now();
        histogram.enable();
      }
    }
  }));
  histogram.disable();
  const elapsed = performance.now() - started;
  await new Promise((r) => setTimeout(r, 100));
  if (global.gc) global.gc();
  const end = { rss: rss(), fds: fdCount() };
  const children = childProcesses();
  await plain.dispose();
  await batching.dispose();
  return {
    requests: REQUESTS,
    concurrency: CONCURRENCY,
    elapsedMs: elapsed,
    afterWarmMs: performance.now() - warmAt,
    counts,
    failures: failures.slice(0, 20),
    failureCount: failures.length,
    rssWarm: warm.rss,
    rssEnd: end.rss,
    fdsWarm: warm.fds,
    fdsEnd: end.fds,
    children,
    loopDelayP99Ms: histogram.percentile(99) / 1e6,
    loopDelayMaxMs: histogram.max / 1e6,
    hasFrames,
    hasVideo,
  };
}

main().then(
  (r) => process.stdout.write('@@RESULT ' + JSON.stringify(r) + '\n'),
  (err) => {
    console.error(err);
    process.exitCode = 1;
  },
);
