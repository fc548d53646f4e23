'use strict';
// embed() and embedBatch(): parity with the real transformers (checkpoints it saved itself, both key
// layouts, mean pooling on and off, VideoMAEForVideoClassification and VideoMAEModel), with the
// float64 reference, over tensors, raw frames and videos; old (logits-only) files; encoder-only
// models; bad input; and `videomae embed`.
const assert = require('node:assert/strict');
const { execFile } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { Readable } = require('node:stream');
const { after, before, test } = require('node:test');

const { VideoClassifier, Tensor, readVideoClips, cosineSimilarity } = require('..');
const { makeModel, python, randomFloats, maxAbsDiff, ROOT } = require('./helpers/fixtures');
const { HF_SKIP, VARIANTS, hfModels } = require('./helpers/hf');

const TOL = 1e-4;
const CLIP = [4, 3, 32, 32];
const EXAMPLE = path.join(ROOT, 'examples', 'rotating.mp4');

let dir;
before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmae-embed-'));
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

/** Rejects with a VideoMAEError of `code` whose message matches `re`. */
async function rejectsWith(promise, code, re) {
  await assert.rejects(promise, (err) => {
    assert.equal(err.name, 'VideoMAEError', err.stack);
    assert.equal(err.code, code, err.message);
    if (re) assert.match(err.message, re);
    return true;
  });
}

/**
 * The embeddings [B*D] test/tools/reference.py computes for `input` (float32, `shape`) with each
 * checkpoint, in one Python process.
 */
function referenceEmbeddings(checkpoints, input, shape) {
  const inFile = path.join(dir, 'x.f32');
  fs.writeFileSync(inFile, Buffer.from(input.buffer, input.byteOffset, input.byteLength));
  const out = JSON.parse(python(['-c', 'import json, sys; import numpy as np; sys.path.insert(0, "test/tools"); import reference\n' +
    'x = np.fromfile(sys.argv[1], "<f4").reshape([int(s) for s in sys.argv[2].split(",")])\n' +
    'print(json.dumps([reference.forward_all(reference.load_reference(c), x)[1].tolist() for c in sys.argv[3:]]))',
  inFile, shape.join(','), ...checkpoints], { maxBuffer: 1 << 26 }));
  return out.map((e) => Float64Array.from(e.flat()));
}

function norm(v) {
  let s = 0;
  for (const x of v) s += x * x;
  return Math.sqrt(s);
}

function mean(rows) {
  return Float64Array.from(rows[0], (_, i) => rows.reduce((s, r) => s + r[i], 0) / rows.length);
}

test('embed() matches transformers 5.x on checkpoints it saved: pooled features / last_hidden_state.mean(1)',
  { skip: HF_SKIP }, async (t) => {
    const { variants } = hfModels();
    const report = [];
    for (const name of VARIANTS) {
      const v = variants[name];
      const clf = await VideoClassifier.load(v.model, { threads: 1 });
      try {
        const want = v.expected.embedding.flat();
        assert.equal(clf.config.embeddingSize, 32);
        const batch = await clf.embedBatch(Tensor.fromBuffer(v.input, [2, ...CLIP]));
        const one = await clf.embed(Tensor.fromBuffer(v.input.subarray(0, v.input.length / 2), CLIP));
        const dEmb = maxAbsDiff([...batch[0], ...batch[1]], want);
        assert.ok(dEmb < TOL, `${name}: embedding differs from transformers by ${dEmb}`);
        assert.ok(maxAbsDiff(one, batch[0]) < 1e-5);
        let line = `${name}: embedding ${dEmb.toExponential(2)}`;
        if (name.startsWith('cls')) {
          const rs = await clf.classifyBatch(Tensor.fromBuffer(v.input, [2, ...CLIP]), { topK: 1 });
          const dLog = maxAbsDiff([...rs[0].logits, ...rs[1].logits], v.expected.logits.flat());
          assert.ok(dLog < TOL, `${name}: logits differ from transformers by ${dLog}`);
          line += `, logits ${dLog.toExponential(2)}`;
        } else {
          assert.equal(clf.config.numLabels, 0);
          assert.deepEqual(clf.config.labels, []);
          await rejectsWith(clf.classify(Tensor.fromBuffer(v.input.subarray(0, v.input.length / 2), CLIP)),
            'VMAE_INVALID_INPUT', /no classification head.*use embed\(\)/);
        }
        report.push(line);
      } finally {
        await clf.dispose();
      }
    }
    t.diagnostic(`max abs diff vs transformers ${variants[VARIANTS[0]].expected.transformers} (float64): ${report.join('; ')}`);
  });

