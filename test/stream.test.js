'use strict';
// clf.classifyStream: windows against classifyFrames on independently decoded frames, the demo
// model following a direction switch, a real-time matroska feed, 10 minutes of generated frames in
// bounded memory, the push source, smoothing, aborts, and the network opt-in.
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const { PassThrough } = require('node:stream');
const { test, before, after, afterEach } = require('node:test');

const { VideoClassifier, FrameStream } = require('../lib');
const { tmpDir, videoModel, ffmpeg, FFMPEG, encodeFrames, decodeAll, pick, ffmpegChildren, syntheticFrames, maxAbsDiff } =
  require('./helpers/video');
const { leftThenRight } = require('./helpers/motion');
const { runChild } = require('./helpers/child');

let dir;
let demo; // the demo model: 8 frames of 64x64, 9 motion labels
let small; // videoModel(): 16 frames of 32x32, 7 labels
let testsrc; // 125 frames of 160x120 at 25 fps
let turn; // moves left for 6 s, then right for 6 s (16 fps, 128x96, H.264)
before(async () => {
  dir = tmpDir('vmae-stream-');
  testsrc = path.join(dir, 'testsrc.mp4');
  ffmpeg(['-f', 'lavfi', '-i', 'testsrc=size=160x120:rate=25', '-frames:v', '125', '-c:v', 'libx264', '-pix_fmt', 'yuv420p', testsrc]);
  const clip = leftThenRight({ fps: 16, seconds: 6, speed: 0.75, seed: 1 });
  turn = { file: path.join(dir, 'turn.mp4'), switchSec: clip.switchSec };
  encodeFrames(clip.data, clip.width, clip.height, turn.file, ['-c:v', 'libx264', '-pix_fmt', 'yuv420p', '-crf', '18'], clip.fps);
  ffmpeg(['-i', turn.file, '-c', 'copy', turn.file.replace(/\.mp4$/, '.mkv')]);
  demo = await VideoClassifier.load(undefined, { threads: 1 });
  small = await VideoClassifier.load(videoModel().model, { threads: 1 });
});
after(async () => {
  await demo?.dispose();
  await small?.dispose();
});
afterEach(() => assert.deepEqual(ffmpegChildren(), [], 'an ffmpeg process was left behind'));

async function collect(iterable) {
  const out = [];
  for await (const r of iterable) out.push(r);
  return out;
}

/** The window ends the docs describe: the first full window, then the first sampled frame at or after each stride point. */
function expectedEnds(count, { fps, t, r, strideSec, strideFrames }) {
  const ends = [];
  let due;
  for (let n = (t - 1) * r; n < count; n += r) {
    const pos = strideFrames ? n : n / fps;
    if (due !== undefined && pos < due - 1e-9) continue;
    ends.push(n);
    due = (due ?? pos) + (strideFrames ?? strideSec);
    while (due <= pos + 1e-9) due += strideFrames ?? strideSec;
  }
  return ends;
}

/** Decoded-frame indices of the window ending at frame `end`. */
const windowIndices = (end, t, r) => Array.from({ length: t }, (_, k) => end - (t - 1 - k) * r);

test('each window is numFrames frames at the sampling stride; logits equal classifyFrames on frames decoded with the ffmpeg CLI', async (t) => {
  const decoded = decodeAll(testsrc, 160, 120);
  assert.equal(decoded.count, 125);
  for (const options of [{}, { strideFrames: 30 }, { strideSec: 0.5, sampleRate: 2 }]) {
    const r = options.sampleRate ?? 4;
    const results = await collect(small.classifyStream(testsrc, { ...options, topK: 3 }));
    const ends = expectedEnds(125, { fps: 25, t: 16, r, strideSec: options.strideSec ?? 1, strideFrames: options.strideFrames });
    assert.deepEqual(results.map((w) => w.endFrame), ends, JSON.stringify(options));
    let worst = 0;
    for (const w of results) {
      const indices = windowIndices(w.endFrame, 16, r);
      assert.equal(w.startFrame, indices[0]);
      assert.ok(Math.abs(w.startSec - indices[0] / 25) < 1e-6 && Math.abs(w.endSec - w.endFrame / 25) < 1e-6, `${w.startSec}..${w.endSec}`);
      assert.equal(w.dropped, 0); // mode 'every' (the default for a file) drops nothing
      assert.ok(w.latencyMs >= 0);
      const ref = await small.classifyFrames(pick(decoded, indices, 160, 120), { topK: 3 });
      worst = Math.max(worst, maxAbsDiff(w.logits, ref.logits));
      assert.deepEqual(w.predictions.map((p) => p.index), ref.predictions.map((p) => p.index));
    }
    t.diagnostic(`${JSON.stringify(options)}: ${results.length} windows, max |logit diff| ${worst}`);
    assert.ok(worst <= 1e-5, `logits differ by ${worst}`);
  }
  // A Buffer is spooled to a temp file (removed afterwards) and gives the same windows.
  const os = require('node:os');
  const spools = () => fs.readdirSync(os.tmpdir()).filter((f) => f.startsWith('videomae-'));
  const before = new Set(spools());
  const byPath = await collect(small.classifyStream(testsrc));
  const byBuffer = await collect(small.classifyStream(fs.readFileSync(testsrc)));
  assert.deepEqual(byBuffer.map((w) => [...w.logits]), byPath.map((w) => [...w.logits]));
  assert.deepEqual(spools().filter((f) => !before.has(f)), []);
});

