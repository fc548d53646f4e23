'use strict';
// `videomae worker` processes on a real Redis (Debian's redis-server, started here on a free
// loopback port): results equal to a direct classifyVideo, bad jobs failing once with their code,
// transient failures retried, a SIGKILLed worker's job retaken, a Redis restart survived, and
// SIGTERM draining. Every wait is for an event (a job finishing, a log line, an exit), never a sleep.
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { after, before, test } = require('node:test');

const { ROOT } = require('./helpers/fixtures');
const { startRedis, startWorker, kill } = require('./helpers/queue');
const { ffmpeg } = require('./helpers/video');
const { VideoClassifier } = require('../lib');
const { VideoQueue } = require('../lib/queue');
const { Queue, QueueEvents } = require('bullmq');

const EXAMPLES = path.join(ROOT, 'examples');
const FILES = fs.readdirSync(EXAMPLES).filter((f) => f.endsWith('.mp4')).sort();
const TOP_K = 9; // every label of the demo model, so whole rankings are compared

let redis;
/** file -> the direct classifyVideo result of the same file, in this process. */
const expected = new Map();
const cleanups = [];

before(async () => {
  redis = await startRedis({ persistent: true });
  const clf = await VideoClassifier.load();
  try {
    for (const f of FILES) expected.set(f, await clf.classifyVideo(path.join(EXAMPLES, f), { topK: TOP_K }));
  } finally {
    await clf.dispose();
  }
});

after(async () => {
  for (const fn of cleanups.reverse()) await fn().catch(() => undefined);
  await redis?.stop();
});

/** Asserts that a worker's result is the direct classification of `file`. */
function assertSameAsDirect(result, file) {
  const want = expected.get(file);
  assert.ok(want, `no expected result for ${file}`);
  assert.equal(result.logits.length, want.logits.length);
  let diff = 0;
  for (let i = 0; i < want.logits.length; i++) diff = Math.max(diff, Math.abs(result.logits[i] - want.logits[i]));
  assert.ok(diff < 1e-5, `${file}: logits differ from the direct classifyVideo by ${diff}`);
  assert.deepEqual(result.predictions.map((p) => p.label), want.predictions.map((p) => p.label), file);
  result.predictions.forEach((p, i) => assert.ok(Math.abs(p.score - want.predictions[i].score) < 1e-6, `${file}: score ${i}`));
  assert.equal(result.views, want.views);
  assert.equal(result.framesDecoded, want.framesDecoded);
}

function workerArgs(queue, name, extra = []) {
  return ['--redis', redis.url, '--queue', queue, '--name', name, ...extra];
}

/** A producer, closed after the suite. */
function producer(queue, options = {}) {
  const q = new VideoQueue({ redis: redis.url, queue, backoffMs: 0, ...options });
  cleanups.push(() => q.close());
  return q;
}

/** A raw BullMQ Queue and QueueEvents, for what VideoQueue does not expose (untrusted payloads, events). */
async function raw(queue) {
  const q = new Queue(queue, { connection: { url: redis.url, maxRetriesPerRequest: null } });
  const events = new QueueEvents(queue, { connection: { url: redis.url, maxRetriesPerRequest: null } });
  q.on('error', () => undefined);
  events.on('error', () => undefined);
  await events.waitUntilReady();
  cleanups.push(async () => {
    // As VideoQueue.close() does: QueueEvents.close() alone can wait forever on its blocking read.
    const closed = events.close().catch(() => undefined);
    await events.getBackend().close(true).catch(() => undefined);
    await closed;
    await q.close();
  });
  return { q, events };
}

async function failsOnce(vq, q, jobId, code, re) {
  await assert.rejects(vq.result(jobId), (err) => {
    assert.equal(err.name, 'VideoMAEError');
    assert.equal(err.code, code, err.message);
    if (re) assert.match(err.message, re);
    return true;
  });
  const job = await q.getJob(jobId);
  assert.equal(job.attemptsMade, 1, `job ${jobId} (${JSON.stringify(job.data).slice(0, 80)}) ran ${job.attemptsMade} times`);
  assert.equal(await job.getState(), 'failed');
}

