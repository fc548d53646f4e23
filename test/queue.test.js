'use strict';
// videomae-node/queue without Redis or a model: job payload validation, path confinement, and
// that BullMQ, ioredis and prom-client are loaded only by the queue entry points.
const assert = require('node:assert/strict');
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { test } = require('node:test');

const { ROOT } = require('./helpers/fixtures');
const { checkJobData, resolveJobPath, fromFailureReason, failureReason } = require('../lib/queue/job');
const { VideoQueue } = require('../lib/queue');
const { VideoWorker } = require('../lib/queue');
const { VideoMAEError } = require('../lib/errors');

function rejects(fn, re) {
  assert.throws(fn, (err) => {
    assert.ok(err instanceof VideoMAEError, `expected a VideoMAEError, got ${err}`);
    assert.equal(err.code, 'VMAE_INVALID_INPUT');
    assert.match(err.message, re);
    return true;
  });
}

test('checkJobData accepts the documented shapes', () => {
  assert.deepEqual(checkJobData({ path: 'a/b.mp4', topK: 3, clips: 2, crops: 3, sampleRate: 2, timeoutMs: 1000 }),
    { path: 'a/b.mp4', topK: 3, clips: 2, crops: 3, sampleRate: 2, timeoutMs: 1000 });
  const data = Buffer.from('abc').toString('base64');
  assert.deepEqual(checkJobData({ data, name: 'x.mp4' }), { data, name: 'x.mp4' });
});

test('checkJobData rejects malformed payloads, naming the field', () => {
  rejects(() => checkJobData(null), /job: .*expected object/i);
  rejects(() => checkJobData('a.mp4'), /job: .*expected object/i);
  rejects(() => checkJobData([{ path: 'a.mp4' }]), /job: .*expected object/i);
  rejects(() => checkJobData({ path: 'a.mp4', model: 'other.pt' }), /Unrecognized key.*model/);
  rejects(() => checkJobData({ path: 42 }), /job\.path: .*expected string/);
  rejects(() => checkJobData({ path: 'a.mp4', topK: '3' }), /job\.topK: .*expected number/);
  rejects(() => checkJobData({ path: 'a.mp4', topK: 1.5 }), /job\.topK/);
  rejects(() => checkJobData({ path: 'a.mp4', clips: 0 }), /job\.clips/);
  rejects(() => checkJobData({ path: 'a.mp4', crops: 9 }), /job\.crops/);
  rejects(() => checkJobData({ path: 'a.mp4', timeoutMs: -1 }), /job\.timeoutMs/);
  rejects(() => checkJobData({}), /exactly one of 'path' and 'data' but received neither/);
  rejects(() => checkJobData({ path: 'a.mp4', data: 'AAAA' }), /received both/);
  rejects(() => checkJobData({ path: '' }), /job\.path/);
  rejects(() => checkJobData({ path: 'a\0.mp4' }), /NUL/);
  rejects(() => checkJobData({ path: 'a.mp4', name: 'n' }), /only for inline/);
  rejects(() => checkJobData({ data: 'not base64!' }), /base64/);
  rejects(() => checkJobData({ data: { type: 'Buffer', data: [1, 2] } }), /job\.data: .*expected string/);
});

test('checkJobData refuses URLs and protocols', () => {
  for (const p of ['http://example.com/a.mp4', 'https://x/y', 'file:///etc/passwd', 'concat:a.mp4|b.mp4', 's3://bucket/key']) {
    rejects(() => checkJobData({ path: p }), /URL/);
  }
});

test('checkJobData enforces the inline size limit before decoding', () => {
  const ten = Buffer.alloc(10).toString('base64');
  assert.ok(checkJobData({ data: ten }, 10));
  rejects(() => checkJobData({ data: Buffer.alloc(11).toString('base64') }, 10), /at most 10 bytes but received 11/);
  // The default limit (8 MiB) applies without an explicit one.
  rejects(() => checkJobData({ data: Buffer.alloc(8 * 1024 * 1024 + 1).toString('base64') }), /at most 8388608 bytes/);
});