test("push source in mode 'every': push() returns false while inference is behind, and ignoring it is VMAE_BUSY", async () => {
  const frame = new Uint8Array(48 * 40 * 3);
  const s = small.createFrameStream({ width: 48, height: 40, fps: 25 });
  const it = small.classifyStream(s, { mode: 'every', strideFrames: 4 });
  let pushed = 0;
  while (s.push(frame)) pushed++; // nothing is consumed: the stream soon asks to wait
  assert.ok(pushed < 100, `${pushed} frames accepted without back-pressure`);
  assert.throws(() => { for (let i = 0; i < 300; i++) s.push(frame); }, { code: 'VMAE_BUSY', message: /drained/ });
  await it.return();
  await s.drained(); // resolves once the stream has stopped
});

test('direction switch: the demo model says left, then right, within 2 strides of the true change', async (t) => {
  const results = await collect(demo.classifyStream(turn.file, { topK: 1 }));
  const labels = results.map((w) => `${w.startSec.toFixed(2)}-${w.endSec.toFixed(2)}:${w.predictions[0].label}`);
  t.diagnostic(labels.join(' '));
  assert.equal(results.length, 11);
  for (const w of results) {
    if (w.endSec <= turn.switchSec) assert.equal(w.predictions[0].label, 'moving_left', labels.join(' '));
    if (w.startSec >= turn.switchSec) assert.equal(w.predictions[0].label, 'moving_right', labels.join(' '));
  }
  const firstRight = results.findIndex((w) => w.predictions[0].label === 'moving_right');
  assert.ok(firstRight > 0);
  assert.ok(results.slice(firstRight).every((w) => w.predictions[0].label === 'moving_right'), 'left again after right');
  const delay = results[firstRight].endSec - turn.switchSec;
  t.diagnostic(`switch at ${turn.switchSec} s reported by the window ending at ${results[firstRight].endSec} s`);
  assert.ok(delay >= 0 && delay <= 2 * 1, `reported ${delay} s after the change (stride 1 s)`);
});

