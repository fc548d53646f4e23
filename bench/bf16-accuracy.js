#!/usr/bin/env node
'use strict';
// bfloat16 accuracy on the demo model's held-out test clips (docs/DEMO-MODEL.md: base seed 0, 40
// per class, rendered once into bench/work/demo-heldout/ with scripts/gen_motion.py): top-1
// agreement of dtype 'bfloat16' with 'float32', accuracy of each against the true labels, and the
// largest logit difference.   node bench/bf16-accuracy.js [--per-class N] [--dtype bfloat16]
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const { VideoClassifier, runtimeInfo } = require('..');

const arg = (name, dflt) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : dflt;
};
const perClass = Number(arg("--per-class", "40"));
const dtype = arg('--dtype', 'bfloat16');
const dir = path.join(__dirname, 'work', `demo-heldout-${perClass}`);
const python = process.env.VIDEOMAE_PYTHON || '/usr/bin/python3';

if (!fs.existsSync(path.join(dir, 'labels.json'))) {
  const r = spawnSync(python, ['scripts/gen_motion.py', '--out', dir, '--seed', '0', '--per-class', String(perClass), '--mp4'],
    { cwd: path.join(__dirname, '..'), stdio: 'inherit' });
  if (r.status !== 0) throw new Error('gen_motion.py failed');
}

(async () => {
  const labels = JSON.parse(fs.readFileSync(path.join(dir, 'labels.json'), 'utf8'));
  const files = Object.keys(labels).sort();
  const f32 = await VideoClassifier.load(undefined, { threads: 2 });
  const low = await VideoClassifier.load(undefined, { threads: 2, dtype });
  const n = f32.config.numLabels;
  let agree = 0;
  let right32 = 0;
  let rightLow = 0;
  let maxDiff = 0;
  for (const file of files) {
    const full = path.join(dir, file);
    const [a, b] = await Promise.all([f32.classifyVideo(full, { topK: n }), low.classifyVideo(full, { topK: n })]);
    const top = (r) => r.predictions[0].label;
    if (top(a) === top(b)) agree++;
    if (top(a) === labels[file]) right32++;
    if (top(b) === labels[file]) rightLow++;
    for (let i = 0; i < n; i++) maxDiff = Math.max(maxDiff, Math.abs(a.logits[i] - b.logits[i]));
  }
  const out = {
    clips: files.length, dtype, top1_agreement: agree / files.length, accuracy_float32: right32 / files.length,
    [`accuracy_${dtype}`]: rightLow / files.length, max_logit_diff: maxDiff, optimizations: low.optimizations,
    libtorch: runtimeInfo().libtorchVersion, cpu: os.cpus()[0]?.model,
  };
  console.log(JSON.stringify(out, null, 2));
  await Promise.all([f32.dispose(), low.dispose()]);
})();
