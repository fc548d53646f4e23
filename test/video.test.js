'use strict';
// clf.classifyVideo end to end: logits against classifyFrames / classifyBatch on frames decoded
// independently with the ffmpeg CLI, Buffer and stream inputs, rotation, and clean failures
// (corrupt file, missing ffmpeg, abort, timeouts) that leave no ffmpeg process behind.
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { Readable } = require('node:stream');
const { test, before, after, afterEach } = require('node:test');

const { VideoClassifier, sampleIndices, readVideoClips, Tensor } = require('../lib');
const {
  tmpDir, videoModel, ffmpeg, encodeFrames, syntheticFrames, decodeAll, pick, ffmpegChildren, waitFor, averageRows, maxAbsDiff,
} = require('./helpers/video');

let clf;
let dir;
let mp4; // 64 frames of 160x120 testsrc, H.264 yuv420p
let long; // 1800 frames of 640x360, takes a few seconds to decode
before(async () => {
  dir = tmpDir();
  mp4 = path.join(dir, 'testsrc.mp4');
  ffmpeg(['-f', 'lavfi', '-i', 'testsrc=size=160x120:rate=25', '-frames:v', '64', '-c:v', 'libx264', '-pix_fmt', 'yuv420p', mp4]);
  long = path.join(dir, 'long.mp4');
  ffmpeg(['-f', 'lavfi', '-i', 'testsrc2=size=640x360:rate=30', '-t', '60', '-c:v', 'libx264', '-preset', 'ultrafast', long]);
  clf = await VideoClassifier.load(videoModel().model, { threads: 2 });
});
after(() => clf?.dispose());
afterEach(() => assert.deepEqual(ffmpegChildren(), [], 'an ffmpeg/ffprobe process was left behind'));

test('classifyVideo (1 clip x 1 crop) equals classifyFrames on independently decoded frames', async (t) => {
  const r = await clf.classifyVideo(mp4, { topK: 3 });
  const decoded = decodeAll(mp4, 160, 120);
  const [indices] = sampleIndices(decoded.count, 16, 4, 1);
  const ref = await clf.classifyFrames(pick(decoded, indices, 160, 120));
  t.diagnostic(`1x1: max |logit diff| ${maxAbsDiff(r.logits, ref.logits)}`);
  assert.ok(maxAbsDiff(r.logits, ref.logits) <= 1e-5, `logits differ by ${maxAbsDiff(r.logits, ref.logits)}`);
  assert.deepEqual(r.predictions.map((p) => p.index), ref.predictions.slice(0, 3).map((p) => p.index));
  for (let i = 0; i < 3; i++) assert.ok(Math.abs(r.predictions[i].score - ref.predictions[i].score) < 1e-6);
  assert.equal(r.views, 1);
  assert.equal(r.framesDecoded, 64);
  assert.ok(Math.abs(r.durationSec - 64 / 25) < 0.05, `durationSec ${r.durationSec}`);
  for (const k of ['decodeMs', 'preprocessMs', 'inferenceMs']) assert.ok(r.timings[k] >= 0, k);
});

test('classifyVideo 5 clips x 3 crops averages the softmax of the 15 views', async (t) => {
  const r = await clf.classifyVideo(mp4, { clips: 5, crops: 3, sampleRate: 2, topK: 7 });
  assert.equal(r.views, 15);
  const decoded = decodeAll(mp4, 160, 120);
  const rows = [];
  for (const indices of sampleIndices(decoded.count, 16, 2, 5)) {
    const x = await clf.preprocess(pick(decoded, indices, 160, 120), { crops: 3 }); // [3,16,3,32,32]
    const batch = await clf.classifyBatch(Tensor.fromBuffer(x.data, [3, 16, 3, 32, 32]), { topK: 7 });
    rows.push(...batch.map((b) => b.logits));
  }
  const { probs, logits } = averageRows(rows);
  t.diagnostic(`5x3: max |mean logit diff| ${maxAbsDiff(r.logits, logits)}`);
  assert.ok(maxAbsDiff(r.logits, logits) <= 1e-5, `mean logits differ by ${maxAbsDiff(r.logits, logits)}`);
  for (const p of r.predictions) assert.ok(Math.abs(p.score - probs[p.index]) < 1e-6);
  const order = [...probs.keys()].sort((a, b) => probs[b] - probs[a]);
  assert.deepEqual(r.predictions.map((p) => p.index), order);
  // The crops differ (shortest edge 40 > crop 32), so the views do too.
  assert.ok(maxAbsDiff(rows[0], rows[1]) > 1e-4);
});

