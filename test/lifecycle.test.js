'use strict';
// Lifecycle (issue 6): dispose() with work in flight, classifiers dropped without dispose(),
// process exit with pending work, and cancellation by AbortSignal and timeoutMs. The scenarios
// that could crash run in forked processes (as classic-level's env-cleanup tests do), and the
// assertions are on their exit code, signal and output.
const assert = require('node:assert/strict');
const path = require('node:path');
const { after, before, test } = require('node:test');

const { VideoClassifier, Tensor, VideoMAEError } = require('..');
const { randomFloats, maxAbsDiff } = require('./helpers/fixtures');
const { runChild, describeChild, childProcesses } = require('./helpers/child');
const { slowModel, heavyModel, clipShape } = require('./helpers/models');

/** Timing bounds are multiplied by this (scripts/sanitize.sh raises it: the ASan build is slower). */
const SLACK = Number(process.env.VMAE_TIMING_SLACK ?? 1);
/** The addon stops its threads on process 'exit' (stopAll), without which exit can crash mid-forward. */
const hasExitFix = (() => {
  try {
    return typeof require('../lib/native').native().stopAll === 'function';
  } catch {
    return false;
  }
})();
/** The addon keeps OpenBLAS single-threaded, without which a fork during a GEMM hangs (no API tells). */
const hasForkFix = (() => {
  try {
    const n = require('../lib/native');
    n.native();
    return require('node:fs').readFileSync(n.nativePath).includes('openblas_set_num_threads');
  } catch {
    return false;
  }
})();

let video; // a small mp4, when ffmpeg is there

before(() => {
  // Build the cached fixtures once, here, rather than racing in several children.
  slowModel();
  heavyModel();
  try {
    const { tmpDir, ffmpeg } = require('./helpers/video');
    video = path.join(tmpDir('vmae-lifecycle-'), 'small.mp4');
    ffmpeg(['-f', 'lavfi', '-i', 'testsrc=duration=3:size=160x120:rate=25', '-c:v', 'mpeg4', video]);
  } catch {
    video = undefined;
  }
});

function assertClean(r, code = 0) {
  assert.equal(r.signal, null, `the child was killed by a signal: ${describeChild(r)}`);
  assert.equal(r.timedOut, false, `the child hung: ${describeChild(r)}`);
  assert.equal(r.code, code, describeChild(r));
}