test('a 4.x-layout checkpoint keeps its q/v biases in our export, which transformers 5.x\'s own loading zeroes',
  { skip: HF_SKIP }, async (t) => {
    const { variants } = hfModels();
    for (const name of VARIANTS.filter((n) => n.includes('-v4-'))) {
      const v = variants[name];
      // transformers 5.x from_pretrained() of this folder: q_bias/v_bias unexpected, query/value.bias missing -> 0
      assert.equal(v.expected.fromPretrainedQBiasAbsMax, 0, `${name}: transformers kept the biases this time`);
      const clf = await VideoClassifier.load(v.model, { threads: 1 });
      try {
        const got = (await clf.embedBatch(Tensor.fromBuffer(v.input, [2, ...CLIP]))).flatMap((r) => [...r]);
        const keep = maxAbsDiff(got, v.expected.embedding.flat());
        const dropped = maxAbsDiff(got, v.expected.fromPretrained.embedding.flat());
        t.diagnostic(`${name}: ours vs transformers with the biases ${keep.toExponential(2)}, ` +
          `vs transformers' from_pretrained (biases zeroed) ${dropped.toExponential(2)}`);
        assert.ok(keep < TOL);
        assert.ok(dropped > 100 * TOL, `${name}: dropping the biases should change the embedding (${dropped})`);
      } finally {
        await clf.dispose();
      }
    }
  });

test('embed() equals the float64 reference for classification and encoder-only checkpoints of every layout', async (t) => {
  const cases = {
    'cls v4 mean': ['--layout', 'v4'],
    'cls v5 token': ['--layout', 'v5', '--no-mean-pooling', '--layer-norm-eps', '1e-6'],
    'enc v5 mean': ['--layout', 'v5', '--encoder-only'],
    'enc v4 layernorm': ['--layout', 'v4', '--encoder-only', '--no-mean-pooling'],
  };
  const x = randomFloats(3 * 4 * 3 * 32 * 32, 11);
  const report = [];
  const models = Object.values(cases).map((args) => makeModel(['--seed', '21', '--weight-std', '0.2', '--preprocessor', ...args]));
  const wants = referenceEmbeddings(models.map((m) => m.checkpoint), x, [3, ...CLIP]);
  for (const [k, name] of Object.keys(cases).entries()) {
    const want = { embedding: wants[k] };
    const clf = await VideoClassifier.load(models[k].model, { threads: 1, maxBatchSize: 4 });
    try {
      const rows = await clf.embedBatch(Tensor.fromBuffer(x, [3, ...CLIP]));
      const d = maxAbsDiff(rows.flatMap((r) => [...r]), want.embedding);
      assert.ok(d < TOL, `${name}: ${d}`);
      // single clips, queued together so that the thread batches them: each gets its own row
      const singles = await Promise.all([0, 1, 2].map((i) =>
        clf.embed(Tensor.fromBuffer(x.subarray(i * 4 * 3 * 32 * 32, (i + 1) * 4 * 3 * 32 * 32), CLIP))));
      assert.ok(maxAbsDiff(singles.flatMap((r) => [...r]), want.embedding) < TOL);
      report.push(`${name} ${d.toExponential(2)}`);
    } finally {
      await clf.dispose();
    }
  }
  t.diagnostic(`max abs diff vs test/tools/reference.py: ${report.join(', ')}`);
});

