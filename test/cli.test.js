'use strict';
// The classify, info and export commands, run as `node lib/cli.js …` child processes.
const assert = require('node:assert/strict');
const { execFile } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { test, before, after } = require('node:test');

const { VideoClassifier, sampleIndices } = require('../lib');
const { findTorchPython, pythonCandidates } = require('../lib/python');
const { ROOT, tmpDir, videoModel, ffmpeg, decodeAll, pick } = require('./helpers/video');

const CLI = path.join(ROOT, 'lib', 'cli.js');

/** Runs the CLI; resolves with { code, stdout, stderr } whatever the exit status. */
function cli(args, options = {}) {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { cwd: ROOT, maxBuffer: 1 << 24, timeout: 120_000, ...options },
      (err, stdout, stderr) => resolve({ code: err ? err.code : 0, stdout, stderr }));
  });
}

let dir;
let mp4;
let corrupt;
let model;
let clf;
before(async () => {
  dir = tmpDir('vmae-cli-');
  mp4 = path.join(dir, 'clip.mp4');
  ffmpeg(['-f', 'lavfi', '-i', 'testsrc=size=96x64:rate=25', '-frames:v', '40', '-c:v', 'libx264', '-pix_fmt', 'yuv420p', mp4]);
  corrupt = path.join(dir, 'corrupt.mp4');
  fs.writeFileSync(corrupt, 'definitely not a video');
  model = videoModel().model;
  clf = await VideoClassifier.load(model, { threads: 1 });
});
after(() => clf?.dispose());

test('classify --json reports every file, with scores equal to classifyFrames, and exits 1 on a failure', async () => {
  const { code, stdout } = await cli(['classify', '--json', '--model', model, '--top-k', '7', '--threads', '1', mp4, corrupt]);
  assert.equal(code, 1);
  const out = JSON.parse(stdout);
  assert.equal(out.length, 2);
  const [ok, failed] = out;
  assert.equal(ok.file, mp4);
  assert.equal(ok.predictions.length, 7);
  for (const k of ['decodeMs', 'preprocessMs', 'inferenceMs']) assert.equal(typeof ok.timings[k], 'number');
  assert.deepEqual(failed.file, corrupt);
  assert.equal(failed.error.code, 'VMAE_DECODE_FAILED');
  assert.match(failed.error.message, /Invalid data found when processing input/);

  // The same scores from classifyFrames on frames decoded independently with the ffmpeg CLI.
  const decoded = decodeAll(mp4, 96, 64);
  const ref = await clf.classifyFrames(pick(decoded, sampleIndices(decoded.count, 16, 4, 1)[0], 96, 64), { topK: 7 });
  assert.deepEqual(ok.predictions.map((p) => p.index), ref.predictions.map((p) => p.index));
  ok.predictions.forEach((p, i) => {
    assert.equal(p.label, ref.predictions[i].label);
    assert.ok(Math.abs(p.score - ref.predictions[i].score) < 1e-6, `${p.score} vs ${ref.predictions[i].score}`);
  });
});

test('classify --clips --crops --sample-rate match the API', async () => {
  const { code, stdout } = await cli(['classify', '--json', '-m', model, '--clips', '2', '--crops', '3', '--sample-rate', '2', mp4]);
  assert.equal(code, 0);
  const [r] = JSON.parse(stdout);
  const api = await clf.classifyVideo(mp4, { clips: 2, crops: 3, sampleRate: 2 });
  assert.equal(r.views, 6);
  assert.deepEqual(r.predictions.map((p) => p.index), api.predictions.map((p) => p.index));
  r.predictions.forEach((p, i) => assert.ok(Math.abs(p.score - api.predictions[i].score) < 1e-6));
});

test('classify prints a table per file and reports failures on stderr', async () => {
  const { code, stdout, stderr } = await cli(['classify', '-m', model, '-k', '3', mp4, corrupt, path.join(dir, 'missing.mp4')]);
  assert.equal(code, 1);
  assert.match(stdout, new RegExp(`^${mp4.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}  \\(1\\.6 s, 40 frames, 1 view; decode \\d+ ms`));
  assert.match(stdout, /#\s+label\s+score\n\s+1\s+class_\d\s+\d+\.\d%\n\s+2\s+class_\d/);
  assert.equal(stdout.match(/class_\d/g).length, 3);
  assert.match(stderr, /corrupt\.mp4: failed \[VMAE_DECODE_FAILED\]/);
  assert.match(stderr, /missing\.mp4: failed \[VMAE_INVALID_INPUT\] Expected an existing video file/);
});

test('classify --jobs decodes several files at once and reports them in the order given', async () => {
  const files = [mp4, corrupt, mp4, path.join(dir, 'missing.mp4'), mp4];
  const { code, stdout } = await cli(['classify', '--json', '-m', model, '--jobs', '3', '--threads', '1', ...files]);
  assert.equal(code, 1);
  const out = JSON.parse(stdout);
  assert.deepEqual(out.map((r) => r.file), files);
  assert.deepEqual(out.map((r) => 'error' in r), [false, true, false, true, false]);
  assert.deepEqual(out[2].predictions, out[0].predictions);
  assert.deepEqual(out[4].predictions, out[0].predictions);
  const r = await cli(['classify', '-m', model, '--jobs', '0', mp4]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /--jobs/);
});

test('classify rejects bad flags before loading a model', async () => {
  let r = await cli(['classify', '-m', model, '--clips', 'many', mp4]);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /option '--clips <n>' argument 'many' is invalid\. Expected an integer\./);
  r = await cli(['classify', '-m', model, '--crops', '20', mp4]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /\[VMAE_INVALID_INPUT\] Expected an integer in 1\.\.8 for crops but received 20/);
  r = await cli(['classify', '-m', path.join(dir, 'nope.pt'), mp4]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /\[VMAE_MODEL_LOAD_FAILED\]/);
});

