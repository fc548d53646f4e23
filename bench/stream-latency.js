#!/usr/bin/env node
'use strict';
// classifyStream latency on a live push source: frames are pushed at their real rate (a
// FrameStream fed by a drift-corrected timer, mode 'latest'), and each result's latencyMs (result
// time − arrival of the window's last frame) is collected. Printed next to the model's plain
// forward time (classify() of one preprocessed clip), for the demo model and a ViT-B-size random
// model (hidden 768, 12 layers, 12 heads, 16 frames of 224², made with test/helpers/fixtures.js).
//
//   node bench/stream-latency.js [--seconds 30] [--vitb-seconds 90] [--fps 30] [--size 640x360]
//                                [--stride 0.5] [--threads 1] [--only demo|vitb]
//
// --threads defaults to 1: on a small shared machine, intra-op threads that outnumber the free
// cores make every forward wait for the slowest one.
const os = require('node:os');

const { VideoClassifier, Tensor } = require('..');
const { percentile } = require('./lib/stats');

function arg(name, dflt) {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : dflt;
}
const seconds = Number(arg('seconds', '30'));
const fps = Number(arg('fps', '30'));
const [width, height] = arg('size', '640x360').split('x').map(Number);
const strideSec = Number(arg('stride', '0.5'));
const vitbSeconds = Number(arg('vitb-seconds', '90'));
const threads = Number(arg('threads', '1'));
const only = arg('only', undefined);

/** A few distinct frames (a bar sweeping over a gradient), cycled: the content does not matter for latency. */
function frames(count) {
  const out = [];
  for (let f = 0; f < count; f++) {
    const data = new Uint8Array(width * height * 3);
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const p = (y * width + x) * 3;
        const bar = Math.abs(x - ((f * width) / count)) < width / 16;
        data[p] = bar ? 240 : (x * 255) / width;
        data[p + 1] = bar ? 200 : (y * 255) / height;
        data[p + 2] = 90;
      }
    }
    out.push(data);
  }
  return out;
}

const ms = (v) => (v === undefined ? '-' : `${v.toFixed(1)} ms`);

async function forwardTimes(clf, n) {
  const { numFrames: t, imageSize: s } = clf.config;
  const x = Tensor.fromBuffer(new Float32Array(t * 3 * s * s), [1, t, 3, s, s]);
  const out = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await clf.classify(x);
    out.push(performance.now() - t0);
  }
  return out;
}

async function preprocessTimes(clf, frame, n) {
  const out = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await clf.preprocess({ data: frame, frames: 1, height, width });
    out.push(performance.now() - t0);
  }
  return out;
}

async function run(name, modelPath, forwards, seconds) {
  const clf = await VideoClassifier.load(modelPath, { threads });
  const fwd = await forwardTimes(clf, forwards);
  const pics = frames(16);
  const pre = await preprocessTimes(clf, pics[0], 20);
  const s = clf.createFrameStream({ width, height, fps });
  const it = clf.classifyStream(s, { strideSec, mode: 'latest', topK: 1 });
  const lat = [];
  let dropped = 0;
  const consume = (async () => {
    for await (const r of it) {
      lat.push(r.latencyMs);
      dropped += r.dropped;
    }
  })();
  const total = Math.round(seconds * fps);
  const start = performance.now();
  for (let i = 0; i < total; i++) {
    const due = start + (i * 1000) / fps;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    s.push(pics[i % pics.length]);
  }
  s.end();
  await consume;
  await clf.dispose();
  // The first windows include warm-up of the stream path: skip the first 2.
  const steady = lat.slice(2);
  console.log(`${name.padEnd(6)} ${clf.config.numFrames}x${clf.config.imageSize}²  forward p50 ${ms(percentile(fwd, 50))}` +
    ` p99 ${ms(percentile(fwd, 99))}, preprocess 1 frame p50 ${ms(percentile(pre, 50))} | stream latency p50 ${ms(percentile(steady, 50))} p99 ${ms(percentile(steady, 99))}` +
    ` max ${ms(Math.max(...steady))} over ${steady.length} results, ${dropped} windows dropped`);
}

(async () => {
  console.log(`CPU: ${os.cpus()[0].model} (${os.cpus().length} logical cores), load average ${os.loadavg().map((v) => v.toFixed(1)).join(' ')}`);
  console.log(`live push source: ${width}x${height} rgb24 at ${fps} fps (demo ${seconds} s, ViT-B ${vitbSeconds} s), a window every ${strideSec} s, ` +
    `sampleRate 4, mode 'latest', ${threads} threads`);
  if (only !== 'vitb') await run('demo', undefined, 20, seconds);
  if (only !== 'demo') {
    const { makeModel } = require('../test/helpers/fixtures');
    const { model } = makeModel(['--seed', '0', '--preprocessor', '--hidden', '768', '--layers', '12', '--heads', '12',
      '--intermediate', '3072', '--frames', '16', '--image-size', '224', '--labels', '400']);
    await run('vit-b', model, 5, vitbSeconds);
  }
})();
