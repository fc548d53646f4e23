'use strict';
// Which frames the Kinetics test protocol samples: sampleIndices() against a transcription of
// VideoMAE's own loader, and the frames readVideoClips() really decodes (colors encode the index).
const assert = require('node:assert/strict');
const path = require('node:path');
const { test, before } = require('node:test');

const { sampleIndices, readVideoClips } = require('../lib');
const { averageViews } = require('../lib/video/sampling');
const { tmpDir, encodeFrames, indexFrames, frameIndex, decodeAll, pick, packetCount, ffmpeg } = require('./helpers/video');

/**
 * VideoMAE's kinetics.py test-mode sampling, transcribed: every sample_rate-th frame, padded with
 * the last one up to clip_len, then clip k starts at int(k * max((len - clip_len) / (K - 1), 0)),
 * or at (len - clip_len) // 2 for K = 1.
 */
function videomaeReference(total, clipLen, rate, segments) {
  const all = [];
  for (let i = 0; i < total; i += rate) all.push(i);
  while (all.length < clipLen) all.push(all[all.length - 1]);
  const clips = [];
  for (let k = 0; k < segments; k++) {
    const start = segments > 1
      ? Math.floor(k * Math.max((all.length - clipLen) / (segments - 1), 0))
      : Math.floor((all.length - clipLen) / 2);
    clips.push(all.slice(start, start + clipLen));
  }
  return clips;
}

const range = (n, f) => Array.from({ length: n }, (_, i) => f(i));

test('sampleIndices: worked examples', () => {
  assert.deepEqual(sampleIndices(64, 16, 4, 1), [range(16, (i) => 4 * i)]);
  // 20 frames: 5 sampled frames (0..16), padded with the last one.
  assert.deepEqual(sampleIndices(20, 16, 4, 1), [[0, 4, 8, 12, 16, ...range(11, () => 16)]]);
  // 300 frames: 75 sampled; one clip starts at sampled frame (75 - 16) // 2 = 29.
  assert.equal(sampleIndices(300, 16, 4, 1)[0][0], 29 * 4);
  // five clips start at int(k * 59 / 4) = 0, 14, 29, 44, 59.
  assert.deepEqual(sampleIndices(300, 16, 4, 5).map((c) => c[0] / 4), [0, 14, 29, 44, 59]);
  assert.deepEqual(sampleIndices(300, 16, 4, 5)[4], range(16, (i) => (59 + i) * 4));
  // Shorter than a clip: every clip is the padded one.
  assert.deepEqual(sampleIndices(20, 16, 4, 5), range(5, () => sampleIndices(20, 16, 4, 1)[0]));
  assert.deepEqual(sampleIndices(1, 4, 4, 2), [[0, 0, 0, 0], [0, 0, 0, 0]]);
  // The last sampled frame is the last multiple of r below N (61 frames, r 4: 60).
  assert.equal(Math.max(...sampleIndices(61, 16, 4, 3).flat()), 60);
});

test('sampleIndices agrees with the transcribed VideoMAE loader', () => {
  for (const total of [1, 2, 3, 15, 16, 17, 20, 63, 64, 65, 100, 257, 1000]) {
    for (const t of [1, 2, 8, 16]) {
      for (const r of [1, 2, 3, 4, 8]) {
        for (const k of [1, 2, 3, 5, 10]) {
          assert.deepEqual(sampleIndices(total, t, r, k), videomaeReference(total, t, r, k), `N=${total} T=${t} r=${r} K=${k}`);
        }
      }
    }
  }
});

test('sampleIndices rejects bad arguments', () => {
  for (const args of [[0, 16, 4, 1], [10, 0, 4, 1], [10, 16, 0, 1], [10, 16, 4, 0], [1.5, 16, 4, 1], [10, 16, '4', 1]]) {
    assert.throws(() => sampleIndices(...args), { code: 'VMAE_INVALID_INPUT', message: /^Expected a positive integer for \w+ but received/ });
  }
});

test('averageViews ranks the mean softmax and returns the mean logits', () => {
  const labels = ['a', 'b', 'c'];
  // View 1 is very sure of 'a'; views 2 and 3 mildly prefer 'b'. Mean softmax picks 'a',
  // mean logits would pick 'b': the protocol averages probabilities.
  const views = [Float32Array.of(10, 0, 0), Float32Array.of(0, 1, 0), Float32Array.of(0, 1, 0)];
  const r = averageViews(views, labels, 3);
  assert.equal(r.predictions[0].label, 'a');
  assert.deepEqual([...r.logits].map((v) => +v.toFixed(5)), [3.33333, 0.66667, 0]);
  assert.ok(Math.abs(r.predictions.reduce((s, p) => s + p.score, 0) - 1) < 1e-12);
});

let dir;
before(() => {
  dir = tmpDir();
});

/** Index-encoded lossless video of `count` frames. */
function indexVideo(name, count, w = 32, h = 24) {
  return encodeFrames(indexFrames(count, w, h), w, h, path.join(dir, name));
}