test('dispose() with requests in flight: the running one completes, queued ones reject VMAE_DISPOSED, later calls reject', async () => {
  const r = await runChild(`
    const { VideoClassifier, Tensor } = vmae;
    const { slowModel, clipShape } = require(ROOT + '/test/helpers/models');
    (async () => {
      const out = {};
      for (const variant of ['plain', 'batching']) {
        const clf = await VideoClassifier.load(slowModel().model, variant === 'plain'
          ? { threads: 1, maxQueue: 1000 } : { threads: 1, maxQueue: 1000, maxBatchSize: 8, maxBatchDelayMs: 50 });
        const shape = clipShape(clf);
        const size = shape.reduce((a, b) => a * b, 1);
        const x = Tensor.fromBuffer(fixtures.randomFloats(size, 1), shape);
        const settle = (p) => p.then(() => 'ok', (e) => (e && e.code) || String(e));
        const first = settle(clf.classify(x));
        await new Promise((r) => setTimeout(r, 15)); // the first forward (or batch) is running by now
        const rest = [];
        for (let i = 0; i < 10; i++) rest.push(settle(clf.classify(x)));
        rest.push(settle(clf.classifyBatch(Tensor.fromBuffer(new Float32Array(2 * size), [2, ...shape]))));
        const [t, , h, w] = shape;
        const raw = { data: Buffer.alloc(t * h * w * 3, 9), frames: t, height: h, width: w };
        if (clf.classifyFrames) rest.push(settle(clf.classifyFrames(raw)));
        if (clf.preprocess) rest.push(settle(clf.preprocess(raw)));
        const d1 = clf.dispose();
        const same = d1 === clf.dispose();
        await d1;
        const later = [settle(clf.classify(x)), settle(clf.classifyBatch(Tensor.fromBuffer(new Float32Array(size), [1, ...shape])))];
        if (clf.classifyFrames) later.push(settle(clf.classifyFrames(raw)));
        if (clf.preprocess) later.push(settle(clf.preprocess(raw)));
        if (clf.classifyVideo && process.env.VMAE_TEST_VIDEO) {
          // Refused up front, not after ffmpeg decoded the whole file.
          const t0 = performance.now();
          later.push(settle(clf.classifyVideo(process.env.VMAE_TEST_VIDEO)).then((c) => performance.now() - t0 < 50 ? c : c + ' (slow)'));
        }
        await clf.dispose();
        await clf[Symbol.asyncDispose]();
        out[variant] = { first: await first, rest: await Promise.all(rest), later: await Promise.all(later), same };
      }
      report(out);
    })();
  `, { env: { VMAE_TEST_VIDEO: video ?? '' } });
  assertClean(r);
  for (const [variant, o] of Object.entries(r.result)) {
    // The queue is FIFO: what ran before or during dispose() succeeded (the first request was
    // running, so it did), and everything after it was rejected.
    const all = [o.first, ...o.rest];
    assert.equal(o.first, 'ok', `${variant}: the running request got ${o.first}`);
    const ran = all.indexOf('VMAE_DISPOSED');
    assert.ok(ran > 0 && all.slice(0, ran).every((c) => c === 'ok') && all.slice(ran).every((c) => c === 'VMAE_DISPOSED'),
      `${variant}: ${all}`);
    assert.ok(all.length - ran >= 5, `${variant}: queued requests were rejected: ${all}`);
    assert.ok(o.later.every((c) => c === 'VMAE_DISPOSED'), `${variant}: calls after dispose: ${o.later}`);
    assert.equal(o.same, true, 'a second dispose() returns the same promise');
  }
});

test('classifiers dropped without dispose() are collected: threads joined, memory returned', async (t) => {
  const r = await runChild(`
    const { VideoClassifier, Tensor } = vmae;
    const { heavyModel, clipShape } = require(ROOT + '/test/helpers/models');
    const { threadCount, rss } = require(ROOT + '/test/helpers/child');
    const tick = () => new Promise((r) => setTimeout(r, 5));
    async function collect() {
      // Node-API finalizers may run after the GC, from the event loop: give them turns.
      for (let i = 0; i < 8; i++) { gc(); await tick(); }
    }
    (async () => {
      const { model } = heavyModel();
      const load = () => VideoClassifier.load(model, { threads: 1 });
      let clf = await load();
      const shape = clipShape(clf);
      const x = Tensor.fromBuffer(fixtures.randomFloats(shape.reduce((a, b) => a * b, 1), 5), shape);
      const expected = (await clf.classify(x)).logits;
      // Warm-up: libtorch and the allocator make their one-time allocations.
      for (let i = 0; i < 3; i++) { await clf.classify(x); clf = null; await collect(); clf = await load(); }
      clf = null;
      await collect();
      const threads0 = threadCount();
      const rss0 = rss();
      let peakThreads = 0;
      const samples = [];
      for (let i = 0; i < 30; i++) {
        let c = await load();
        await c.classify(x);
        peakThreads = Math.max(peakThreads, threadCount());
        c = null;
        if (i % 5 === 4) { await collect(); samples.push(rss()); }
      }
      await collect();
      const threads1 = threadCount();
      const rss1 = rss();

      // A classifier with requests in flight is kept alive by them, even when nothing else refers to it.
      let kept = await load();
      const pending = Array.from({ length: 20 }, () => kept.classify(x));
      kept = null;
      await collect();
      const results = await Promise.all(pending);
      const worst = Math.max(...results.map((res) => Math.max(...res.logits.map((v, i) => Math.abs(v - expected[i])))));
      report({ threads0, threads1, peakThreads, rss0, rss1, samples, worst });
    })();
  `, { execArgv: ['--expose-gc'], timeoutMs: 120_000 });
  assertClean(r);
  const o = r.result;
  const mb = (b) => (b / 1e6).toFixed(0);
  t.diagnostic(`threads ${o.threads0} -> ${o.threads1} (peak ${o.peakThreads}); RSS ${mb(o.rss0)} -> ${mb(o.rss1)} MB; ` +
    `every 5 loads: ${o.samples.map(mb).join(', ')} MB`);
  assert.ok(o.threads1 <= o.threads0 + 1, `inference threads were not joined: ${o.threads0} -> ${o.threads1}`);
  // 30 loads of ~21 MB of weights: 630 MB if none were freed.
  assert.ok(o.rss1 - o.rss0 < 100e6, `RSS grew by ${mb(o.rss1 - o.rss0)} MB over 30 dropped classifiers`);
  assert.ok(o.samples[o.samples.length - 1] - o.samples[1] < 50e6, `RSS keeps growing: ${o.samples.map(mb)}`);
  assert.ok(o.worst < 1e-5, 'requests of an unreferenced classifier still give the right answer');
});