test('a Buffer and a Readable stream give the same result as the path', async () => {
  const os = require('node:os');
  const spools = () => new Set(fs.readdirSync(os.tmpdir()).filter((f) => f.startsWith('videomae-')));
  const before = spools();
  const byPath = await clf.classifyVideo(mp4);
  const byBuffer = await clf.classifyVideo(fs.readFileSync(mp4));
  const byStream = await clf.classifyVideo(fs.createReadStream(mp4, { highWaterMark: 1024 }));
  assert.deepEqual([...byBuffer.logits], [...byPath.logits]);
  assert.deepEqual([...byStream.logits], [...byPath.logits]);
  assert.deepEqual([...spools()].filter((f) => !before.has(f)), [], 'temp spool folders were left behind');
});

test('rotation metadata: frames come out rotated, with the post-rotation size', async () => {
  const w = 48;
  const h = 32;
  const src = syntheticFrames(4, h, w, 5);
  const plain = encodeFrames(src, w, h, path.join(dir, 'upright.mp4'), ['-c:v', 'libx264rgb', '-qp', '0']);
  const rotated = path.join(dir, 'rotated.mp4');
  ffmpeg(['-i', plain, '-c', 'copy', '-metadata:s:v:0', 'rotate=90', rotated]);
  const r = await readVideoClips(rotated, { numFrames: 4, sampleRate: 1 });
  assert.equal(r.rotation, 90);
  assert.deepEqual([r.width, r.height], [h, w]);
  // Display rotation 90 is counter-clockwise: output (x, y) = source (w - 1 - y, x).
  const out = r.clips[0].data;
  for (let f = 0; f < 4; f++) {
    for (let y = 0; y < w; y++) {
      for (let x = 0; x < h; x++) {
        for (let c = 0; c < 3; c++) {
          const got = out[((f * w + y) * h + x) * 3 + c];
          const want = src[((f * h + x) * w + (w - 1 - y)) * 3 + c];
          if (got !== want) assert.fail(`frame ${f} (${x},${y}) channel ${c}: ${got} != ${want}`);
        }
      }
    }
  }
  const res = await clf.classifyVideo(rotated, { sampleRate: 1 });
  assert.equal(res.framesDecoded, 4);
});

test('a corrupt file rejects with VMAE_DECODE_FAILED and ffmpeg\'s message', async () => {
  const bad = path.join(dir, 'corrupt.mp4');
  fs.writeFileSync(bad, Buffer.concat([Buffer.from('\x00\x00\x00\x18ftypmp42'), Buffer.alloc(4000, 7)]));
  await assert.rejects(clf.classifyVideo(bad), (err) => {
    assert.equal(err.code, 'VMAE_DECODE_FAILED');
    assert.match(err.message, /^ffprobe could not read '.*corrupt\.mp4': .+/);
    return true;
  });
  // A valid container (index first) whose video data is garbage: probing works, decoding fails.
  const faststart = path.join(dir, 'faststart.mp4');
  ffmpeg(['-i', mp4, '-c', 'copy', '-movflags', '+faststart', faststart]);
  const junk = path.join(dir, 'junk.mp4');
  const good = fs.readFileSync(faststart);
  const mdat = good.indexOf('mdat');
  fs.writeFileSync(junk, Buffer.concat([good.subarray(0, mdat + 4), Buffer.alloc(good.length - mdat - 4, 0xff)]));
  await assert.rejects(clf.classifyVideo(junk), { code: 'VMAE_DECODE_FAILED', message: /^ffmpeg could not decode '.*junk\.mp4': .*Invalid/ });
  const text = path.join(dir, 'notes.txt');
  fs.writeFileSync(text, 'not a video');
  await assert.rejects(clf.classifyVideo(text), { code: 'VMAE_DECODE_FAILED', message: /Invalid data found when processing input/ });
});

test('a missing ffmpeg rejects with VMAE_DECODE_FAILED saying how to install it', async (t) => {
  t.after(() => {
    delete process.env.FFMPEG_PATH;
  });
  process.env.FFMPEG_PATH = '/nonexistent';
  await assert.rejects(clf.classifyVideo(mp4), (err) => {
    assert.equal(err.code, 'VMAE_DECODE_FAILED');
    assert.match(err.message, /ffprobe was not found \('\/ffprobe', from the folder of FFMPEG_PATH\)/);
    assert.match(err.message, /apt-get install ffmpeg/);
    assert.match(err.message, /FFMPEG_PATH/);
    return true;
  });
  // ffprobe found, ffmpeg missing.
  process.env.FFPROBE_PATH = 'ffprobe';
  t.after(() => {
    delete process.env.FFPROBE_PATH;
  });
  await assert.rejects(clf.classifyVideo(mp4), { code: 'VMAE_DECODE_FAILED', message: /^ffmpeg was not found \('\/nonexistent', from FFMPEG_PATH\)/ });
});