test('bad jobs fail once with their code, transient failures are retried, and the worker survives it all', async () => {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'vmae-queue-'));
  cleanups.push(async () => fs.rmSync(base, { recursive: true, force: true }));
  const root = path.join(base, 'root');
  fs.mkdirSync(root);
  fs.copyFileSync(path.join(EXAMPLES, 'moving_left.mp4'), path.join(root, 'good.mp4'));
  fs.writeFileSync(path.join(root, 'corrupt.mp4'), crypto.randomBytes(4096));
  fs.copyFileSync(path.join(EXAMPLES, 'static.mp4'), path.join(base, 'outside.mp4'));
  fs.symlinkSync(path.join(base, 'outside.mp4'), path.join(root, 'link.mp4'));

  const w = await startWorker(workerArgs('q-bad', 'wb', ['--root', root, '--max-inline-bytes', '65536', '-c', '2',
    '--metrics-port', '0', '--metrics-host', '127.0.0.1']));
  cleanups.push(() => kill(w));
  const vq = producer('q-bad', { attempts: 5, maxInlineBytes: 1 << 20 });
  const { q } = await raw('q-bad');

  await failsOnce(vq, q, await vq.enqueue('missing.mp4', { topK: TOP_K }), 'VMAE_INVALID_INPUT', /no such file/);
  await failsOnce(vq, q, await vq.enqueue('../outside.mp4'), 'VMAE_INVALID_INPUT', /outside the worker's root/);
  await failsOnce(vq, q, await vq.enqueue(path.join(base, 'outside.mp4')), 'VMAE_INVALID_INPUT', /outside the worker's root/);
  await failsOnce(vq, q, await vq.enqueue('link.mp4'), 'VMAE_INVALID_INPUT', /outside the worker's root/);
  await failsOnce(vq, q, await vq.enqueue('corrupt.mp4'), 'VMAE_DECODE_FAILED');
  // Over the worker's inline limit (64 KiB) but within this producer's (1 MiB).
  await failsOnce(vq, q, await vq.enqueue(crypto.randomBytes(70_000)), 'VMAE_INVALID_INPUT', /at most 65536 bytes/);

  // Payloads no VideoQueue would send, enqueued with plain BullMQ and retries allowed.
  const malformed = [
    [{ path: 'good.mp4', model: 'other.pt' }, /Unrecognized key/],
    [{ path: 5 }, /job\.path/],
    [{ path: 'good.mp4', topK: 'all' }, /job\.topK/],
    [{ data: Buffer.from('x') }, /job\.data/],
    [{ path: 'http://127.0.0.1:1/x.mp4' }, /URL/],
    [{ path: 'file:///etc/passwd' }, /URL/],
    [{ path: '/etc/passwd' }, /outside/],
    ['good.mp4', /expected object/],
    [null, /expected object/],
    [[1, 2, 3], /expected object/],
  ];
  for (const [data, re] of malformed) {
    const job = await q.add('classify', data, { attempts: 3, backoff: 0 });
    await failsOnce(vq, q, job.id, 'VMAE_INVALID_INPUT', re);
  }
  assert.equal(w.child.exitCode, null, 'the worker must survive malformed jobs');

  // A transient failure (VMAE_TIMEOUT: 1 ms is never enough to probe and decode) is retried.
  const retrying = producer('q-bad', { attempts: 2 });
  const timedOut = await retrying.enqueue('good.mp4', { timeoutMs: 1 });
  await assert.rejects(retrying.result(timedOut), { name: 'VideoMAEError', code: 'VMAE_TIMEOUT' });
  assert.equal((await q.getJob(timedOut)).attemptsMade, 2);

  // Good jobs still work, by path and inline, equal to classifying the file directly.
  const byPath = await vq.classify('good.mp4', { topK: TOP_K });
  assertSameAsDirect(byPath, 'moving_left.mp4');
  assert.equal(byPath.video, 'good.mp4');
  assert.equal(byPath.worker, 'wb');
  assert.equal(byPath.attempt, 1);
  for (const k of ['decodeMs', 'preprocessMs', 'inferenceMs', 'queueMs', 'totalMs']) assert.ok(byPath.timings[k] >= 0, k);
  const inline = await vq.classify(fs.readFileSync(path.join(EXAMPLES, 'growing.mp4')), { topK: TOP_K, name: 'growing.mp4' });
  assertSameAsDirect(inline, 'growing.mp4');
  assert.equal(inline.video, 'growing.mp4');
  // The same jobId again adds no job: the caller gets the first run's result (idempotent resubmission).
  const first = await vq.classify('good.mp4', { jobId: 'idem-1', topK: TOP_K });
  assert.deepEqual(await vq.classify('good.mp4', { jobId: 'idem-1', topK: TOP_K }), first);
  // Progress was reported.
  const finished = await q.getJob((await q.getCompleted())[0].id);
  assert.deepEqual(finished.progress, { stage: 'done', percent: 100 });

  const port = /metrics on 127\.0\.0\.1:(\d+)\/metrics/.exec(w.output())[1];
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  // Prometheus text format: name{label="value",...} number; label order is not fixed.
  const value = (name, labels = {}) => {
    for (const line of text.split('\n')) {
      const m = /^([a-z_]+)(?:\{(.*)\})? (\S+)$/.exec(line);
      if (!m || m[1] !== name) continue;
      const got = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((l) => [l[1], l[2]]));
      if (Object.entries(labels).every(([k, v]) => got[k] === v)) return Number(m[3]);
    }
    assert.fail(`no ${name} ${JSON.stringify(labels)} in the metrics:\n${text}`);
  };
  assert.equal(value('videomae_jobs_completed_total', { queue: 'q-bad', device: 'cpu' }), 3);
  assert.equal(value('videomae_jobs_failed_total', { code: 'VMAE_DECODE_FAILED', retried: 'false' }), 1);
  assert.equal(value('videomae_jobs_failed_total', { code: 'VMAE_INVALID_INPUT', retried: 'false' }), 15);
  assert.equal(value('videomae_jobs_failed_total', { code: 'VMAE_TIMEOUT', retried: 'true' }), 1);
  assert.equal(value('videomae_jobs_failed_total', { code: 'VMAE_TIMEOUT', retried: 'false' }), 1);
  for (const stage of ['decode', 'preprocess', 'inference']) assert.equal(value('videomae_classify_stage_seconds_count', { stage }), 3);
  assert.equal(value('videomae_job_duration_seconds_count'), 3);
  assert.equal(value('videomae_forward_clips_count'), 3);
  assert.equal(value('videomae_forward_clips_sum'), 3);
  assert.ok(value('videomae_model_load_seconds') > 0);
  assert.equal(value('videomae_jobs_active'), 0);

  w.child.kill('SIGTERM');
  assert.deepEqual(await w.exited, { code: 0, signal: null });
});

