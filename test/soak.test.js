'use strict';
// Soak (issue 6): 10,000 requests at concurrency 32 on the tiny model, mixing tensors, batches,
// raw frames, aborted requests and a few videos (a Buffer or a path), in a fresh process. No
// unexpected failure, every answer right, RSS growth after warm-up under 50 MB, no leaked file
// descriptors or child processes, and the event loop stays responsive.
const assert = require('node:assert/strict');
const path = require('node:path');
const { test } = require('node:test');

const { tinyModel } = require('./helpers/fixtures');
const { runChild, describeChild } = require('./helpers/child');

/** Timing bounds are multiplied by this (scripts/sanitize.sh raises it: the ASan build is slower). */
const SLACK = Number(process.env.VMAE_TIMING_SLACK ?? 1);

test('10,000 mixed requests at concurrency 32: no failures, bounded RSS, no leaked fds or children', { timeout: 300_000 }, async (t) => {
  tinyModel(); // cached before the child starts
  let video = '';
  try {
    const { tmpDir, ffmpeg } = require('./helpers/video');
    video = path.join(tmpDir('vmae-soak-'), 'soak.mp4');
    ffmpeg(['-f', 'lavfi', '-i', 'testsrc=duration=2:size=96x64:rate=25', '-c:v', 'mpeg4', video]);
  } catch (err) {
    t.diagnostic(`no video in the mix: ${err.message}`);
    video = '';
  }
  const r = await runChild("require(ROOT + '/test/helpers/soak-child.js');", {
    execArgv: ['--expose-gc'],
    env: { SOAK_REQUESTS: process.env.SOAK_REQUESTS ?? '10000', SOAK_CONCURRENCY: '32', SOAK_VIDEO: video },
    timeoutMs: 280_000,
  });
  assert.equal(r.signal, null, describeChild(r));
  assert.equal(r.code, 0, describeChild(r));
  const o = r.result;
  const mb = (b) => (b / 1e6).toFixed(1);
  t.diagnostic(`${o.requests} requests in ${(o.elapsedMs / 1000).toFixed(1)} s: ${JSON.stringify(o.counts)}`);
  t.diagnostic(`RSS ${mb(o.rssWarm)} -> ${mb(o.rssEnd)} MB after warm-up; fds ${o.fdsWarm} -> ${o.fdsEnd}; ` +
    `event-loop delay p99 ${o.loopDelayP99Ms.toFixed(1)} ms, max ${o.loopDelayMaxMs.toFixed(1)} ms`);
  assert.deepEqual(o.failures, [], `${o.failureCount} unexpected failures`);
  assert.equal(o.counts.busy, 0, 'maxQueue 256 is never reached at concurrency 32');
  const total = Object.values(o.counts).reduce((a, b) => a + b, 0);
  assert.equal(total, o.requests);
  if (o.hasFrames) assert.ok(o.counts.frames > 1000);
  if (o.hasVideo) assert.ok(o.counts.video >= 15);
  assert.ok(o.rssEnd - o.rssWarm < 50e6, `RSS grew ${mb(o.rssEnd - o.rssWarm)} MB after warm-up`);
  assert.ok(o.fdsEnd <= o.fdsWarm + 2, `file descriptors ${o.fdsWarm} -> ${o.fdsEnd}`);
  assert.deepEqual(o.children, [], 'child processes left behind');
  // 30-50 ms on this project's 2-core VM, where ffmpeg and two inference threads compete with the JS
  // thread for the CPU. It was 140-200 ms while ffmpeg was started with child_process: libuv forks,
  // and each fork of this 220 MB process blocked the JS thread and left every thread faulting on
  // its next writes (docs/RELIABILITY.md).
  assert.ok(o.loopDelayP99Ms < 100 * SLACK, `event-loop delay p99 ${o.loopDelayP99Ms.toFixed(1)} ms`);
});