test('dropped classifiers are collected without explicit gc() (external memory pressure)', async (t) => {
  // The addon reports each model's weights with napi_adjust_external_memory, so V8 schedules
  // collections as they pile up. (Node 20 does not show that figure in process.memoryUsage().)
  const r = await runChild(`
    const { VideoClassifier, Tensor } = vmae;
    const { heavyModel, clipShape } = require(ROOT + '/test/helpers/models');
    const { threadCount, rss } = require(ROOT + '/test/helpers/child');
    (async () => {
      const { model } = heavyModel();
      const rss0 = rss();
      let peak = 0;
      let peakThreads = 0;
      for (let i = 0; i < 60; i++) {
        let c = await VideoClassifier.load(model, { threads: 1 });
        c = null;
        await new Promise((r) => setTimeout(r, 1));
        peak = Math.max(peak, rss() - rss0);
        peakThreads = Math.max(peakThreads, threadCount());
      }
      report({ peak, peakThreads });
    })();
  `, { timeoutMs: 120_000 });
  assertClean(r);
  t.diagnostic(`peak RSS growth ${(r.result.peak / 1e6).toFixed(0)} MB over 60 dropped loads of ~21 MB; peak threads ${r.result.peakThreads}`);
  assert.ok(r.result.peak < 600e6, `peak RSS growth ${(r.result.peak / 1e6).toFixed(0)} MB (1260 MB if none were collected)`);
});

/** Child sources that leave work pending and end the process in different ways. */
const EXIT_SCENARIOS = {
  'process.exit() with a forward running and 200 queued': { code: 0, runs: 4, body: `
    for (let i = 0; i < 200; i++) clf.classify(x).catch(() => {});
    await new Promise((r) => setTimeout(r, 30));
    mark(); process.exit(0);` },
  'process.exit() from the first result, with the rest queued': { code: 0, body: `
    const all = Array.from({ length: 100 }, () => clf.classify(x));
    all.forEach((p) => p.catch(() => {}));
    await all[0];
    mark(); process.exit(0);` },
  'an uncaught exception with work queued': { code: 1, stderr: /boom/, body: `
    for (let i = 0; i < 100; i++) clf.classify(x).catch(() => {});
    setTimeout(() => { mark(); throw new Error('boom'); }, 30);` },
  'an unhandled rejection with work queued': { code: 1, stderr: /unhandled boom/, body: `
    for (let i = 0; i < 100; i++) clf.classify(x).catch(() => {});
    await new Promise((r) => setTimeout(r, 30));
    mark(); Promise.reject(new Error('unhandled boom'));` },
  'dispose() then process.exit() at once': { code: 0, body: `
    for (let i = 0; i < 50; i++) clf.classify(x).catch(() => {});
    await new Promise((r) => setTimeout(r, 30));
    clf.dispose(); mark(); process.exit(0);` },
  'the script ends with work pending (the loop drains it)': { code: 0, stdout: /done 20/, body: `
    let done = 0;
    for (let i = 0; i < 20; i++) clf.classify(x).then(() => { if (++done === 20) console.log('done 20'); });
    mark();` },
  'a worker classifying while the main thread calls process.exit()': { code: 0, body: `
    const { Worker } = require('node:worker_threads');
    const w = new Worker(ROOT + '/test/helpers/worker-classify.js', { workerData: { model: heavyModel().model, loop: true } });
    await new Promise((r) => w.once('message', r));
    await new Promise((r) => setTimeout(r, 50));
    mark(); process.exit(0);` },
};

