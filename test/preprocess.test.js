'use strict';
// clf.preprocess / clf.classifyFrames: native resize + crop + normalize against the PIL reference of
// Hugging Face's VideoMAEImageProcessor (test/tools/pil_preprocess.py), and argument validation.
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { test, before, after } = require('node:test');

const { VideoClassifier, Tensor } = require('../lib');
const { python, tmpDir, model224, syntheticFrames, maxAbsDiff } = require('./helpers/video');

let clf;
let dir;
before(async () => {
  dir = tmpDir();
  clf = await VideoClassifier.load(model224().model, { threads: 2 });
});
after(() => clf?.dispose());

/** PIL's uint8 output for frames [n,h,w,3]: [n,S,S,3], or [C,n,S,S,3] with crops. */
function pilReference(data, n, h, w, crops) {
  const input = path.join(dir, `in-${n}-${h}-${w}.u8`);
  const output = path.join(dir, `out-${n}-${h}-${w}-${crops ?? 0}.u8`);
  fs.writeFileSync(input, data);
  const { shortestEdge, cropSize } = clf.config.preprocessing;
  python(['test/tools/pil_preprocess.py', '--input', input, '--shape', `${n},${h},${w},3`,
    '--shortest-edge', String(shortestEdge), '--crop-size', String(cropSize), '--output', output,
    ...(crops ? ['--crops', String(crops)] : [])]);
  return new Uint8Array(fs.readFileSync(output));
}

/** uint8 levels [C,n,S,S,3] recovered from normalized pixel values [C,n,3,S,S]: x * std + mean, / rescale. */
function levels(tensor, crops, n) {
  const { mean, std, rescaleFactor } = clf.config.preprocessing;
  const s = clf.config.imageSize;
  const x = tensor.data;
  const out = new Float64Array(x.length);
  for (let c = 0; c < crops; c++) {
    for (let f = 0; f < n; f++) {
      for (let ch = 0; ch < 3; ch++) {
        const src = ((c * n + f) * 3 + ch) * s * s;
        for (let p = 0; p < s * s; p++) out[((c * n + f) * s * s + p) * 3 + ch] = (x[src + p] * std[ch] + mean[ch]) / rescaleFactor;
      }
    }
  }
  return out;
}

function compare(t, name, ours, ref) {
  assert.equal(ours.length, ref.length);
  let max = 0;
  let off = 0;
  for (let i = 0; i < ref.length; i++) {
    const d = Math.abs(ours[i] - ref[i]);
    if (d > max) max = d;
    if (d > 0.5) off++;
  }
  t.diagnostic(`${name}: max |diff| ${max.toFixed(3)} uint8 levels, ${off} of ${ref.length} values off by one`);
  assert.ok(max <= 1 + 1e-3, `${name}: max |diff| ${max} > 1 level`);
  return max;
}

for (const [w, h] of [[320, 240], [200, 300], [1280, 720], [224, 224]]) {
  test(`preprocess matches PIL within 1 level at ${w}x${h}`, async (t) => {
    const n = w * h > 500_000 ? 2 : 4;
    const data = syntheticFrames(n, h, w, w + h);
    const out = await clf.preprocess({ data, frames: n, height: h, width: w });
    assert.ok(out instanceof Tensor);
    assert.equal(out.dtype, 'float32');
    assert.deepEqual([...out.shape], [n, 3, 224, 224]);
    compare(t, `${w}x${h}`, levels(out, 1, n), pilReference(data, n, h, w));
    if (w === h) {
      // 224x224 needs no resize: the pixels pass through exactly.
      assert.equal(maxAbsDiff(Float64Array.from(levels(out, 1, n), Math.round), Float64Array.from(pilReference(data, n, h, w))), 0);
    }
  });
}

for (const [w, h] of [[320, 240], [200, 300]]) {
  test(`preprocess with crops: 3 matches PIL's three crops along the long side at ${w}x${h}`, async (t) => {
    const n = 2;
    const data = syntheticFrames(n, h, w, 7);
    const out = await clf.preprocess({ data, frames: n, height: h, width: w }, { crops: 3 });
    assert.deepEqual([...out.shape], [3, n, 3, 224, 224]);
    compare(t, `${w}x${h} x3 crops`, levels(out, 3, n), pilReference(data, n, h, w, 3));
  });
}