test('normalize: unit length, the raw vector scaled; cosineSimilarity agrees with the dot product', async () => {
  const clf = await VideoClassifier.load(undefined, { threads: 1 });
  try {
    const raw = await clf.embed(EXAMPLE);
    const unit = await clf.embed(EXAMPLE, { normalize: true });
    assert.equal(raw.length, clf.config.embeddingSize);
    assert.equal(clf.config.embeddingSize, clf.config.hiddenSize);
    assert.ok(Math.abs(norm(unit) - 1) < 1e-6);
    const n = norm(raw);
    assert.ok(maxAbsDiff(unit, Array.from(raw, (v) => v / n)) < 1e-6);
    const other = await clf.embed(path.join(ROOT, 'examples', 'flashing.mp4'), { normalize: true });
    const dot = unit.reduce((s, v, i) => s + v * other[i], 0);
    assert.ok(Math.abs(cosineSimilarity(raw, other) - dot) < 1e-6);
  } finally {
    await clf.dispose();
  }
});

test('a video embeds as the mean of its clips x crops views; path, Buffer, Readable and raw frames agree', async () => {
  const clf = await VideoClassifier.load(undefined, { threads: 1 });
  try {
    const { numFrames } = clf.config;
    const video = await clf.embed(EXAMPLE, { clips: 2, crops: 2 });
    // the same views, built step by step: decode the clips, preprocess each with 2 crops, embed
    const { clips } = await readVideoClips(EXAMPLE, { numFrames, clips: 2 });
    const views = [];
    for (const raw of clips) {
      const px = await clf.preprocess(raw, { crops: 2 });
      views.push(...await clf.embedBatch(px)); // [crops, T, 3, S, S]: one row per crop
    }
    assert.equal(views.length, 4);
    assert.ok(maxAbsDiff(video, mean(views)) < 1e-5);
    // one clip, center crop: raw frames == their preprocessed tensor == the video with defaults
    const one = await clf.embed(EXAMPLE);
    const [first] = (await readVideoClips(EXAMPLE, { numFrames })).clips;
    assert.ok(maxAbsDiff(await clf.embed(first), one) < 1e-5);
    assert.ok(maxAbsDiff(await clf.embed(await clf.preprocess(first)), one) < 1e-5);
    assert.ok(maxAbsDiff(await clf.embed(fs.readFileSync(EXAMPLE)), one) === 0);
    assert.ok(maxAbsDiff(await clf.embed(Readable.from([fs.readFileSync(EXAMPLE)])), one) === 0);
  } finally {
    await clf.dispose();
  }
});

test('an encoder-only model has no labels and refuses every classify call with VMAE_INVALID_INPUT', async () => {
  const { model } = makeModel(['--seed', '22', '--preprocessor', '--encoder-only']);
  const clf = await VideoClassifier.load(model, { threads: 1 });
  try {
    assert.equal(clf.config.numLabels, 0);
    assert.deepEqual(clf.config.labels, []);
    assert.equal(clf.config.embeddingSize, 32);
    const x = Tensor.fromBuffer(randomFloats(4 * 3 * 32 * 32), CLIP);
    const frames = { data: new Uint8Array(4 * 40 * 40 * 3), frames: 4, height: 40, width: 40 };
    const msg = /no classification head.*use embed\(\)/;
    await rejectsWith(clf.classify(x), 'VMAE_INVALID_INPUT', msg);
    await rejectsWith(clf.classifyBatch(Tensor.fromBuffer(randomFloats(4 * 3 * 32 * 32), [1, ...CLIP])), 'VMAE_INVALID_INPUT', msg);
    await rejectsWith(clf.classifyFrames(frames), 'VMAE_INVALID_INPUT', msg);
    await rejectsWith(clf.classifyVideo(EXAMPLE), 'VMAE_INVALID_INPUT', msg);
    assert.equal((await clf.embed(x)).length, 32);
    assert.equal((await clf.embed(frames)).length, 32);
  } finally {
    await clf.dispose();
  }
});