test('aborting during decoding kills ffmpeg and rejects with VMAE_ABORTED', async () => {
  const ac = new AbortController();
  const started = Date.now();
  const p = clf.classifyVideo(long, { signal: ac.signal });
  await waitFor(() => ffmpegChildren().some((c) => c.endsWith(' ffmpeg')), 10_000, 'ffmpeg to start');
  ac.abort();
  await assert.rejects(p, { code: 'VMAE_ABORTED' });
  assert.ok(Date.now() - started < 8000);
  // An already-aborted signal rejects before anything starts.
  await assert.rejects(clf.classifyVideo(long, { signal: AbortSignal.abort() }), { code: 'VMAE_ABORTED' });
});

test('timeoutMs and limits.decodeTimeoutMs reject with VMAE_TIMEOUT and kill ffmpeg', async () => {
  await assert.rejects(clf.classifyVideo(long, { timeoutMs: 400 }),
    { code: 'VMAE_TIMEOUT', message: 'The request took longer than timeoutMs (400 ms)' });
  await assert.rejects(clf.classifyVideo(long, { limits: { decodeTimeoutMs: 400 } }),
    { code: 'VMAE_TIMEOUT', message: 'Decoding took longer than limits.decodeTimeoutMs (400 ms)' });
});

test('limits are checked before decoding', async () => {
  const cases = [
    [{ maxWidth: 100 }, /^Expected a video of at most 100x8192 pixels \(limits.maxWidth\/maxHeight\) but '.*' is 160x120$/],
    [{ maxFrames: 10 }, /^Expected a video of at most 10 frames \(limits.maxFrames\) but '.*' has 64$/],
    [{ maxDurationSec: 1 }, /^Expected a video of at most 1 s \(limits.maxDurationSec\) but '.*' lasts 2.6 s$/],
    [{ maxInputBytes: 10 }, /^Expected at most 10 bytes \(limits.maxInputBytes\)/],
  ];
  for (const [limits, message] of cases) {
    const input = limits.maxInputBytes ? fs.createReadStream(mp4) : mp4;
    await assert.rejects(clf.classifyVideo(input, { limits }), { code: 'VMAE_INVALID_INPUT', message });
  }
});

test('bad arguments reject with VMAE_INVALID_INPUT', async () => {
  const cases = [
    [42, {}, /^Expected a file path, a Buffer or a Readable stream for input but received 42 of type number$/],
    [{}, {}, /^Expected a file path, a Buffer or a Readable stream for input but received an object of type Object$/],
    ['', {}, /^Expected a video file path for input but received '' of type string$/],
    [Buffer.alloc(0), {}, /^Expected a non-empty Buffer for input but received 0 bytes$/],
    [path.join(dir, 'missing.mp4'), {}, /^Expected an existing video file for input but received '.*missing.mp4' of type string \(no such file\)$/],
    [dir, {}, /^Expected a regular file for input/],
    [mp4, { clips: 0 }, /^Expected an integer in 1\.\.32 for clips but received 0 of type number$/],
    [mp4, { crops: 9 }, /^Expected an integer in 1\.\.8 for crops but received 9 of type number$/],
    [mp4, { sampleRate: '4' }, /^Expected an integer in 1\.\.1024 for sampleRate but received '4' of type string$/],
    [mp4, { topK: 8 }, /^Expected an integer in 1\.\.7 for topK but received 8 of type number$/],
    [mp4, { timeoutMs: 0 }, /^Expected a positive integer for timeoutMs but received 0 of type number$/],
    [mp4, { signal: 'stop' }, /^Expected an AbortSignal for signal/],
    [mp4, { limits: { maxWidth: 0 } }, /^Expected a positive integer for limits.maxWidth but received 0 of type number$/],
    [mp4, null, /^Expected an options object for options but received null$/],
  ];
  for (const [input, options, message] of cases) {
    await assert.rejects(clf.classifyVideo(input, options), { name: 'VideoMAEError', code: 'VMAE_INVALID_INPUT', message });
  }
});

test('a failing input stream rejects with VMAE_DECODE_FAILED; an empty one with VMAE_INVALID_INPUT', async () => {
  const failing = new Readable({ read() { this.destroy(new Error('disk on fire')); } });
  await assert.rejects(clf.classifyVideo(failing), { code: 'VMAE_DECODE_FAILED', message: 'Could not read the stream input: disk on fire' });
  await assert.rejects(clf.classifyVideo(Readable.from([])), { code: 'VMAE_INVALID_INPUT', message: /stream was empty/ });
});
