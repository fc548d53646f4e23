'use strict';
// The embedded demo model, end to end: clips rendered with evaluation seeds that training never
// used, written as H.264 mp4 files, decoded by ffmpeg, preprocessed natively and classified in Node.
// The accuracy is computed here, from the clips' true classes; the Python pipeline (ffmpeg + PIL +
// torch.jit, test/tools/python_pipeline.py) classifies the same files independently.
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { after, before, test } = require('node:test');

const { VideoClassifier } = require('..');
const { python } = require('./helpers/fixtures');

// scripts/gen_motion.py: seeds 0..999 are for evaluation; training uses 1000 and up.
const SEED = 321;
const PER_CLASS = 12;

let dir;
let files;
let truth;

before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmae-demo-'));
  python(['scripts/gen_motion.py', '--out', dir, '--seed', String(SEED), '--per-class', String(PER_CLASS), '--mp4']);
  truth = JSON.parse(fs.readFileSync(path.join(dir, 'labels.json'), 'utf8'));
  files = Object.keys(truth).sort().map((f) => path.join(dir, path.basename(f)));
});

after(() => fs.rmSync(dir, { recursive: true, force: true }));

/** fn over items, four in flight at a time (decoding overlaps inference without exceeding maxQueue). */
async function mapFour(items, fn) {
  const out = new Array(items.length);
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < items.length; i = next++) out[i] = await fn(items[i]);
  };
  await Promise.all([worker(), worker(), worker(), worker()]);
  return out;
}

test('the demo model loads by default and says what it is', async () => {
  const clf = await VideoClassifier.load();
  try {
    assert.match(clf.model.name, /demo/i);
    assert.match(clf.model.description, /synthetic/i);
    assert.ok(clf.config.numLabels >= 6 && clf.config.numLabels <= 10);
    assert.ok(fs.statSync(clf.path).size < 8 * 1024 * 1024, 'the shipped model stays small');
  } finally {
    await clf.dispose();
  }
});

test('classifies unseen mp4 clips with >= 95% accuracy and agrees with the Python pipeline on >= 99%', async (t) => {
  const clf = await VideoClassifier.load();
  let node;
  try {
    node = await mapFour(files, (f) => clf.classifyVideo(f, { topK: 1 }));
  } finally {
    await clf.dispose();
  }
  const correct = node.filter((r, i) => r.predictions[0].label === truth[path.basename(files[i])]).length;
  const accuracy = correct / files.length;

  const py = JSON.parse(python(['test/tools/python_pipeline.py', '--model', clf.path, ...files], { maxBuffer: 64 << 20 }));
  assert.equal(py.length, files.length);
  const byFile = new Map(py.map((r) => [path.resolve(r.file), r]));
  const agree = files.filter((f, i) => byFile.get(path.resolve(f)).label === node[i].predictions[0].label).length;
  const agreement = agree / files.length;

  t.diagnostic(`${files.length} clips (${PER_CLASS} per class, seed ${SEED}): accuracy ${(100 * accuracy).toFixed(1)}% ` +
    `(${correct}/${files.length}), Node/Python agreement ${(100 * agreement).toFixed(1)}% (${agree}/${files.length})`);
  assert.ok(accuracy >= 0.95, `accuracy ${accuracy}`);
  assert.ok(agreement >= 0.99, `agreement ${agreement}`);
});

test('embeddings mean something: held-out clips sit closer (cosine) to their own motion class than to any other', async (t) => {
  const clf = await VideoClassifier.load();
  let emb;
  try {
    emb = await mapFour(files, (f) => clf.embed(f, { normalize: true }));
  } finally {
    await clf.dispose();
  }
  const cls = files.map((f) => truth[path.basename(f)]);
  const classes = [...new Set(cls)];
  const cos = (a, b) => a.reduce((s, v, k) => s + v * b[k], 0); // unit vectors
  let nnCorrect = 0;
  let closer = 0;
  for (let i = 0; i < files.length; i++) {
    let best = -Infinity;
    let bestJ = -1;
    const byClass = new Map(classes.map((c) => [c, []]));
    for (let j = 0; j < files.length; j++) {
      if (j === i) continue;
      const s = cos(emb[i], emb[j]);
      byClass.get(cls[j]).push(s);
      if (s > best) [best, bestJ] = [s, j];
    }
    if (cls[bestJ] === cls[i]) nnCorrect++;
    const meanOf = (c) => byClass.get(c).reduce((a, b) => a + b, 0) / byClass.get(c).length;
    const own = meanOf(cls[i]);
    if (classes.every((c) => c === cls[i] || meanOf(c) < own)) closer++;
  }
  const nn = nnCorrect / files.length;
  const frac = closer / files.length;
  t.diagnostic(`${files.length} held-out clips (seed ${SEED}): leave-one-out 1-NN accuracy (cosine) ${(100 * nn).toFixed(1)}% ` +
    `(${nnCorrect}/${files.length}); closer on average to their own class than to every other class: ` +
    `${(100 * frac).toFixed(1)}% (${closer}/${files.length})`);
  assert.ok(nn >= 0.9, `1-NN accuracy ${nn}`);
  assert.ok(frac >= 0.9, `own-class fraction ${frac}`);
});
