#!/usr/bin/env node
'use strict';
// classifyVideo on a long HD video, where decoding dominates: generates a 60 s 1280x720 30 fps
// testsrc2 clip (libx264 ultrafast) in bench/work/ once, then prints the timings of the demo
// model at 1 and 5 clips. `node bench/video-decode.js [--seconds 60]`
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const { VideoClassifier } = require('..');

const secondsArg = process.argv.indexOf('--seconds');
const seconds = secondsArg > 0 ? Number(process.argv[secondsArg + 1]) : 60;
const file = path.join(__dirname, 'work', `testsrc2-720p-${seconds}s.mp4`);

if (!fs.existsSync(file)) {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const r = spawnSync('ffmpeg', ['-v', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc2=size=1280x720:rate=30', '-t', String(seconds),
    '-pix_fmt', 'yuv420p', '-c:v', 'libx264', '-preset', 'ultrafast', file], { stdio: 'inherit' });
  if (r.status !== 0) throw new Error('ffmpeg could not generate the test video');
}

(async () => {
  const clf = await VideoClassifier.load();
  for (const clips of [1, 5]) {
    const t0 = performance.now();
    const { timings } = await clf.classifyVideo(file, { clips });
    const f = (ms) => ms.toFixed(0);
    console.log(`${seconds} s 720p, ${clips} clip(s): ${f(performance.now() - t0)} ms total; ` +
      `decode ${f(timings.decodeMs)}, preprocess ${f(timings.preprocessMs)}, inference ${f(timings.inferenceMs)} ms`);
  }
  await clf.dispose();
})();
