'use strict';
// For scripts/gpu/run.sh's correctness check: the addon's logits of a raw float32 input.
//   node scripts/gpu/addon_logits.js MODEL.pt INPUT.f32 B,T,C,H,W OUTPUT.f32 [--device cuda] [--dtype float32]
// Writes float32 logits [B, L] to OUTPUT.f32 and prints one JSON line with what was run.

const fs = require('node:fs');
const path = require('node:path');

async function main() {
  const [model, input, shapeArg, output, ...rest] = process.argv.slice(2);
  const opt = (name, dflt) => {
    const i = rest.indexOf(`--${name}`);
    return i >= 0 ? rest[i + 1] : dflt;
  };
  const { VideoClassifier, Tensor, runtimeInfo } = require(path.join(__dirname, '..', '..', 'lib', 'index.js'));
  const shape = shapeArg.split(',').map(Number);
  const buf = fs.readFileSync(input);
  const x = new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
  const clf = await VideoClassifier.load(model, { device: opt('device', 'cuda'), dtype: opt('dtype', 'float32'), rejectNonFinite: false });
  const rs = await clf.classifyBatch(Tensor.fromBuffer(x, shape), { topK: 1 });
  const logits = new Float32Array(rs.length * clf.config.numLabels);
  rs.forEach((r, i) => logits.set(r.logits, i * clf.config.numLabels));
  fs.writeFileSync(output, Buffer.from(logits.buffer));
  process.stdout.write(`${JSON.stringify({ device: clf.device, dtype: clf.dtype, runtime: runtimeInfo() })}\n`);
  await clf.dispose();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