test('a very wide frame (1200x4, resized to 224x67200) is done a frame at a time and matches PIL, crops included', async (t) => {
  // 15M resized pixels per frame: over the native 256 MB chunk budget in float, so one frame at a time.
  const [w, h, n] = [1200, 4, 2];
  const data = syntheticFrames(n, h, w, 5);
  for (const crops of [1, 3]) {
    const out = await clf.preprocess({ data, frames: n, height: h, width: w }, { crops });
    compare(t, `${w}x${h} x${crops}`, levels(out, crops, n), pilReference(data, n, h, w, crops === 1 ? undefined : crops));
  }
});

test('an extreme aspect ratio is refused with VMAE_INVALID_INPUT before any resize, and the classifier carries on', async () => {
  // 1x16384 at shortestEdge 224 would be 224x3670016: 2.5 GB of uint8 per frame, from 49 KB of input.
  for (const [w, h] of [[16384, 1], [1, 16384], [8192, 2]]) {
    const t0 = performance.now();
    await assert.rejects(clf.preprocess({ data: new Uint8Array(w * h * 3 * 2), frames: 2, height: h, width: w }), (err) => {
      assert.equal(err.code, 'VMAE_INVALID_INPUT');
      assert.match(err.message, new RegExp(`Frames of ${h}x${w} would be resized to \\d+x\\d+ for shortestEdge 224, ` +
        'more than the 33554432 pixels preprocessing allows: the aspect ratio is too extreme'));
      return true;
    });
    assert.ok(performance.now() - t0 < 1000, 'refused without resizing');
  }
  const out = await clf.preprocess({ data: syntheticFrames(2, 240, 320, 1), frames: 2, height: 240, width: 320 });
  assert.deepEqual([...out.shape], [2, 3, 224, 224]);
});

test('classifyFrames equals classify() on the preprocessed clip', async () => {
  const n = clf.config.numFrames;
  const raw = { data: syntheticFrames(n, 240, 320, 11), frames: n, height: 240, width: 320 };
  const a = await clf.classifyFrames(raw, { topK: 2 });
  const b = await clf.classify(await clf.preprocess(raw));
  assert.ok(maxAbsDiff(a.logits, b.logits) < 1e-5);
  assert.equal(a.predictions.length, 2);
  assert.deepEqual(a.predictions.map((p) => p.index), b.predictions.slice(0, 2).map((p) => p.index));
});

test('bad raw frames and options reject with VMAE_INVALID_INPUT', async () => {
  const n = clf.config.numFrames;
  const good = { data: new Uint8Array(n * 8 * 8 * 3), frames: n, height: 8, width: 8 };
  const cases = [
    [() => clf.preprocess(null), /Expected a \{ data, frames, height, width \} object for raw but received null/],
    [() => clf.preprocess({ ...good, data: new Float32Array(10) }), /Expected a Uint8Array \(or Buffer\) of rgb24 bytes for raw.data/],
    [() => clf.preprocess({ ...good, frames: 0 }), /Expected an integer in 1\.\.1000000 for raw.frames but received 0/],
    [() => clf.preprocess({ ...good, width: 1.5 }), /for raw.width but received 1.5 of type number/],
    [() => clf.preprocess({ ...good, data: new Uint8Array(5) }), /Expected \d+ bytes .* for raw.data but received 5 bytes/],
    [() => clf.preprocess(good, { crops: 9 }), /Expected an integer in 1\.\.8 for crops but received 9/],
    [() => clf.preprocess(good, { timeoutMs: -1 }), /for timeoutMs/],
    [() => clf.classifyFrames({ ...good, frames: n + 1, data: new Uint8Array((n + 1) * 192) }),
      new RegExp(`Expected exactly ${n} frames \\(the model's numFrames\\) for raw.frames but received ${n + 1}`)],
    [() => clf.classifyFrames(good, { topK: 0 }), /Expected an integer in 1\.\.3 for topK but received 0/],
  ];
  for (const [call, message] of cases) {
    await assert.rejects(call(), (err) => {
      assert.equal(err.name, 'VideoMAEError');
      assert.equal(err.code, 'VMAE_INVALID_INPUT');
      assert.match(err.message, message);
      return true;
    });
  }
});