test('process exit with pending work exits cleanly within 5 s', { todo: hasExitFix ? false : 'needs the native stopAll() exit fix (see docs/RELIABILITY.md)' }, async () => {
  const failures = [];
  for (const [name, s] of Object.entries(EXIT_SCENARIOS)) {
    for (let run = 0; run < (s.runs ?? 2); run++) {
      const r = await runChild(`
        const { VideoClassifier, Tensor } = vmae;
        const { heavyModel, slowModel, clipShape } = require(ROOT + '/test/helpers/models');
        const mark = () => process.stderr.write('@@MARK ' + Date.now() + '\\n');
        (async () => {
          // ~8 ms forwards back to back: exit lands in the middle of one almost every time.
          const clf = await VideoClassifier.load(heavyModel().model, { threads: 1, maxQueue: 1000 });
          const shape = clipShape(clf);
          const x = Tensor.fromBuffer(fixtures.randomFloats(shape.reduce((a, b) => a * b, 1), 1), shape);
          ${s.body}
        })();
      `, { timeoutMs: 30_000 });
      const marked = /@@MARK (\d+)/.exec(r.stderr);
      const sinceMark = marked ? Date.now() - Number(marked[1]) : Infinity;
      const problems = [];
      if (r.signal !== null || r.timedOut) problems.push(`killed by ${r.signal}${r.timedOut ? ' (timed out)' : ''}`);
      else if (r.code !== s.code) problems.push(`exit code ${r.code}, expected ${s.code}`);
      if (s.stderr && !s.stderr.test(r.stderr)) problems.push(`stderr lacks ${s.stderr}`);
      if (s.stdout && !s.stdout.test(r.stdout)) problems.push(`stdout lacks ${s.stdout}`);
      if (!marked) problems.push('never reached the exit point');
      else if (sinceMark > 5000 * SLACK + 1000) problems.push(`took ${sinceMark} ms to exit`);
      if (problems.length) failures.push(`${name} (run ${run + 1}): ${problems.join('; ')}\n${describeChild(r)}`);
    }
  }
  assert.deepEqual(failures, []);
});

test('spawning child processes while inference runs never hangs the process', { todo: hasForkFix ? false : 'needs the native OpenBLAS fork patch (docs/RELIABILITY.md)' }, async () => {
  // Node forks for child_process (and classifyVideo forks ffmpeg). OpenBLAS's pthread build stops
  // its thread pool in a pthread_atfork handler; a GEMM running on the inference thread at that
  // moment then waits forever. In a child, with a deadline, so a hang cannot stall this suite.
  const r = await runChild(`
    const { execFileSync, spawn } = require('node:child_process');
    const { VideoClassifier, Tensor } = vmae;
    const { slowModel, clipShape } = require(ROOT + '/test/helpers/models');
    (async () => {
      const clf = await VideoClassifier.load(slowModel().model, { threads: 1, maxQueue: 1000 });
      const shape = clipShape(clf);
      const x = Tensor.fromBuffer(fixtures.randomFloats(shape.reduce((a, b) => a * b, 1), 1), shape);
      let forwards = 0;
      let stop = false;
      const loop = async () => { while (!stop) { await clf.classify(x); forwards++; } };
      const loops = [loop(), loop(), loop()];
      let spawned = 0;
      // At least 3 s and at least 10 forwards overlapping the spawns: under the sanitizer a
      // forward is several times slower, and a fixed time alone left too few to mean anything.
      const until = Date.now() + 3000;
      while (Date.now() < until || forwards < 10) {
        execFileSync('true');
        await new Promise((resolve, reject) => spawn('true').once('exit', resolve).once('error', reject));
        spawned += 2;
      }
      stop = true;
      await Promise.all(loops);
      await clf.dispose();
      report({ forwards, spawned });
    })();
  `, { timeoutMs: 180_000 }); // a hang guard: a hang never ends, a slow machine does
  assertClean(r);
  assert.ok(r.result.forwards >= 10 && r.result.spawned > 10, JSON.stringify(r.result));
});