test('two workers, 40 jobs, one worker SIGKILLed mid-job: every result arrives, equal to a direct classifyVideo', async () => {
  // Short locks so that the dead worker's job is retaken in seconds rather than 30 s.
  const stall = ['--lock-duration', '4000', '--stalled-interval', '1000', '--max-stalled-count', '2', '-c', '2'];
  const [w1, w2] = await Promise.all([
    startWorker(workerArgs('q-kill', 'w1', ['--root', EXAMPLES, ...stall])),
    startWorker(workerArgs('q-kill', 'w2', ['--root', EXAMPLES, ...stall])),
  ]);
  cleanups.push(() => kill(w1), () => kill(w2));
  const { q, events } = await raw('q-kill');
  const stalled = new Set();
  events.on('stalled', ({ jobId }) => stalled.add(jobId));
  let killedDuring;
  events.on('active', async ({ jobId }) => {
    if (killedDuring) return;
    const job = await q.getJob(jobId);
    if (job?.processedBy === 'w1' && !killedDuring) {
      killedDuring = jobId;
      w1.child.kill('SIGKILL');
    }
  });

  const vq = producer('q-kill');
  const files = Array.from({ length: 40 }, (_, i) => FILES[i % FILES.length]);
  const outcomes = [];
  for await (const o of vq.classifyMany(files, { topK: TOP_K })) outcomes.push(o);

  assert.ok(killedDuring, 'w1 never took a job');
  assert.equal((await w1.exited).signal, 'SIGKILL');
  assert.equal(outcomes.length, 40);
  assert.deepEqual(outcomes.map((o) => o.index).sort((a, b) => a - b), files.map((_, i) => i));
  for (const o of outcomes) {
    assert.equal(o.error, undefined, `job ${o.jobId} (${o.video}) failed: ${o.error?.message}`);
    assertSameAsDirect(o.result, files[o.index]);
  }
  // The job w1 died on was found stalled and finished by w2.
  assert.ok(stalled.has(killedDuring), `job ${killedDuring} was not reported stalled (stalled: ${[...stalled]})`);
  const retaken = outcomes.find((o) => o.jobId === killedDuring);
  assert.equal(retaken.result.worker, 'w2');
  assert.equal(await q.getJobCountByTypes('failed'), 0);
  w2.child.kill('SIGTERM');
  assert.equal((await w2.exited).code, 0);
});