test('live: a file played in real time into a Readable gives results before the input ends, keeping pace', async (t) => {
  const producer = spawn(FFMPEG, ['-nostdin', '-v', 'error', '-re', '-i', turn.file, '-t', '8', '-c', 'copy',
    '-cluster_time_limit', '100', '-f', 'matroska', 'pipe:1'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise((resolve) => producer.once('exit', resolve));
  const start = performance.now();
  let ended;
  void exited.then(() => { ended = performance.now() - start; });
  const seen = [];
  for await (const w of demo.classifyStream(producer.stdout, { topK: 1 })) {
    seen.push({ endSec: w.endSec, atMs: performance.now() - start, beforeEnd: ended === undefined, dropped: w.dropped });
  }
  await exited;
  t.diagnostic(`input ended after ${Math.round(ended)} ms; results: ${seen.map((s) => `${s.endSec}s@${Math.round(s.atMs)}ms` +
    `${s.dropped ? `(dropped ${s.dropped})` : ''}`).join(' ')}`);
  assert.ok(seen.length > 0 && seen[0].beforeEnd, 'the first result came after the input ended');
  const during = seen.filter((s) => s.beforeEnd);
  assert.ok(during.length >= 3, `only ${during.length} results arrived during the 8 s of playback`);
  assert.ok(during[during.length - 1].endSec >= 8 - 3, 'results fell behind playback');
});

test('long stream: 10 minutes of frames generated on the fly keep RSS flat and leave no ffmpeg behind', async (t) => {
  // In a fresh process with --expose-gc, so that RSS is measured after a full collection. 15000
  // frames of 128x96 at 25 fps, rawvideo in NUT from lavfi as fast as it goes (no -re): 3750
  // sampled frames are preprocessed and 599 windows classified; nothing is written to disk.
  const out = await runChild(`
    const { spawn } = require('node:child_process');
    const { ffmpegChildren } = require(ROOT + '/test/helpers/video');
    (async () => {
      const clf = await vmae.VideoClassifier.load(undefined, { threads: 1 });
      const producer = spawn(process.env.FFMPEG_PATH || 'ffmpeg', ['-nostdin', '-v', 'error', '-f', 'lavfi',
        '-i', 'testsrc2=size=128x96:rate=25', '-t', '600', '-c:v', 'rawvideo', '-pix_fmt', 'yuv420p', '-f', 'nut', 'pipe:1'],
        { stdio: ['ignore', 'pipe', 'inherit'] });
      const exited = new Promise((resolve) => producer.once('exit', resolve));
      const rss = [];
      let count = 0;
      let last;
      let next = 60;
      for await (const w of clf.classifyStream(producer.stdout, { mode: 'every', topK: 1 })) {
        count++;
        last = w;
        if (w.endSec >= next) {
          next += 60;
          global.gc();
          await new Promise((resolve) => setImmediate(resolve)); // let native finalizers run
          rss.push({ sec: Math.round(w.endSec), mb: process.memoryUsage().rss / 2 ** 20 });
        }
      }
      await exited;
      const left = ffmpegChildren();
      await clf.dispose();
      report({ count, endFrame: last.endFrame, endSec: last.endSec, rss, left });
    })();
  `, { execArgv: ['--expose-gc'], timeoutMs: 600_000 });
  assert.equal(out.code, 0, out.stderr);
  const r = out.result;
  const ends = expectedEnds(15000, { fps: 25, t: 8, r: 4, strideSec: 1 });
  assert.equal(r.count, ends.length); // 599: windows end at 1.12 s, then at the first sampled frame after each second
  assert.equal(r.endFrame, ends[ends.length - 1]);
  assert.ok(Math.abs(r.endSec - ends[ends.length - 1] / 25) < 1e-6, `last window ends at ${r.endSec}`);
  assert.deepEqual(r.left, [], 'an ffmpeg process was left behind');
  // Bound: after a GC, RSS at any later minute is within 32 MB of RSS at minute 2 (allocators and
  // JIT warm by then). What a window needs is a ring of 8 preprocessed frames (0.4 MB); keeping
  // every sampled frame would be 3750 x 85 KB = 310 MB.
  t.diagnostic(`RSS after GC, by minute of stream: ${r.rss.map((x) => `${x.sec / 60}: ${x.mb.toFixed(1)}`).join(', ')} MB`);
  const base = r.rss.find((x) => x.sec >= 120).mb;
  const peak = Math.max(...r.rss.filter((x) => x.sec >= 120).map((x) => x.mb));
  assert.ok(peak - base < 32, `RSS grew by ${(peak - base).toFixed(1)} MB`);
});

test('push source: windows equal classifyFrames on the pushed frames, with times from fps', async () => {
  const frames = syntheticFrames(70, 40, 48, 5); // 70 frames of 48x40
  const s = small.createFrameStream({ width: 48, height: 40, fps: 10 });
  assert.ok(s instanceof FrameStream);
  const it = small.classifyStream(s, { strideFrames: 8, mode: 'every', topK: 2 });
  const frame = 48 * 40 * 3;
  const pushing = (async () => {
    for (let i = 0; i < 70; i++) {
      if (!s.push(frames.subarray(i * frame, (i + 1) * frame))) await s.drained();
    }
    s.end();
  })();
  const results = await collect(it);
  await pushing;
  assert.deepEqual(results.map((w) => w.endFrame), [60, 68]);
  for (const w of results) {
    const indices = windowIndices(w.endFrame, 16, 4);
    assert.equal(w.startSec, indices[0] / 10);
    assert.equal(w.endSec, w.endFrame / 10);
    const data = new Uint8Array(16 * frame);
    indices.forEach((index, k) => data.set(frames.subarray(index * frame, (index + 1) * frame), k * frame));
    const ref = await small.classifyFrames({ data, frames: 16, height: 40, width: 48 }, { topK: 2 });
    assert.ok(maxAbsDiff(w.logits, ref.logits) <= 1e-5);
  }
});

test("mode 'latest': frames faster than inference drop stale windows, counted in `dropped`; 'every' keeps all", async () => {
  const count = 400;
  const frames = syntheticFrames(40, 40, 48, 7);
  const frame = 48 * 40 * 3;
  const at = (i) => frames.subarray((i % 40) * frame, (i % 40 + 1) * frame);
  const total = expectedEnds(count, { fps: 25, t: 16, r: 4, strideSec: 0.2 }).length;
  for (const mode of ['latest', 'every']) {
    const s = small.createFrameStream({ width: 48, height: 40, fps: 25 });
    const it = small.classifyStream(s, { strideSec: 0.2, mode });
    const pushing = (async () => {
      // All frames in one go where allowed: nothing can be classified before the pushes return.
      for (let i = 0; i < count; i++) if (!s.push(at(i))) await s.drained();
      s.end();
    })();
    const results = await collect(it);
    await pushing;
    const dropped = results.reduce((sum, w) => sum + w.dropped, 0);
    assert.equal(results.length + dropped, total, `${mode}: ${results.length} results + ${dropped} dropped`);
    assert.equal(results[results.length - 1].endFrame, 396, mode); // the newest window is never dropped
    if (mode === 'latest') assert.ok(dropped > total / 2, `only ${dropped} of ${total} dropped`);
    else assert.equal(dropped, 0);
  }
});

test('push source: a stream shorter than one window gives one window padded with its last frame', async () => {
  const frames = syntheticFrames(10, 40, 48, 6);
  const frame = 48 * 40 * 3;
  const s = small.createFrameStream({ width: 48, height: 40, fps: 25 });
  const it = small.classifyStream(s, { topK: 2 });
  for (let i = 0; i < 10; i++) s.push(frames.subarray(i * frame, (i + 1) * frame));
  s.end();
  const results = await collect(it);
  assert.equal(results.length, 1);
  // Sampled frames 0, 4, 8, then 8 repeated (the padding classifyVideo uses too).
  const indices = Array.from({ length: 16 }, (_, k) => Math.min(k, 2) * 4);
  const data = new Uint8Array(16 * frame);
  indices.forEach((index, k) => data.set(frames.subarray(index * frame, (index + 1) * frame), k * frame));
  const ref = await small.classifyFrames({ data, frames: 16, height: 40, width: 48 });
  assert.ok(maxAbsDiff(results[0].logits, ref.logits) <= 1e-5);
  assert.equal(results[0].endFrame, 8);
});

test('push source: a wrong frame size or fps is a clear VMAE_INVALID_INPUT', async () => {
  for (const fps of [0, -25, NaN, Infinity, '25', undefined, 5000]) {
    assert.throws(() => demo.createFrameStream({ width: 64, height: 48, fps }),
      (e) => e.code === 'VMAE_INVALID_INPUT' && /fps/.test(e.message), String(fps));
  }
  for (const [w, h] of [[0, 48], [64.5, 48], [64, -1], [64, 100000]]) {
    assert.throws(() => demo.createFrameStream({ width: w, height: h, fps: 25 }), { code: 'VMAE_INVALID_INPUT' });
  }
  const s = demo.createFrameStream({ width: 64, height: 48, fps: 25 });
  assert.throws(() => s.push(new Uint8Array(64 * 48 * 3)), /before classifyStream/);
  const it = demo.classifyStream(s);
  assert.throws(() => demo.classifyStream(s), { code: 'VMAE_INVALID_INPUT', message: /one classifyStream/ });
  assert.throws(() => s.push(new Uint8Array(100)), {
    code: 'VMAE_INVALID_INPUT', message: 'Expected 9216 bytes (64x48x3 rgb24) for frame 0 but received 100 bytes',
  });
  assert.throws(() => s.push([1, 2, 3]), { code: 'VMAE_INVALID_INPUT' });
  assert.equal(s.push(new Uint8Array(64 * 48 * 3)), true);
  s.end();
  assert.throws(() => s.push(new Uint8Array(64 * 48 * 3)), { code: 'VMAE_INVALID_INPUT', message: /after end/ });
  assert.deepEqual((await collect(it)).length, 1);
});

test('options are checked before anything starts', () => {
  const bad = [{ strideSec: 0 }, { strideSec: 1, strideFrames: 4 }, { strideFrames: 1.5 }, { sampleRate: 0 }, { mode: 'all' },
    { smoothing: { method: 'median' } }, { smoothing: { method: 'ema', alpha: 0 } }, { smoothing: { method: 'vote', windows: 0 } },
    { allowNetwork: 'yes' }, { topK: 99 }, { signal: {} }, { limits: { maxWidth: -1 } }];
  for (const o of bad) assert.throws(() => demo.classifyStream(testsrc, o), { code: 'VMAE_INVALID_INPUT' }, JSON.stringify(o));
  assert.throws(() => demo.classifyStream(42), { code: 'VMAE_INVALID_INPUT' });
});

test('smoothing: ema and vote over the windows, computed independently from the raw logits', async () => {
  const raw = await collect(demo.classifyStream(turn.file, { topK: 9 }));
  const softmax = (l) => {
    const m = Math.max(...l);
    const e = Array.from(l, (v) => Math.exp(v - m));
    const s = e.reduce((a, b) => a + b, 0);
    return e.map((v) => v / s);
  };
  const ema = await collect(demo.classifyStream(turn.file, { topK: 9, smoothing: { method: 'ema', alpha: 0.3 } }));
  let avg;
  ema.forEach((w, i) => {
    assert.deepEqual([...w.logits], [...raw[i].logits]); // logits stay raw
    const p = softmax(raw[i].logits);
    avg = avg ? avg.map((v, k) => 0.3 * p[k] + 0.7 * v) : p;
    for (const pred of w.predictions) assert.ok(Math.abs(pred.score - avg[pred.index]) < 1e-9);
    assert.equal(w.predictions[0].index, avg.indexOf(Math.max(...avg)));
  });
  const vote = await collect(demo.classifyStream(turn.file, { topK: 1, smoothing: { method: 'vote', windows: 3 } }));
  vote.forEach((w, i) => {
    const tops = raw.slice(Math.max(0, i - 2), i + 1).map((r) => r.predictions[0].index);
    const counts = new Map();
    for (const k of tops) counts.set(k, (counts.get(k) ?? 0) + 1);
    const best = Math.max(...counts.values());
    assert.equal(w.predictions[0].score, best / tops.length);
    assert.equal(counts.get(w.predictions[0].index), best);
  });
  // The one 'rotating' window at the turn (left, left, rotating) is voted away.
  const odd = raw.findIndex((w) => w.predictions[0].label === 'rotating');
  assert.ok(odd > 1);
  assert.equal(vote[odd].predictions[0].label, 'moving_left');
});

test('aborts: return() from the loop, or an AbortSignal, stops ffmpeg at once', async () => {
  for await (const w of demo.classifyStream(turn.file)) {
    assert.ok(w.predictions.length > 0);
    break; // return(): ffmpeg is killed and reaped before the loop exits
  }
  assert.deepEqual(ffmpegChildren(), []);

  // A Readable that never ends: only the abort stops it.
  const feed = new PassThrough();
  feed.write(fs.readFileSync(turn.file.replace(/\.mp4$/, '.mkv')));
  const ac = new AbortController();
  const it = demo.classifyStream(feed, { signal: ac.signal });
  const first = await it.next();
  assert.equal(first.done, false);
  assert.ok(ffmpegChildren().length === 1);
  ac.abort(new Error('camera unplugged'));
  await assert.rejects(it.next(), { code: 'VMAE_ABORTED', message: /camera unplugged/ });
  assert.deepEqual(ffmpegChildren(), []);
  assert.deepEqual(await it.next(), { value: undefined, done: true });

  // An already aborted signal: nothing starts.
  await assert.rejects(collect(demo.classifyStream(turn.file, { signal: AbortSignal.abort() })), { code: 'VMAE_ABORTED' });

  // A FrameStream: push() after the consumer stopped says so.
  const s = demo.createFrameStream({ width: 32, height: 32, fps: 25 });
  const pushIt = demo.classifyStream(s);
  await pushIt.return();
  assert.throws(() => s.push(new Uint8Array(32 * 32 * 3)), { code: 'VMAE_ABORTED' });
});

test('disposing the classifier mid-stream rejects the iterator with VMAE_DISPOSED', async () => {
  const clf = await VideoClassifier.load(undefined, { threads: 1 });
  const it = clf.classifyStream(turn.file);
  assert.equal((await it.next()).done, false);
  await clf.dispose();
  await assert.rejects(collect(it), { code: 'VMAE_DISPOSED' });
  assert.throws(() => clf.classifyStream(turn.file), { code: 'VMAE_DISPOSED' });
});

test('a failing source rejects with VMAE_DECODE_FAILED and ffmpeg\'s message', async () => {
  const bad = path.join(dir, 'bad.mp4');
  fs.writeFileSync(bad, 'definitely not a video');
  await assert.rejects(collect(demo.classifyStream(bad)), { code: 'VMAE_DECODE_FAILED', message: /Invalid data found/ });
  const feed = new PassThrough();
  feed.end(Buffer.from('still not a video'));
  await assert.rejects(collect(demo.classifyStream(feed)), { code: 'VMAE_DECODE_FAILED' });
  await assert.rejects(collect(demo.classifyStream(path.join(dir, 'missing.mp4'))), { code: 'VMAE_INVALID_INPUT', message: /no such file/ });
});

test('network: a URL is refused without allowNetwork before ffmpeg starts; with it, ffmpeg reads from loopback HTTP', async (t) => {
  const mkv = fs.readFileSync(turn.file.replace(/\.mp4$/, '.mkv'));
  const requests = [];
  const server = http.createServer((req, res) => {
    requests.push(req.url);
    res.writeHead(200, { 'content-type': 'video/x-matroska' });
    res.end(mkv);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise((resolve) => server.close(resolve)));
  const url = `http://127.0.0.1:${server.address().port}/turn.mkv`;
  for (const u of [url, 'rtsp://127.0.0.1:8554/cam', 'srt://127.0.0.1:9000', 'HTTPS://127.0.0.1/x']) {
    assert.throws(() => demo.classifyStream(u), { code: 'VMAE_INVALID_INPUT', message: /allowNetwork: true/ });
    assert.throws(() => demo.classifyStream(u, { allowNetwork: false }), { code: 'VMAE_INVALID_INPUT' });
  }
  assert.deepEqual(ffmpegChildren(), []);
  // Give a request that was (wrongly) sent time to reach the server: one full round trip through it.
  await new Promise((resolve) => http.get(`${url}?probe`, (res) => res.resume().on('end', resolve)));
  assert.deepEqual(requests, ['/turn.mkv?probe']);

  const results = await collect(demo.classifyStream(url, { allowNetwork: true, mode: 'every', topK: 1 }));
  assert.equal(results.length, 11);
  assert.equal(results[0].predictions[0].label, 'moving_left');
  assert.ok(requests.includes('/turn.mkv'));
});

/** Runs `node lib/cli.js …`; resolves with { code, stdout, stderr }. */
function cli(args, stdinFile) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [path.join(__dirname, '..', 'lib', 'cli.js'), ...args],
      { stdio: [stdinFile ? fs.openSync(stdinFile, 'r') : 'ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (s) => { stdout += s; });
    child.stderr.on('data', (s) => { stderr += s; });
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

test('videomae watch: NDJSON per window from a file and from stdin, the same windows as classifyStream', async () => {
  const api = await collect(demo.classifyStream(turn.file, { topK: 2 }));
  const fromFile = await cli(['watch', turn.file, '--json', '-k', '2', '--threads', '1']);
  assert.equal(fromFile.code, 0, fromFile.stderr);
  const lines = fromFile.stdout.trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(lines.length, api.length);
  lines.forEach((l, i) => {
    assert.equal(l.endFrame, api[i].endFrame);
    assert.deepEqual(l.predictions.map((p) => p.label), api[i].predictions.map((p) => p.label));
    assert.ok(Math.abs(l.predictions[0].score - api[i].predictions[0].score) < 1e-6);
    assert.equal(typeof l.latencyMs, 'number');
  });
  // '-': matroska bytes on stdin; mode every so that no window is dropped on a busy machine.
  const fromStdin = await cli(['watch', '-', '--json', '--mode', 'every', '--every', '2s', '--threads', '1'],
    turn.file.replace(/\.mp4$/, '.mkv'));
  assert.equal(fromStdin.code, 0, fromStdin.stderr);
  const ends = fromStdin.stdout.trim().split('\n').map((l) => JSON.parse(l).endSec);
  assert.deepEqual(ends, [1.75, 3.75, 5.75, 7.75, 9.75, 11.75]);
  // The terminal format: one line per window.
  const text = await cli(['watch', turn.file, '--threads', '1', '--smooth', 'vote:3']);
  assert.equal(text.code, 0, text.stderr);
  const rows = text.stdout.trim().split('\n');
  assert.equal(rows.length, 11);
  assert.match(rows[0], /^\s*1\.75 s {2}moving_left\s+\d+\.\d%/);
  const refused = await cli(['watch', 'rtsp://127.0.0.1:1/cam']);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /VMAE_INVALID_INPUT.*allowNetwork/);
});