// ---- cancellation, in this process -------------------------------------------------------------

let slow;
let x;
let expected;

before(async () => {
  slow = await VideoClassifier.load(slowModel().model, { threads: 1, maxQueue: 1000 });
  const shape = clipShape(slow);
  x = Tensor.fromBuffer(randomFloats(shape.reduce((a, b) => a * b, 1), 3), shape);
  expected = (await slow.classify(x)).logits;
  // A burst fills the classifier's staging pool, as in a service that has been running: the tests
  // below compare abort and timeout latency with a forward, and the first copy of a 9.6 MB input
  // into fresh memory costs 5-24 ms of page faults depending on the machine (a VM's faults are dear).
  await Promise.all(Array.from({ length: 10 }, () => slow.classify(x)));
});

after(async () => {
  await slow?.dispose();
});

const codeOf = (p) => p.then(() => 'ok', (e) => (e instanceof VideoMAEError ? e.code : `not a VideoMAEError: ${e}`));

test('AbortSignal cancels queued work at once; the running forward finishes and the classifier stays right', async () => {
  // Timing is asserted as order (before the running forward ends), which holds on a loaded machine.
  const running = slow.classify(x);
  const runningDone = running.then(() => performance.now());
  const controller = new AbortController();
  const queued = Array.from({ length: 8 }, () => slow.classify(x, { signal: controller.signal }));
  const times = queued.map((p) => p.then(() => performance.now(), () => performance.now()));
  await new Promise((r) => setTimeout(r, 5));
  const abortedAt = performance.now();
  controller.abort(new Error('user pressed stop'));
  const codes = await Promise.all(queued.map(codeOf));
  assert.deepEqual(codes, Array(8).fill('VMAE_ABORTED'));
  const err = await queued[0].catch((e) => e);
  assert.match(err.message, /aborted: user pressed stop/);
  assert.equal(err.cause.message, 'user pressed stop');
  const settled = Math.max(...(await Promise.all(times)));
  assert.ok(settled < (await runningDone), `aborted requests settled ${(settled - abortedAt).toFixed(1)} ms after ` +
    'abort(), after the running forward ended');
  assert.ok(maxAbsDiff((await running).logits, expected) < 1e-6);

  // Aborting the running request rejects at once; its result is dropped, nothing else is affected.
  const c2 = new AbortController();
  const run2 = slow.classify(x, { signal: c2.signal });
  const behind = slow.classify(x);
  const behindDone = behind.then(() => performance.now());
  await new Promise((r) => setTimeout(r, 5));
  c2.abort();
  assert.equal(await codeOf(run2), 'VMAE_ABORTED');
  assert.ok(performance.now() < (await behindDone), 'a running request rejects on abort without waiting for its forward');
  assert.ok(maxAbsDiff((await behind).logits, expected) < 1e-6);

  // An already-aborted signal rejects before any work is queued.
  assert.equal(await codeOf(slow.classify(x, { signal: AbortSignal.abort() })), 'VMAE_ABORTED');
  assert.equal(await codeOf(slow.classifyBatch(Tensor.fromBuffer(x.data, [1, ...x.shape]), { signal: AbortSignal.abort() })), 'VMAE_ABORTED');
});

