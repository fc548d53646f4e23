'use strict';
// Untrusted video input: names that look like URLs, ffmpeg protocols or options are only ever local
// file names (a loopback server proves nothing reaches the network), playlists and concat scripts
// inside files cannot reach it either, and a decode bomb is refused quickly with flat memory.
const assert = require('node:assert/strict');
const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const { test, before, after, afterEach } = require('node:test');

const { VideoClassifier } = require('../lib');
const { tmpDir, videoModel, ffmpeg, ffmpegChildren } = require('./helpers/video');

let clf;
let dir;
let server;
let port;
let mp4;
const hits = [];

before(async () => {
  dir = tmpDir('vmae-sec-');
  server = http.createServer((req, res) => {
    hits.push(`${req.method} ${req.url}`);
    res.end('');
  });
  server.on('connection', () => hits.push('connection'));
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = server.address().port;
  mp4 = path.join(dir, 'clip.mp4');
  ffmpeg(['-f', 'lavfi', '-i', 'testsrc=size=64x48:rate=25', '-frames:v', '20', '-c:v', 'libx264', '-pix_fmt', 'yuv420p', mp4]);
  clf = await VideoClassifier.load(videoModel().model, { threads: 1 });
  // Relative names below resolve against the temp folder.
  process.chdir(dir);
});
after(async () => {
  await clf?.dispose();
  await new Promise((resolve) => server.close(resolve));
});
afterEach(() => {
  assert.deepEqual(hits, [], 'the loopback server was contacted');
  assert.deepEqual(ffmpegChildren(), [], 'an ffmpeg/ffprobe process was left behind');
});

test('URL-, protocol- and option-like names are local file names, never fetched', async () => {
  const url = `http://127.0.0.1:${port}/x.mp4`;
  const names = [
    url,
    `concat:${url}|${url}`,
    `subfile,,start,0,end,0,,:${url}`,
    `tcp://127.0.0.1:${port}`,
    `hls+http://127.0.0.1:${port}/x.m3u8`,
    `async:${url}`,
    `cache:${url}`,
    'pipe:0',
    '-i',
    `-i ${url}`,
    '-version',
    `file:${url}`,
  ];
  for (const name of names) {
    await assert.rejects(clf.classifyVideo(name), (err) => {
      assert.equal(err.code, 'VMAE_INVALID_INPUT', name);
      assert.match(err.message, /^Expected an existing video file for input but received .* \(no such file/, name);
      return true;
    });
  }
});

test('a local file whose name looks like a protocol or an option is read as that file', async () => {
  fs.mkdirSync(path.join(dir, 'http:', `127.0.0.1:${port}`), { recursive: true });
  const names = [`http://127.0.0.1:${port}/x.mp4`, 'concat:a.mp4|b.mp4', 'subfile,,start,0,end,0,,:x.mp4', '-i.mp4', 'pipe:1'];
  const expected = await clf.classifyVideo(mp4);
  for (const name of names) {
    // 'http://127.0.0.1:PORT/x.mp4' resolves to ./http:/127.0.0.1:PORT/x.mp4.
    fs.copyFileSync(mp4, path.resolve(name));
    const r = await clf.classifyVideo(name);
    assert.deepEqual([...r.logits], [...expected.logits], name);
  }
});

test('playlists and concat scripts inside a file cannot reach the network', async () => {
  const url = `http://127.0.0.1:${port}`;
  const files = {
    'playlist.m3u8': `#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1.0,\n${url}/seg0.ts\n#EXT-X-ENDLIST\n`,
    'list.ffconcat': `ffconcat version 1.0\nfile '${url}/a.mp4'\n`,
    'redirect.mp4': `#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1.0,\n${url}/seg1.ts\n#EXT-X-ENDLIST\n`,
  };
  for (const [name, text] of Object.entries(files)) {
    fs.writeFileSync(path.join(dir, name), text);
    await assert.rejects(clf.classifyVideo(name), (err) => {
      assert.equal(err.code, 'VMAE_DECODE_FAILED', `${name}: ${err.message}`);
      // HLS stops at the protocol whitelist; the concat demuxer refuses URLs in safe mode.
      assert.match(err.message, name.endsWith('.ffconcat') ? /Unsafe file name/ : /Protocol 'http' not on whitelist/);
      return true;
    });
    // The same bytes as a Buffer or stream.
    await assert.rejects(clf.classifyVideo(Buffer.from(text)), { code: 'VMAE_DECODE_FAILED' });
  }
});

test('a decode bomb (tiny file, huge declared frame size) is refused fast with flat memory', async () => {
  // A 60-byte y4m whose header declares 10000x10000 frames (300 MB each as rgb24).
  const bomb = path.join(dir, 'bomb.y4m');
  fs.writeFileSync(bomb, 'YUV4MPEG2 W10000 H10000 F25:1 Ip A1:1 C420jpeg\nFRAME\nabcdefgh');
  global.gc?.();
  const rss = process.memoryUsage().rss;
  const started = Date.now();
  await assert.rejects(clf.classifyVideo(bomb), {
    code: 'VMAE_INVALID_INPUT',
    message: /^Expected a video of at most 8192x8192 pixels \(limits.maxWidth\/maxHeight\) but '.*bomb.y4m' is 10000x10000$/,
  });
  // The same through a Buffer.
  await assert.rejects(clf.classifyVideo(fs.readFileSync(bomb)), { code: 'VMAE_INVALID_INPUT' });
  const elapsed = Date.now() - started;
  const growth = (process.memoryUsage().rss - rss) / 2 ** 20;
  assert.ok(elapsed < 2000, `took ${elapsed} ms`);
  assert.ok(growth < 50, `RSS grew by ${growth.toFixed(1)} MB`);

  // Within the size limits but declaring 7000x7000: refused by a tighter limit as quickly.
  fs.writeFileSync(bomb, 'YUV4MPEG2 W7000 H7000 F25:1 Ip A1:1 C420jpeg\nFRAME\nabcdefgh');
  await assert.rejects(clf.classifyVideo(bomb, { limits: { maxWidth: 4096, maxHeight: 4096 } }), { code: 'VMAE_INVALID_INPUT' });
});

test('a stream longer than limits.maxInputBytes is cut off while spooling', async () => {
  const { Readable } = require('node:stream');
  let produced = 0;
  const endless = new Readable({
    read() {
      produced += 65536;
      this.push(Buffer.alloc(65536));
    },
  });
  await assert.rejects(clf.classifyVideo(endless, { limits: { maxInputBytes: 1 << 20 } }),
    { code: 'VMAE_INVALID_INPUT', message: /limits.maxInputBytes/ });
  assert.ok(produced < 4 << 20, `read ${produced} bytes`);
});