async function checkDecoded(file, total, numFrames, sampleRate, clips, w = 32, h = 24) {
  const r = await readVideoClips(file, { numFrames, sampleRate, clips });
  const expected = sampleIndices(total, numFrames, sampleRate, clips);
  assert.equal(r.framesDecoded, total);
  assert.deepEqual(r.indices, expected);
  assert.equal(r.clips.length, clips);
  r.clips.forEach((clip, k) => {
    assert.deepEqual([clip.frames, clip.height, clip.width], [numFrames, h, w]);
    const seen = range(numFrames, (f) => frameIndex(clip.data, w, h, f));
    assert.deepEqual(seen, expected[k], `clip ${k} holds the wrong frames`);
  });
  return r;
}

test('a 64-frame video: 1 clip and 5 clips decode the sampled frames', async () => {
  const file = indexVideo('i64.mkv', 64);
  await checkDecoded(file, 64, 16, 4, 1);
  await checkDecoded(file, 64, 16, 4, 5);
  await checkDecoded(file, 64, 8, 2, 3);
});

test('a 300-frame video: 5 clips spread over the video', async () => {
  const file = indexVideo('i300.mkv', 300);
  const r = await checkDecoded(file, 300, 16, 4, 5);
  assert.deepEqual(r.indices.map((c) => c[0]), [0, 56, 116, 176, 236]);
  await checkDecoded(file, 300, 16, 4, 1);
});

test('a 20-frame video, shorter than one clip, is padded with its last sampled frame', async () => {
  const file = indexVideo('i20.mkv', 20);
  const r = await checkDecoded(file, 20, 16, 4, 1);
  assert.deepEqual(r.indices[0].slice(3), [12, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16]);
  await checkDecoded(file, 20, 16, 4, 5);
});

test('decoding passes on only the selected frames, counts all of them, and enforces maxFrames on that count', async () => {
  // lib/ffmpeg.ts directly: ffprobe's packet count normally rejects a long video before decoding,
  // so the decode-time bound is only reached when the count comes out higher than announced.
  const { decodeFrames } = require('../lib/video/ffmpeg');
  const file = indexVideo('select64.mkv', 64);
  const signal = new AbortController().signal;
  const seen = [];
  const options = { width: 32, height: 24, maxFrames: 1000, signal, onFrame: (i, frame) => { seen.push([i, frameIndex(frame, 32, 24)]); } };
  // Runs of neighbours (between()), single frames (eq()), and one past the end.
  assert.equal(await decodeFrames(file, 'select64.mkv', { ...options, wanted: [0, 5, 6, 7, 40, 63, 70] }), 64);
  assert.deepEqual(seen, [[0, 0], [5, 5], [6, 6], [7, 7], [40, 40], [63, 63]]);
  seen.length = 0;
  assert.equal(await decodeFrames(file, 'select64.mkv', { ...options, wanted: [] }), 64, 'counting alone');
  assert.deepEqual(seen, []);
  await assert.rejects(decodeFrames(file, 'select64.mkv', { ...options, wanted: [0], maxFrames: 10 }), (err) => {
    assert.equal(err.code, 'VMAE_INVALID_INPUT');
    assert.match(err.message, /^Expected a video of at most 10 frames \(limits.maxFrames\) but select64.mkv decodes to more$/);
    return true;
  });
});

test('when the decoded count differs from the probed packet count, sampling uses the decoded count', async () => {
  // An mp4 cut by stream copy starts between keyframes: its edit list makes ffmpeg decode and
  // drop the leading packets, so ffprobe counts more packets than frames come out.
  const w = 32;
  const h = 24;
  const full = encodeFrames(indexFrames(100, w, h), w, h, path.join(dir, 'gop.mp4'),
    ['-c:v', 'libx264rgb', '-qp', '0', '-g', '50', '-bf', '2']);
  const cut = path.join(dir, 'cut.mp4');
  ffmpeg(['-ss', '1.3', '-i', full, '-c', 'copy', cut]);
  const decoded = decodeAll(cut, w, h);
  assert.notEqual(packetCount(cut), decoded.count, 'fixture should have more packets than frames');
  for (const clips of [1, 3]) {
    const r = await readVideoClips(cut, { numFrames: 16, sampleRate: 2, clips });
    assert.equal(r.framesDecoded, decoded.count);
    assert.deepEqual(r.indices, sampleIndices(decoded.count, 16, 2, clips));
    r.clips.forEach((clip, k) => assert.deepEqual(clip.data, pick(decoded, r.indices[k], w, h).data));
  }
});

test('readVideoClips validates its options', async () => {
  const file = indexVideo('i8.mkv', 8);
  for (const [options, message] of [
    [{}, /Expected an integer in 1\.\.256 for numFrames but received undefined/],
    [{ numFrames: 4, clips: 0 }, /Expected an integer in 1\.\.32 for clips but received 0/],
    [{ numFrames: 4, sampleRate: 2.5 }, /Expected an integer in 1\.\.1024 for sampleRate but received 2.5/],
    [{ numFrames: 4, limits: { maxFrames: -1 } }, /Expected a positive integer for limits.maxFrames but received -1/],
    [{ numFrames: 4, limits: 'none' }, /Expected an object for limits/],
  ]) {
    await assert.rejects(readVideoClips(file, options), { code: 'VMAE_INVALID_INPUT', message });
  }
});
