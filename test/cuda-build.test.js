'use strict';
// The CUDA build, built, linked and loaded on a machine without a GPU (issue 11). CI compiles the addon
// against the official torch 2.14.1 CUDA 13 wheel and the CUDA 13 toolkit (.ci/run) and names the
// result in VMAE_CUDA_ADDON. It runs in a child process: one process must never map two libtorch.
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const { test } = require('node:test');

const { ROOT, tinyModel, referenceLogits, randomFloats, maxAbsDiff } = require('./helpers/fixtures');

const ADDON = process.env.VMAE_CUDA_ADDON;

const CHILD = `
const fs = require('node:fs');
const { VideoClassifier, Tensor, runtimeInfo } = require(process.argv[1]);
(async () => {
  const [model, inputFile, shape] = [process.argv[2], process.argv[3], JSON.parse(process.argv[4])];
  const out = { runtime: runtimeInfo() };
  try {
    await VideoClassifier.load(model, { device: 'cuda' });
    out.cuda = 'loaded';
  } catch (e) {
    out.cuda = { code: e.code, name: e.constructor.name, message: e.message };
  }
  const clf = await VideoClassifier.load(model, { device: 'cpu' });
  const bytes = fs.readFileSync(inputFile);
  const input = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  const results = await clf.classifyBatch(Tensor.fromBuffer(input, shape), { topK: clf.config.numLabels });
  out.logits = results.flatMap((r) => Array.from(r.logits));
  await clf.dispose();
  out.mapped = [...new Set(fs.readFileSync('/proc/self/maps', 'utf8').split('\\n')
    .map((l) => l.trim().split(/\\s+/).pop()).filter((f) => /\\/lib(torch|c10)\\w*\\.so/.test(f)))];
  process.stdout.write(JSON.stringify(out));
})().catch((e) => { console.error(e); process.exit(1); });
`;

test('the CUDA build loads without a GPU: device cuda is refused with a code, the CPU classifies', {
  skip: ADDON ? false : 'set VMAE_CUDA_ADDON to a videomae.node built against a CUDA libtorch (.ci/run does)',
  timeout: 300_000,
}, (t) => {
  assert.ok(fs.existsSync(ADDON), `${ADDON} is missing`);
  const { checkpoint, model } = tinyModel();
  const shape = [2, 4, 3, 32, 32];
  const input = randomFloats(shape.reduce((a, b) => a * b, 1), 21);
  const file = `${fs.mkdtempSync('/tmp/vmae-cuda-')}/x.f32`;
  fs.writeFileSync(file, Buffer.from(input.buffer));
  const r = spawnSync(process.execPath, ['-e', CHILD, ROOT, model, file, JSON.stringify(shape)], {
    env: { ...process.env, VIDEOMAE_NATIVE_PATH: ADDON, LD_BIND_NOW: '1' },
    encoding: 'utf8',
    maxBuffer: 16 << 20,
  });
  fs.rmSync(file, { force: true });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  t.diagnostic(`libtorch ${out.runtime.libtorchVersion}, cudaCompiled ${out.runtime.cudaCompiled}, ` +
    `cudaAvailable ${out.runtime.cudaAvailable}; ${out.mapped.length} torch libraries mapped`);

  assert.equal(out.runtime.cudaCompiled, true, 'the addon was compiled with the CUDA path (VMAE_CUDA)');
  assert.equal(out.runtime.cudaAvailable, false);
  assert.ok(out.mapped.some((f) => /libtorch_cuda\.so/.test(f)), `libtorch_cuda is mapped: ${out.mapped.join(', ')}`);
  assert.ok(out.mapped.some((f) => /libc10_cuda\.so/.test(f)), 'libc10_cuda is mapped');

  assert.equal(out.cuda.name, 'VideoMAEError', JSON.stringify(out.cuda));
  assert.equal(out.cuda.code, 'VMAE_DEVICE_UNAVAILABLE');
  assert.match(out.cuda.message, /no usable CUDA/);

  const expected = referenceLogits(checkpoint, input, shape);
  const diff = maxAbsDiff(Float64Array.from(out.logits), expected);
  assert.ok(diff < 1e-4, `CPU logits of the CUDA build: max |node - float64 reference| = ${diff}`);
});
