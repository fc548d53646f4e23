'use strict';
// Child processes (ffmpeg, ffprobe) start through the addon's posix_spawn, not libuv's fork():
// a fork of a process holding a model blocked the JS thread and made every thread fault on its next
// writes (docs/RELIABILITY.md). Pinned here: the pipes, exit codes and signals behave as
// child_process's do, and under strace the process that starts ffprobe and ffmpeg never forks.
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { test } = require('node:test');

const { start } = require('../lib/video/ffmpeg');
const { tmpDir, ffmpeg } = require('./helpers/video');

async function text(stream) {
  let s = '';
  for await (const chunk of stream) s += chunk;
  return s;
}

test('start(): stdout, stderr, stdin and fd 3 pipes, exit codes and signals', async () => {
  const echo = start('sh', ['-c', 'printf out; printf err >&2; printf three >&3; exit 3'], true);
  const [out, three] = await Promise.all([text(echo.stdout), text(echo.fd3)]);
  assert.deepEqual({ out, three, exit: await echo.exited, err: echo.stderr() },
    { out: 'out', three: 'three', exit: { code: 3, signal: null }, err: 'err' });

  const cat = start('cat', [], false, true);
  cat.stdin.end('through stdin');
  assert.equal(await text(cat.stdout), 'through stdin');
  assert.deepEqual(await cat.exited, { code: 0, signal: null });

  // Without a stdin pipe the process reads /dev/null.
  const none = start('cat', []);
  assert.equal(none.stdin, null);
  assert.equal(await text(none.stdout), '');

  const sleeper = start('sleep', ['60']);
  assert.deepEqual(await sleeper.kill(), { code: null, signal: 'SIGKILL' });
  assert.deepEqual(await sleeper.kill(), { code: null, signal: 'SIGKILL' }, 'a second kill() is harmless');
  const piped = start('sh', ['-c', 'kill -PIPE $$']);
  assert.deepEqual(await piped.exited, { code: null, signal: 'SIGPIPE' }, 'the child gets default signal dispositions');
});

test('start(): a binary that does not exist reports ENOENT and leaves nothing open', async () => {
  const before = fs.readdirSync('/proc/self/fd').length;
  const missing = start(path.join(os.tmpdir(), 'no-such-binary-vmae'), [], true, true);
  const exit = await missing.exited;
  assert.equal(exit.error?.code, 'ENOENT');
  assert.equal(fs.readdirSync('/proc/self/fd').length, before);
});

const strace = spawnSync('strace', ['-V']).status === 0;

test('classifyVideo starts ffprobe and ffmpeg without forking the process', { skip: !strace && 'strace is not installed' }, () => {
  const dir = tmpDir('vmae-spawn-');
  const video = path.join(dir, 'v.mp4');
  ffmpeg(['-f', 'lavfi', '-i', 'testsrc=duration=1:size=64x48:rate=10', '-c:v', 'mpeg4', video]);
  const { tinyModel } = require('./helpers/fixtures');
  const model = tinyModel().model;
  const marker = path.join(dir, 'MARKER-now-classifying');
  // The addon's loader test-loads the binary in a child (spawnSync, a fork) the first time: only the
  // clones after the marker count.
  const script = `
    const { VideoClassifier } = require(${JSON.stringify(path.join(__dirname, '..'))});
    (async () => {
      const clf = await VideoClassifier.load(${JSON.stringify(model)}, { threads: 1 });
      try { require('node:fs').openSync(${JSON.stringify(marker)}, 'r'); } catch {}
      const r = await clf.classifyVideo(${JSON.stringify(video)});
      await clf.dispose();
      console.log('classified', r.logits.length);
    })();`;
  const log = path.join(dir, 'strace.log');
  const r = spawnSync('strace', ['-f', '-qq', '-o', log, '-e', 'trace=clone,clone3,fork,vfork,openat,execve',
    process.execPath, '-e', script], { encoding: 'utf8', timeout: 120_000 });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /classified \d+/);
  const lines = fs.readFileSync(log, 'utf8').split('\n');
  const at = lines.findIndex((l) => l.includes('MARKER-now-classifying'));
  assert.ok(at >= 0, 'the marker is in the trace');
  const after = lines.slice(at);
  const execs = after.filter((l) => /execve\("[^"]*(ffmpeg|ffprobe)"/.test(l));
  assert.ok(execs.length >= 2, `ffprobe and ffmpeg ran:\n${execs.join('\n')}`);
  const clones = after.filter((l) => /\b(clone3?|fork|vfork)\(/.test(l));
  const forks = clones.filter((l) => !/CLONE_VM/.test(l));
  assert.deepEqual(forks, [], 'no clone without CLONE_VM (a fork) while classifying the video');
  assert.ok(clones.some((l) => /CLONE_VM/.test(l) && /CLONE_VFORK/.test(l)), `a vfork-style clone started them:\n${clones.join('\n')}`);
});