test('resolveJobPath confines jobs to the root, symbolic links included', async () => {
  const base = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'vmae-queue-')));
  try {
    const root = path.join(base, 'root');
    fs.mkdirSync(path.join(root, 'sub'), { recursive: true });
    fs.writeFileSync(path.join(root, 'sub', 'a.mp4'), 'x');
    fs.writeFileSync(path.join(base, 'secret.mp4'), 'x');
    fs.symlinkSync(path.join(base, 'secret.mp4'), path.join(root, 'link.mp4'));
    fs.symlinkSync(path.join(root, 'sub', 'a.mp4'), path.join(root, 'inside.mp4'));
    assert.equal(await resolveJobPath('sub/a.mp4', root), path.join(root, 'sub', 'a.mp4'));
    assert.equal(await resolveJobPath(path.join(root, 'sub', 'a.mp4'), root), path.join(root, 'sub', 'a.mp4'));
    assert.equal(await resolveJobPath('inside.mp4', root), path.join(root, 'sub', 'a.mp4'));
    assert.equal(await resolveJobPath('sub/../sub/a.mp4', root), path.join(root, 'sub', 'a.mp4'));
    const outside = async (p) => assert.rejects(resolveJobPath(p, root), (err) => {
      assert.equal(err.code, 'VMAE_INVALID_INPUT');
      assert.match(err.message, /outside the worker's root/);
      return true;
    });
    await outside('../secret.mp4');
    await outside('sub/../../secret.mp4');
    await outside(path.join(base, 'secret.mp4'));
    await outside('link.mp4');
    await outside('/etc/passwd');
    await outside('.');
    // A sibling folder whose name starts with the root's is still outside.
    fs.mkdirSync(`${root}2`);
    fs.writeFileSync(path.join(`${root}2`, 'b.mp4'), 'x');
    await outside(`../root2/b.mp4`);
    await assert.rejects(resolveJobPath('missing.mp4', root), /existing video file.*'missing.mp4' \(no such file\)/);
  } finally {
    fs.rmSync(base, { recursive: true, force: true });
  }
});

test('failure reasons carry the error code through BullMQ and back', () => {
  const { code, reason } = failureReason(new VideoMAEError('VMAE_DECODE_FAILED', 'ffprobe could not read it'));
  assert.equal(code, 'VMAE_DECODE_FAILED');
  const back = fromFailureReason(reason);
  assert.ok(back instanceof VideoMAEError);
  assert.equal(back.code, 'VMAE_DECODE_FAILED');
  assert.equal(back.message, 'ffprobe could not read it');
  assert.equal(failureReason(new TypeError('boom')).code, 'VMAE_RUNTIME');
  assert.equal(fromFailureReason('job stalled more than allowable limit').code, 'VMAE_RUNTIME');
  assert.equal(fromFailureReason('VMAE_NOT_A_CODE: x').code, 'VMAE_RUNTIME');
});

test('VideoQueue and VideoWorker reject bad options before connecting', async () => {
  const bad = (fn, re) => assert.throws(fn, (err) => err.code === 'VMAE_INVALID_INPUT' && re.test(err.message));
  bad(() => new VideoQueue({}), /Redis URL .*for redis but received undefined/);
  bad(() => new VideoQueue({ redis: 'http://localhost:6379' }), /Redis URL/);
  bad(() => new VideoQueue({ redis: 'redis://localhost:6379', queue: 'a:b' }), /queue name/);
  bad(() => new VideoQueue({ redis: 'redis://localhost:6379', attempts: 0 }), /attempts/);
  await assert.rejects(VideoWorker.start({ redis: 'redis://localhost:1', root: '/definitely/not/here' }), /existing folder for root/);
  await assert.rejects(VideoWorker.start({ redis: 'redis://localhost:1', root: ROOT, concurrency: 0 }), /concurrency/);
  await assert.rejects(VideoWorker.start({ redis: 'nope', root: ROOT }), /Redis URL/);
});