test('a file exported before embeddings still loads and classifies; embed() rejects and says to re-export', async () => {
  const { model } = makeModel(['--seed', '23', '--preprocessor']);
  const old = path.join(dir, 'old.pt');
  python(['test/tools/make_v1_model.py', '--model', model, '--output', old]);
  const x = Tensor.fromBuffer(randomFloats(4 * 3 * 32 * 32, 5), CLIP);
  const [clfOld, clfNew] = await Promise.all([VideoClassifier.load(old, { threads: 1 }), VideoClassifier.load(model, { threads: 1 })]);
  try {
    assert.equal(clfOld.config.embeddingSize, null);
    const [a, b] = await Promise.all([clfOld.classify(x), clfNew.classify(x)]);
    assert.ok(maxAbsDiff(a.logits, b.logits) < 1e-6);
    const [va, vb] = await Promise.all([clfOld.classifyVideo(EXAMPLE), clfNew.classifyVideo(EXAMPLE)]);
    assert.ok(maxAbsDiff(va.logits, vb.logits) < 1e-6);
    const re = /exported before embeddings.*Re-export/;
    await rejectsWith(clfOld.embed(x), 'VMAE_INVALID_INPUT', re);
    await rejectsWith(clfOld.embedBatch(Tensor.fromBuffer(randomFloats(4 * 3 * 32 * 32, 5), [1, ...CLIP])), 'VMAE_INVALID_INPUT', re);
    await rejectsWith(clfOld.embed(EXAMPLE), 'VMAE_INVALID_INPUT', re);
  } finally {
    await Promise.all([clfOld.dispose(), clfNew.dispose()]);
  }
});

test('bad input: every rejection carries a code', async () => {
  const { model } = makeModel(['--seed', '24', '--preprocessor', '--zero-embedding']);
  const clf = await VideoClassifier.load(model, { threads: 1 });
  const x = () => Tensor.fromBuffer(randomFloats(4 * 3 * 32 * 32, 9), CLIP);
  try {
    // a zero vector: returned as is, but it cannot be normalized
    const zero = await clf.embed(x());
    assert.ok(zero.every((v) => v === 0));
    await rejectsWith(clf.embed(x(), { normalize: true }), 'VMAE_RUNTIME', /norm is 0.*without normalize/);
    await rejectsWith(clf.embedBatch(Tensor.fromBuffer(randomFloats(2 * 4 * 3 * 32 * 32), [2, ...CLIP]), { normalize: true }),
      'VMAE_RUNTIME', /norm is 0/);
    assert.equal((await clf.classify(x())).predictions.length, 5); // the logits are still fine
    // options
    await rejectsWith(clf.embed(x(), { normalize: 'yes' }), 'VMAE_INVALID_INPUT', /boolean for normalize/);
    await rejectsWith(clf.embed(x(), null), 'VMAE_INVALID_INPUT', /options object/);
    await rejectsWith(clf.embed(x(), { clips: 2 }), 'VMAE_INVALID_INPUT', /clips applies to video inputs/);
    // bad views
    for (const [o, re] of [[{ clips: 0 }, /clips/], [{ crops: 9 }, /crops/], [{ clips: 1.5 }, /clips/],
      [{ sampleRate: -1 }, /sampleRate/], [{ limits: { maxFrames: -1 } }, /maxFrames/]]) {
      await rejectsWith(clf.embed(EXAMPLE, o), 'VMAE_INVALID_INPUT', re);
    }
    // inputs
    await rejectsWith(clf.embed(42), 'VMAE_INVALID_INPUT', /Tensor, raw frames .* or a video/);
    await rejectsWith(clf.embed(null), 'VMAE_INVALID_INPUT', /Tensor, raw frames/);
    await rejectsWith(clf.embed({ data: new Uint8Array(10), frames: 1, height: 1, width: 1 }), 'VMAE_INVALID_INPUT', /bytes/);
    await rejectsWith(clf.embed(path.join(dir, 'missing.mp4')), 'VMAE_INVALID_INPUT', /no such file/);
    await rejectsWith(clf.embed(Buffer.from('not a video at all')), 'VMAE_DECODE_FAILED');
    await rejectsWith(clf.embedBatch(x()), 'VMAE_INVALID_INPUT', /shape/);
    await rejectsWith(clf.embed(Tensor.fromBuffer(new Float32Array(2 * 3 * 32 * 32), [2, 3, 32, 32])), 'VMAE_INVALID_INPUT', /frames/);
    await rejectsWith(clf.embed(Tensor.fromBuffer(new Uint8Array(4 * 3 * 32 * 32), CLIP)), 'VMAE_INVALID_INPUT', /uint8/);
    const nan = randomFloats(4 * 3 * 32 * 32);
    nan[7] = NaN;
    await rejectsWith(clf.embed(Tensor.fromBuffer(nan, CLIP)), 'VMAE_INVALID_INPUT', /NaN/);
    const ac = new AbortController();
    ac.abort();
    await rejectsWith(clf.embed(x(), { signal: ac.signal }), 'VMAE_ABORTED');
    await rejectsWith(clf.embed(EXAMPLE, { signal: ac.signal }), 'VMAE_ABORTED');
  } finally {
    await clf.dispose();
  }
  await rejectsWith(clf.embed(x()), 'VMAE_DISPOSED');
  await rejectsWith(clf.embedBatch(Tensor.fromBuffer(randomFloats(4 * 3 * 32 * 32), [1, ...CLIP])), 'VMAE_DISPOSED');
  assert.throws(() => cosineSimilarity([1, 2], [1]), (e) => e.code === 'VMAE_INVALID_INPUT');
  assert.throws(() => cosineSimilarity([0, 0], [1, 1]), (e) => e.code === 'VMAE_INVALID_INPUT');
});