test('timeoutMs rejects VMAE_TIMEOUT on time, for queued and for running requests', async () => {
  const ahead = Array.from({ length: 4 }, () => slow.classify(x));
  const secondDone = ahead[1].then(() => performance.now());
  const t0 = performance.now();
  const late = slow.classify(x, { timeoutMs: 10 });
  assert.equal(await codeOf(late), 'VMAE_TIMEOUT');
  const lateAt = performance.now();
  assert.ok(lateAt < (await secondDone), `a queued request timed out after ${(lateAt - t0).toFixed(0)} ms (timeoutMs 10), ` +
    'not when the queue reached it');
  const err = await late.catch((e) => e);
  assert.match(err.message, /timeoutMs \(10 ms\)/);
  for (const p of ahead) assert.ok(maxAbsDiff((await p).logits, expected) < 1e-6);
  // A request that finishes in time is not affected by its timer.
  assert.ok(maxAbsDiff((await slow.classify(x, { timeoutMs: 60_000 })).logits, expected) < 1e-6);
  // Invalid values are refused.
  for (const bad of [0, -1, 1.5, NaN, Infinity, 2 ** 31, '10']) {
    assert.equal(await codeOf(slow.classify(x, { timeoutMs: bad })), 'VMAE_INVALID_INPUT', `timeoutMs ${bad}`);
  }
});

test('raw frames honour AbortSignal and timeoutMs too', async (t) => {
  if (typeof slow.classifyFrames !== 'function') return t.skip('classifyFrames() is not there yet');
  const [f, , h, w] = clipShape(slow);
  const raw = { data: Buffer.alloc(f * h * w * 3, 100), frames: f, height: h, width: w };
  const ahead = [slow.classify(x), slow.classify(x)];
  const controller = new AbortController();
  const p1 = slow.classifyFrames(raw, { signal: controller.signal });
  const p2 = slow.classifyFrames(raw, { timeoutMs: 5 });
  const p3 = typeof slow.preprocess === 'function' ? slow.preprocess(raw, { signal: AbortSignal.abort() }) : Promise.reject(new VideoMAEError('VMAE_ABORTED', 'n/a'));
  controller.abort();
  assert.deepEqual(await Promise.all([codeOf(p1), codeOf(p2), codeOf(p3)]), ['VMAE_ABORTED', 'VMAE_TIMEOUT', 'VMAE_ABORTED']);
  await Promise.all(ahead);
  assert.equal((await slow.classifyFrames(raw)).logits.length, 5);
});

test('aborting or timing out classifyVideo kills and reaps its ffmpeg children', { timeout: 120_000 }, async (t) => {
  if (typeof slow.classifyVideo !== 'function') return t.skip('classifyVideo() is not there yet');
  const { tmpDir, ffmpeg, ffmpegChildren } = require('./helpers/video');
  const dir = tmpDir('vmae-lifecycle-');
  const file = path.join(dir, 'long.mp4');
  // 20 s of 640x480 at 25 fps: long enough that decoding is under way when we stop it.
  ffmpeg(['-f', 'lavfi', '-i', 'testsrc=duration=20:size=640x480:rate=25', '-c:v', 'mpeg4', '-q:v', '5', file]);
  const outcomes = [];
  for (const delay of [0, 5, 20, 50, 100, 200, 400]) {
    const controller = new AbortController();
    const p = slow.classifyVideo(file, { signal: controller.signal, clips: 2 });
    setTimeout(() => controller.abort(), delay);
    const code = await codeOf(p);
    outcomes.push(`${delay} ms: ${code}`);
    assert.ok(['VMAE_ABORTED', 'ok'].includes(code), `abort after ${delay} ms gave ${code}`);
    assert.deepEqual(ffmpegChildren(), [], `ffmpeg children left after an abort at ${delay} ms`);
  }
  for (const timeoutMs of [1, 30, 150]) {
    const code = await codeOf(slow.classifyVideo(file, { timeoutMs, clips: 2 }));
    outcomes.push(`timeoutMs ${timeoutMs}: ${code}`);
    assert.ok(['VMAE_TIMEOUT', 'ok'].includes(code), `timeoutMs ${timeoutMs} gave ${code}`);
    assert.deepEqual(ffmpegChildren(), [], `ffmpeg children left after timeoutMs ${timeoutMs}`);
  }
  t.diagnostic(outcomes.join(', '));
  assert.ok(outcomes.filter((o) => /ABORTED|TIMEOUT/.test(o)).length >= 6, 'most runs were stopped mid-way');
  assert.deepEqual(childProcesses().filter((c) => /^ff/.test(c.comm)), []);
  // The classifier is fine afterwards.
  assert.ok(maxAbsDiff((await slow.classify(x)).logits, expected) < 1e-6);
});