test('VideoQueue validates a job before enqueueing it', async () => {
  // Port 1 refuses connections: validation must fail first, without waiting on Redis.
  const queue = new VideoQueue({ redis: 'redis://127.0.0.1:1', maxInlineBytes: 4 });
  try {
    const bad = (p, re) => assert.rejects(p, (err) => err.code === 'VMAE_INVALID_INPUT' && re.test(err.message));
    await bad(queue.classify('http://x/a.mp4'), /URL/);
    await bad(queue.enqueue(Buffer.alloc(5)), /at most 4 bytes but received 5/);
    await bad(queue.enqueue('a.mp4', { clips: 99 }), /job\.clips/);
    await bad(queue.enqueue('a.mp4', { jobId: '123' }), /jobId/);
    await bad(queue.enqueue('a.mp4', { jobId: 'a:b' }), /jobId/);
    await bad(queue.enqueue('a.mp4', { name: 'x' }), /only for inline/);
    await bad(queue.enqueue(42), /path string or a Buffer/);
    await bad(queue.enqueue('a.mp4', { bogus: 1 }), /Unrecognized key.*bogus/);
  } finally {
    await queue.close();
  }
});

const LOADED = `
const heavy = () => [...new Set(Object.keys(require.cache)
  .map((f) => /node_modules\\/(bullmq|ioredis|prom-client)\\//.exec(f)?.[1]).filter(Boolean))].sort();
const mod = require(process.argv[1]);
const before = heavy();
if (process.argv[2] === 'use') new mod.VideoQueue({ redis: 'redis://127.0.0.1:1' }).close().then(() => {
  process.stdout.write(JSON.stringify({ before, after: heavy() }));
});
else process.stdout.write(JSON.stringify({ before }));
`;

test('the main entry point and the CLI commands do not load BullMQ, ioredis or prom-client', () => {
  const loaded = (entry, ...args) =>
    JSON.parse(execFileSync(process.execPath, ['-e', LOADED, path.join(ROOT, entry), ...args], { cwd: ROOT, encoding: 'utf8' }));
  // lib/cli.js imports every lib/commands/ module at start-up.
  for (const entry of ['lib/index.js', ...fs.readdirSync(path.join(ROOT, 'lib/commands')).filter((f) => f.endsWith('.js'))
    .map((f) => `lib/commands/${f}`)]) {
    assert.deepEqual(loaded(entry).before, [], `${entry} loaded a queue dependency`);
  }
  // Even the queue entry point loads them only when a queue or worker is created.
  assert.deepEqual(loaded('lib/queue/index.js', 'use'), { before: [], after: ['bullmq', 'ioredis'] });
});

test('package exports: videomae-node and videomae-node/queue resolve (self-reference)', () => {
  const src = `
    const main = require('videomae-node');
    const queue = require('videomae-node/queue');
    const pkg = require('videomae-node/package.json');
    process.stdout.write(JSON.stringify({ main: typeof main.VideoClassifier, queue: typeof queue.VideoQueue,
      worker: typeof queue.VideoWorker, same: main.VideoMAEError === queue.VideoMAEError, name: pkg.name }));`;
  const out = JSON.parse(execFileSync(process.execPath, ['-e', src], { cwd: ROOT, encoding: 'utf8' }));
  assert.deepEqual(out, { main: 'function', queue: 'function', worker: 'function', same: true, name: 'videomae-node' });
});

test('without bullmq installed, the queue says what to install', () => {
  const src = `
    const Module = require('node:module');
    const resolve = Module._resolveFilename;
    Module._resolveFilename = function (request, ...rest) {
      if (request === 'bullmq' || request === 'ioredis') {
        const err = new Error("Cannot find module '" + request + "'");
        err.code = 'MODULE_NOT_FOUND';
        throw err;
      }
      return resolve.call(this, request, ...rest);
    };
    const { VideoQueue } = require(process.argv[1]);
    try { new VideoQueue({ redis: 'redis://127.0.0.1:1' }); } catch (err) {
      process.stdout.write(JSON.stringify({ code: err.code, message: err.message }));
    }`;
  const out = JSON.parse(execFileSync(process.execPath, ['-e', src, path.join(ROOT, 'lib/queue/index.js')], { cwd: ROOT, encoding: 'utf8' }));
  assert.equal(out.code, 'VMAE_SETUP_FAILED');
  assert.match(out.message, /npm install bullmq ioredis prom-client/);
});