test('classify without --model uses the embedded demo model', async () => {
  const r = await cli(['classify', '--json', mp4]);
  assert.equal(r.code, 0, r.stderr);
  const [out] = JSON.parse(r.stdout);
  const labels = JSON.parse(fs.readFileSync(path.join(ROOT, 'models', 'demo', 'checkpoint', 'config.json'), 'utf8')).id2label;
  assert.ok(Object.values(labels).includes(out.predictions[0].label), out.predictions[0].label);
});

test('info prints the metadata; --json gives all of it', async () => {
  const text = await cli(['info', model]);
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, /^file +.*model\.pt$/m);
  assert.match(text.stdout, /^torch +\d+\.\d+/m);
  assert.match(text.stdout, /^input +16 frames x 3 x 32x32$/m);
  assert.match(text.stdout, /^preprocessing +shortest edge 40, crop 32, rescale 0\.00392157/m);
  assert.match(text.stdout, /^labels +7: class_0, class_1, .*class_6$/m);
  const json = await cli(['info', '--json', model]);
  assert.equal(json.code, 0);
  const info = JSON.parse(json.stdout);
  assert.equal(info.numLabels, 7);
  assert.equal(info.labels.length, 7);
  assert.equal(info.config.numFrames, 16);
  assert.deepEqual(info.preprocessing, clf.config.preprocessing);
  assert.equal(info.torchVersion, clf.model.torchVersion);
  const bad = await cli(['info', path.join(dir, 'corrupt.mp4')]);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /^videomae: \[VMAE_MODEL_LOAD_FAILED\]/);
});

test('--help for classify, export and info', async () => {
  for (const [cmd, pattern] of [['classify', /--clips <n>[\s\S]*--sample-rate <n>[\s\S]*--json/],
    ['export', /--checkpoint <dir>[\s\S]*--output <file>[\s\S]*--verify[\s\S]*VIDEOMAE_PYTHON/],
    ['info', /<model>[\s\S]*--json/]]) {
    const r = await cli([cmd, '--help']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, new RegExp(`^Usage: videomae ${cmd}`));
    assert.match(r.stdout, pattern);
  }
});

test('export runs the exporter with a Python that has torch', async (t) => {
  const { found } = await findTorchPython();
  if (!found) return t.skip('no Python with torch here');
  const out = path.join(dir, 'exported.pt');
  const checkpoint = videoModel().checkpoint;
  const r = await cli(['export', '--checkpoint', checkpoint, '--output', out, '--name', 'cli-export', '--description', 'from the CLI test']);
  assert.equal(r.code, 0, r.stderr);
  const info = JSON.parse((await cli(['info', '--json', out])).stdout);
  assert.equal(info.name, 'cli-export');
  assert.equal(info.description, 'from the CLI test');
  // The exporter's own failure comes back as its exit status.
  const bad = await cli(['export', '--checkpoint', path.join(dir, 'no-such-checkpoint'), '--output', path.join(dir, 'x.pt')]);
  assert.notEqual(bad.code, 0);
  const missing = await cli(['export', '--output', 'x.pt']);
  assert.notEqual(missing.code, 0);
  assert.match(missing.stderr, /required option '--checkpoint <dir>' not specified/);
});

test('findTorchPython tries VIDEOMAE_PYTHON, python3, /usr/bin/python3 in order and explains failures', async () => {
  assert.deepEqual(pythonCandidates({ VIDEOMAE_PYTHON: '/opt/py/bin/python' }).map((c) => c.command),
    ['/opt/py/bin/python', 'python3', '/usr/bin/python3']);
  assert.deepEqual(pythonCandidates({}).map((c) => c.source), ['PATH', 'system']);
  const none = await findTorchPython({}, [{ command: path.join(dir, 'no-python'), source: 'VIDEOMAE_PYTHON' },
    { command: process.execPath, source: 'PATH' }]);
  assert.equal(none.found, undefined);
  assert.equal(none.tried.length, 2);
  assert.equal(none.tried[0].error, 'not found');
  assert.ok(none.tried[1].error);
});
