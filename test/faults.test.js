'use strict';
// Faults (issue 6), beyond test/errors.test.js: model files damaged at many places, files that
// are not VideoMAE exports or whose forward misbehaves, exceptions inside the inference thread
// (alone and inside a dynamic batch), allocation failure from a batch far too large, and ffmpeg
// missing, crashing, hanging or lying. Each gives a clear coded error, and the classifier still
// works afterwards where it makes sense. Crash-prone scenarios run in child processes.
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { after, before, test } = require('node:test');

const { VideoClassifier, Tensor, VideoMAEError } = require('..');
const { tinyModel, makeModel, python, randomFloats, maxAbsDiff, withEnv } = require('./helpers/fixtures');
const { runChild, describeChild, childProcesses } = require('./helpers/child');

const SHAPE = [4, 3, 32, 32];
const CLIP = 4 * 3 * 32 * 32;
let dir;
let tiny;

before(() => {
  tiny = tinyModel();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmae-faults2-'));
  python(['test/helpers/make_more_faults.py', '--out', dir]);
  python(['test/tools/make_fault_model.py', '--out', dir]);
});

after(() => {
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

async function codeOf(promise) {
  try {
    await promise;
    return 'ok';
  } catch (err) {
    assert.ok(err instanceof VideoMAEError, `expected a VideoMAEError, got ${err && err.stack}`);
    return err.code;
  }
}

/** A clip that sets off the fault models (any value above 100). */
function poisoned() {
  const x = new Float32Array(CLIP);
  x[7] = 1000;
  return Tensor.fromBuffer(x, SHAPE);
}
const clean = () => Tensor.fromBuffer(new Float32Array(CLIP), SHAPE);

test('a model file damaged at many places never crashes: it loads or fails with VMAE_MODEL_LOAD_FAILED', { timeout: 180_000 }, async (t) => {
  const r = await runChild(`
    const fs = require('node:fs');
    const path = require('node:path');
    const { VideoClassifier, Tensor } = vmae;
    (async () => {
      const src = fs.readFileSync(${JSON.stringify(tiny.model)});
      const work = ${JSON.stringify(dir)};
      const outcomes = {};
      const tally = (k) => (outcomes[k] = (outcomes[k] || 0) + 1);
      const bad = [];
      let a = 12345;
      const rand = () => ((a = (a * 1103515245 + 12345) >>> 0) / 4294967296);
      const variants = [];
      for (let i = 1; i <= 24; i++) variants.push(['truncate', Math.floor((src.length * i) / 25)]);
      variants.push(['truncate', 1], ['truncate', 22], ['truncate', src.length - 22], ['truncate', src.length - 1]);
      for (let i = 0; i < 40; i++) variants.push(['flip', Math.floor(rand() * src.length)]);
      // The zip's end records live in the last bytes: damage them on purpose.
      for (let i = 1; i <= 12; i++) variants.push(['flip', src.length - i * 4]);
      for (const [kind, at] of variants) {
        const bytes = kind === 'truncate' ? src.subarray(0, at) : Buffer.from(src);
        if (kind === 'flip') bytes[at] ^= 0xff;
        const file = path.join(work, 'damaged.pt');
        fs.writeFileSync(file, bytes);
        let outcome;
        try {
          const clf = await VideoClassifier.load(file, { threads: 1 });
          const r = await clf.classify(Tensor.fromBuffer(new Float32Array(4 * 3 * 32 * 32), [4, 3, 32, 32])).then(() => 'ok', (e) => e.code);
          await clf.dispose();
          outcome = 'loaded, classify ' + r;
        } catch (e) {
          outcome = 'load ' + e.code;
          if (e.code !== 'VMAE_MODEL_LOAD_FAILED') bad.push(kind + '@' + at + ': ' + e.code + ' ' + e.message);
        }
        tally(kind + ': ' + outcome);
      }
      report({ outcomes, bad, n: variants.length });
    })();
  `, { timeoutMs: 170_000 });
  assert.equal(r.signal, null, `a damaged model crashed the process: ${describeChild(r)}`);
  assert.equal(r.code, 0, describeChild(r));
  t.diagnostic(`${r.result.n} damaged files: ${JSON.stringify(r.result.outcomes)}`);
  assert.deepEqual(r.result.bad, []);
  assert.ok(!Object.keys(r.result.outcomes).some((k) => k.startsWith('truncate: loaded')), 'a truncated file loaded');
});

test('files that are not VideoMAE exports, or whose forward misbehaves at warm-up, fail to load with VMAE_MODEL_LOAD_FAILED', async () => {
  const cases = {
    'tuple.pt': /failed its warm-up forward: The model returned neither a tensor nor a \(logits, embedding\) pair/,
    'rank1.pt': /failed its warm-up forward: The model returned logits of shape \[5\]/,
    'rank4in.pt': /warming up the model: fault model: expected a 4-D input/,
    'notjson.pt': /invalid videomae\.json metadata: not JSON/,
    'statedict.pt': /has no embedded videomae\.json/,
    'pickled.pt': /^Failed to load TorchScript model '[^']+': (?:(?!exported by torch).)*$/s,
    'newer.pt': /\(the file was exported by torch 99\.1\.0\+cu999; this libtorch is \d+\.\d+.*re-export it with the same or an older torch/s,
  };
  for (const [file, pattern] of Object.entries(cases)) {
    const err = await VideoClassifier.load(path.join(dir, file), { threads: 1 }).then(() => null, (e) => e);
    assert.ok(err instanceof VideoMAEError, `${file} loaded`);
    assert.equal(err.code, 'VMAE_MODEL_LOAD_FAILED', `${file}: ${err.message}`);
    assert.match(err.message, pattern, file);
  }
  // Not files at all.
  const folder = path.join(dir, 'a-folder.pt');
  fs.mkdirSync(folder);
  assert.equal(await codeOf(VideoClassifier.load(folder)), 'VMAE_MODEL_LOAD_FAILED');
  fs.writeFileSync(path.join(dir, 'empty.pt'), '');
  assert.equal(await codeOf(VideoClassifier.load(path.join(dir, 'empty.pt'))), 'VMAE_MODEL_LOAD_FAILED');
  fs.symlinkSync(path.join(dir, 'loop-b'), path.join(dir, 'loop-a'));
  fs.symlinkSync(path.join(dir, 'loop-a'), path.join(dir, 'loop-b'));
  assert.equal(await codeOf(VideoClassifier.load(path.join(dir, 'loop-a'))), 'VMAE_MODEL_LOAD_FAILED');
  assert.equal(await codeOf(VideoClassifier.load(`${tiny.model}\u0000.bak`)), 'VMAE_INVALID_INPUT');
});

test('exceptions of every kind inside the inference thread reject VMAE_RUNTIME, and the classifier carries on', async () => {
  const cases = {
    'throws.pt': /^Failed while running the model: fault model: deliberate failure inside forward$/,
    'index.pt': /index 1000 out of range/,
    'assert.pt': /AssertionError: fault model: assertion failed/,
  };
  for (const [file, pattern] of Object.entries(cases)) {
    const clf = await VideoClassifier.load(path.join(dir, file), { threads: 1 });
    try {
      for (let round = 0; round < 3; round++) {
        const err = await clf.classify(poisoned()).then(() => null, (e) => e);
        assert.ok(err instanceof VideoMAEError && err.code === 'VMAE_RUNTIME', `${file}: ${err}`);
        assert.match(err.message, pattern, file);
        assert.match(err.stack, /faults\.test\.js/, 'the stack is the caller\'s');
        assert.equal((await clf.classify(clean())).logits.length, 5);
      }
      // Failing and passing requests interleaved in the queue each get their own outcome.
      const mixed = await Promise.all(Array.from({ length: 12 }, (_, i) => codeOf(clf.classify(i % 3 ? clean() : poisoned()))));
      assert.deepEqual(mixed, Array.from({ length: 12 }, (_, i) => (i % 3 ? 'ok' : 'VMAE_RUNTIME')));
    } finally {
      await clf.dispose();
    }
  }
});

test('with dynamic batching, a model that fails only on whole batches still answers each clip', async () => {
  // batchonly.pt raises for a batch of several clips holding a bad one, and never for one clip.
  const clf = await VideoClassifier.load(path.join(dir, 'batchonly.pt'), { threads: 1, maxBatchSize: 8, maxBatchDelayMs: 20 });
  try {
    const outcomes = await Promise.all([clean(), clean(), poisoned(), clean()].map((x) => codeOf(clf.classify(x))));
    assert.deepEqual(outcomes, ['ok', 'ok', 'ok', 'ok']);
    assert.equal(await codeOf(clf.classify(clean())), 'ok');
    assert.equal(await codeOf(clf.classifyBatch(Tensor.fromBuffer(new Float32Array(2 * CLIP).fill(1000), [2, ...SHAPE]))), 'VMAE_RUNTIME');
    assert.equal(await codeOf(clf.classify(clean())), 'ok');
  } finally {
    await clf.dispose();
  }
});

test('with dynamic batching, one bad clip does not fail the clips batched with it', async () => {
  const clf = await VideoClassifier.load(path.join(dir, 'throws.pt'), { threads: 1, maxBatchSize: 8, maxBatchDelayMs: 20 });
  try {
    const outcomes = await Promise.all([clean(), clean(), poisoned(), clean()].map((x) => codeOf(clf.classify(x))));
    assert.deepEqual(outcomes, ['ok', 'ok', 'VMAE_RUNTIME', 'ok']);
  } finally {
    await clf.dispose();
  }
});

test('a batch far too large for memory rejects VMAE_OUT_OF_MEMORY, and the classifier carries on', { timeout: 600_000 }, async (t) => {
  // A wide MLP on 512 tokens: 8 MB of activations per 48 KB clip. Under a data limit of 1 GB above
  // what the process already uses (prlimit), 512 clips (25 MB of input) need a 4 GB activation.
  const wide = makeModel(['--seed', '5', '--preprocessor', '--frames', '4', '--image-size', '32', '--patch', '2', '--tubelet', '2',
    '--hidden', '64', '--intermediate', '4096', '--layers', '1', '--heads', '2', '--labels', '5']);
  try {
    require('node:child_process').execFileSync('prlimit', ['--version'], { stdio: 'ignore' });
  } catch {
    return t.skip('prlimit (util-linux) is not installed');
  }
  const r = await runChild(`
    const fs = require('node:fs');
    const { execFileSync } = require('node:child_process');
    const { VideoClassifier, Tensor } = vmae;
    (async () => {
      const clf = await VideoClassifier.load(${JSON.stringify(wide.model)}, { threads: 1 });
      const one = Tensor.fromBuffer(fixtures.randomFloats(4 * 3 * 32 * 32, 9), [4, 3, 32, 32]);
      const before = (await clf.classify(one)).logits;
      const huge = Tensor.fromBuffer(new Float32Array(512 * 4 * 3 * 32 * 32), [512, 4, 3, 32, 32]);
      const vmData = Number(/VmData:\\s+(\\d+)/.exec(fs.readFileSync('/proc/self/status', 'utf8'))[1]) * 1024;
      const limit = vmData + 1024 ** 3;
      execFileSync('prlimit', ['--pid', String(process.pid), '--data=' + limit + ':' + limit]);
      const out = {};
      for (let i = 0; i < 3; i++) {
        out['huge' + i] = await clf.classifyBatch(huge).then(() => 'ok', (e) => e.code + ': ' + e.message);
        const again = await clf.classify(one);
        out['after' + i] = Math.max(...again.logits.map((v, j) => Math.abs(v - before[j])));
      }
      await clf.dispose();
      report(out);
    })();
  `, { timeoutMs: 110_000 });
  assert.equal(r.signal, null, describeChild(r));
  assert.equal(r.code, 0, describeChild(r));
  for (let i = 0; i < 3; i++) {
    assert.match(r.result['huge' + i], /^VMAE_OUT_OF_MEMORY: Out of memory while running the model: .*can't allocate memory/);
    assert.ok(r.result['after' + i] < 1e-6, 'the classifier answers the same afterwards');
  }
});

// ---- ffmpeg faults (classifyVideo) -------------------------------------------------------------

let video;
let fakes;

/** Writes an executable shell script. */
function script(name, body) {
  const file = path.join(fakes, name);
  // Through env -u LD_PRELOAD: under scripts/sanitize.sh the sanitizer runtime must not see the
  // fake's own deliberate SIGSEGV.
  fs.writeFileSync(file, `#!/usr/bin/env -S -u LD_PRELOAD /bin/sh\n${body}\n`, { mode: 0o755 });
  return file;
}

test('ffmpeg missing, crashing, hanging or lying: VMAE_DECODE_FAILED or VMAE_TIMEOUT, no children left, classifier fine', { timeout: 120_000 }, async (t) => {
  const clf = await VideoClassifier.load(tiny.model, { threads: 1 });
  try {
    if (typeof clf.classifyVideo !== 'function') return t.skip('classifyVideo() is not there yet');
    const { tmpDir, ffmpeg, FFMPEG, FFPROBE } = require('./helpers/video');
    fakes = tmpDir('vmae-fake-ffmpeg-');
    video = path.join(fakes, 'clip.mp4');
    ffmpeg(['-f', 'lavfi', '-i', 'testsrc=duration=2:size=96x64:rate=25', '-c:v', 'mpeg4', video]);
    const which = (bin) => (bin.includes('/') ? bin : require('node:child_process').execFileSync('sh', ['-c', `command -v ${bin}`], { encoding: 'utf8' }).trim());
    const realFfmpeg = which(FFMPEG);
    const realFfprobe = which(FFPROBE);
    const reference = await clf.classifyVideo(video);
    // A fake ffmpeg answers -version like the real one, so that decoding is where it misbehaves.
    const version = `if [ "$2" = "-version" ] || [ "$1" = "-version" ]; then exec ${realFfmpeg} "$@"; fi`;
    const cases = [
      ['ffmpeg not found', { FFMPEG_PATH: path.join(fakes, 'nonexistent', 'ffmpeg'), FFPROBE_PATH: realFfprobe }, 'VMAE_DECODE_FAILED', /ffmpeg was not found/],
      ['ffprobe not found', { FFMPEG_PATH: realFfmpeg, FFPROBE_PATH: '/nonexistent/ffprobe' }, 'VMAE_DECODE_FAILED', /ffprobe was not found/],
      ['ffmpeg not executable', { FFMPEG_PATH: (() => { const f = path.join(fakes, 'noexec'); fs.writeFileSync(f, 'x', { mode: 0o644 }); return f; })(), FFPROBE_PATH: realFfprobe }, 'VMAE_DECODE_FAILED', /could not be started|was not found/],
      ['ffmpeg crashes (SIGSEGV) after some output', { FFMPEG_PATH: script('ffmpeg-segv', `${version}\nhead -c 30000 /dev/zero\nkill -SEGV $$`), FFPROBE_PATH: realFfprobe }, 'VMAE_DECODE_FAILED', /SIGSEGV/],
      ['ffmpeg crashes at once', { FFMPEG_PATH: script('ffmpeg-abort', `${version}\nkill -ABRT $$`), FFPROBE_PATH: realFfprobe }, 'VMAE_DECODE_FAILED', /SIGABRT/],
      ['ffmpeg exits 0 with a partial frame', { FFMPEG_PATH: script('ffmpeg-short', `${version}\nhead -c 1001 /dev/zero\nexit 0`), FFPROBE_PATH: realFfprobe }, 'VMAE_DECODE_FAILED', null],
      ['ffmpeg exits 1 with an error message', { FFMPEG_PATH: script('ffmpeg-fail', `${version}\necho "fake: decoder exploded" >&2\nexit 1`), FFPROBE_PATH: realFfprobe }, 'VMAE_DECODE_FAILED', /decoder exploded/],
      ['ffprobe crashes', { FFMPEG_PATH: realFfmpeg, FFPROBE_PATH: script('ffprobe-segv', 'kill -SEGV $$') }, 'VMAE_DECODE_FAILED', null],
      ['ffprobe prints garbage', { FFMPEG_PATH: realFfmpeg, FFPROBE_PATH: script('ffprobe-garbage', 'echo "{{{ not json"') }, 'VMAE_DECODE_FAILED', null],
      ['ffprobe prints no video stream', { FFMPEG_PATH: realFfmpeg, FFPROBE_PATH: script('ffprobe-empty', 'echo \'{"streams": [], "format": {}}\'') }, 'VMAE_DECODE_FAILED', null],
      ['ffmpeg hangs (decodeTimeoutMs)', { FFMPEG_PATH: script('ffmpeg-hang', `${version}\nexec sleep 60`), FFPROBE_PATH: realFfprobe }, 'VMAE_TIMEOUT', null, { limits: { decodeTimeoutMs: 300 } }],
      ['ffmpeg hangs (timeoutMs)', { FFMPEG_PATH: script('ffmpeg-hang2', `${version}\nexec sleep 60`), FFPROBE_PATH: realFfprobe }, 'VMAE_TIMEOUT', null, { timeoutMs: 300 }],
    ];
    const seen = [];
    for (const [name, env, code, pattern, options] of cases) {
      const t0 = performance.now();
      const err = await withEnv(env, () => clf.classifyVideo(video, options ?? {})).then(() => null, (e) => e);
      const ms = performance.now() - t0;
      seen.push(`${name}: ${err && err.code} in ${ms.toFixed(0)} ms`);
      assert.ok(err instanceof VideoMAEError, `${name}: resolved or threw ${err}`);
      assert.equal(err.code, code, `${name}: ${err.message}`);
      if (pattern) assert.match(err.message, pattern, name);
      assert.ok(ms < 10_000, `${name} took ${ms.toFixed(0)} ms`);
      assert.deepEqual(childProcesses().filter((c) => !/^(node)$/.test(c.comm)), [], `${name}: children left`);
      // The classifier, and real ffmpeg, still work.
      const again = await clf.classifyVideo(video);
      assert.ok(maxAbsDiff(again.logits, reference.logits) < 1e-6, name);
    }
    t.diagnostic(seen.join('; '));
  } finally {
    await clf.dispose();
  }
});