/** Runs `node lib/cli.js`; resolves with { code, stdout, stderr }. */
function cli(args) {
  return new Promise((resolve) => {
    execFile(process.execPath, [path.join(ROOT, 'lib', 'cli.js'), ...args], { cwd: ROOT, maxBuffer: 1 << 24, timeout: 120_000 },
      (err, stdout, stderr) => resolve({ code: err ? err.code : 0, stdout, stderr }));
  });
}

test('videomae embed --npy writes float32 [N, D] and a sidecar in row order; --json; failures reported', async () => {
  const files = ['rotating', 'flashing', 'static'].map((c) => path.join(ROOT, 'examples', `${c}.mp4`));
  const bad = path.join(dir, 'bad.mp4');
  fs.writeFileSync(bad, 'not a video');
  const npy = path.join(dir, 'index.npy');
  const r = await cli(['embed', '--normalize', '--threads', '1', '--npy', npy, files[0], bad, files[1], files[2]]);
  assert.equal(r.code, 1, r.stderr); // one file failed
  assert.match(r.stderr, /bad\.mp4: failed \[VMAE_DECODE_FAILED\]/);
  const side = JSON.parse(fs.readFileSync(path.join(dir, 'index.json'), 'utf8'));
  assert.deepEqual(side.files, [files[0], files[1], files[2]]);
  assert.deepEqual(side.shape, [3, 128]);
  assert.equal(side.normalized, true);
  assert.deepEqual(side.failed.map((f) => [f.file, f.code]), [[bad, 'VMAE_DECODE_FAILED']]);
  // read back with numpy
  const back = JSON.parse(python(['-c', 'import json,sys,numpy as np; a=np.load(sys.argv[1]); ' +
    'print(json.dumps({"dtype": str(a.dtype), "shape": a.shape, "rows": a.astype(float).tolist()}))', npy]));
  assert.equal(back.dtype, 'float32');
  assert.deepEqual(back.shape, [3, 128]);
  const clf = await VideoClassifier.load(undefined, { threads: 1 });
  try {
    for (let i = 0; i < 3; i++) assert.ok(maxAbsDiff(back.rows[i], await clf.embed(files[i], { normalize: true })) < 1e-6);
    const j = await cli(['embed', '--json', '--threads', '1', '--clips', '2', files[2]]);
    assert.equal(j.code, 0, j.stderr);
    const [entry] = JSON.parse(j.stdout);
    assert.equal(entry.file, files[2]);
    assert.ok(maxAbsDiff(entry.embedding, await clf.embed(files[2], { clips: 2 })) < 1e-6);
  } finally {
    await clf.dispose();
  }
  const text = await cli(['embed', '--threads', '1', files[0]]);
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, /rotating\.mp4 {2}D=128 {2}norm=\d/);
  const both = await cli(['embed', '--json', '--npy', npy, files[0]]);
  assert.equal(both.code, 1);
  assert.match(both.stderr, /\[VMAE_INVALID_INPUT\] Expected one of --json and --npy/);
  const badName = await cli(['embed', '--npy', path.join(dir, 'out.bin'), files[0]]);
  assert.match(badName.stderr, /ending in \.npy/);
});