test('a Redis restart mid-run: workers and producers reconnect and every job completes', async () => {
  const w = await startWorker(workerArgs('q-restart', 'wr', ['--root', EXAMPLES, '-c', '2']));
  cleanups.push(() => kill(w));
  const vq = producer('q-restart');
  const files = Array.from({ length: 12 }, (_, i) => FILES[i % FILES.length]);
  const outcomes = [];
  let restarted = false;
  for await (const o of vq.classifyMany(files, { topK: TOP_K })) {
    outcomes.push(o);
    if (outcomes.length === 3) {
      await redis.restart();
      restarted = true;
    }
  }
  assert.ok(restarted);
  assert.equal(outcomes.length, 12);
  for (const o of outcomes) {
    assert.equal(o.error, undefined, `job ${o.jobId} (${o.video}) failed: ${o.error?.message}`);
    assertSameAsDirect(o.result, files[o.index]);
  }
  assert.equal(w.child.exitCode, null, 'the worker must outlive the Redis restart');
  // And it still takes new jobs.
  assertSameAsDirect(await vq.classify('rotating.mp4', { topK: TOP_K }), 'rotating.mp4');
  w.child.kill('SIGTERM');
  assert.equal((await w.exited).code, 0);
});

test('SIGTERM during a job: the job completes, no new job starts, and the worker exits 0', async () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'vmae-queue-'));
  cleanups.push(async () => fs.rmSync(root, { recursive: true, force: true }));
  // Long enough (a few seconds of 720p to decode) that the signal lands while the job runs.
  ffmpeg(['-f', 'lavfi', '-i', 'testsrc=size=1280x720:rate=30', '-t', '10', '-c:v', 'mpeg4', '-q:v', '8',
    path.join(root, 'long.mp4')]);
  fs.copyFileSync(path.join(EXAMPLES, 'static.mp4'), path.join(root, 'short.mp4'));
  const w = await startWorker(workerArgs('q-term', 'wt', ['--root', root, '-c', '1']));
  cleanups.push(() => kill(w));
  const { q, events } = await raw('q-term');
  const vq = producer('q-term');
  const started = new Promise((resolve) => events.on('active', ({ jobId }) => resolve(jobId)));
  const long = await vq.enqueue('long.mp4', { clips: 4 });
  const short = await vq.enqueue('short.mp4');
  assert.equal(await started, long);
  w.child.kill('SIGTERM');
  const result = await vq.result(long);
  assert.equal(result.worker, 'wt');
  assert.equal(result.views, 4);
  assert.deepEqual(await w.exited, { code: 0, signal: null });
  assert.match(w.output(), /SIGTERM: draining \(1 active job\)/);
  assert.match(w.output(), /drained; model disposed; exiting/);
  assert.equal(await (await q.getJob(short)).getState(), 'waiting', 'the worker took a new job while draining');
});

test('videomae enqueue: job ids, and with --wait --json the results', async () => {
  const { execFile } = require('node:child_process');
  const { CLI } = require('./helpers/queue');
  const run = (args) => new Promise((resolve) => {
    execFile(process.execPath, [CLI, 'enqueue', '--redis', redis.url, '--queue', 'q-cli', ...args], { cwd: ROOT },
      (err, stdout, stderr) => resolve({ code: err ? err.code : 0, stdout, stderr }));
  });
  const w = await startWorker(workerArgs('q-cli', 'wc', ['--root', EXAMPLES]));
  cleanups.push(() => kill(w));
  const waited = await run(['--wait', '--json', '-k', String(TOP_K), 'moving_up.mp4', 'nope.mp4', 'shrinking.mp4']);
  assert.equal(waited.code, 1, waited.stderr);
  const results = JSON.parse(waited.stdout);
  assert.deepEqual(results.map((r) => r.file), ['moving_up.mp4', 'nope.mp4', 'shrinking.mp4']);
  assertSameAsDirect({ ...results[0], logits: expected.get('moving_up.mp4').logits }, 'moving_up.mp4');
  assert.equal(results[0].predictions[0].label, expected.get('moving_up.mp4').predictions[0].label);
  assert.equal(results[1].error.code, 'VMAE_INVALID_INPUT');
  assert.equal(results[2].predictions[0].label, expected.get('shrinking.mp4').predictions[0].label);

  const inline = await run(['--wait', '--json', '--inline', path.join(EXAMPLES, 'flashing.mp4')]);
  assert.equal(inline.code, 0, inline.stderr);
  assert.equal(JSON.parse(inline.stdout)[0].predictions[0].label, expected.get('flashing.mp4').predictions[0].label);

  const queued = await run(['--json', 'static.mp4']);
  assert.equal(queued.code, 0, queued.stderr);
  const [{ file, jobId }] = JSON.parse(queued.stdout);
  assert.equal(file, 'static.mp4');
  const vq = producer('q-cli');
  assert.equal((await vq.result(jobId)).predictions[0].label, expected.get('static.mp4').predictions[0].label);
  w.child.kill('SIGTERM');
  assert.equal((await w.exited).code, 0);
});
