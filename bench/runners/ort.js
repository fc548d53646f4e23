'use strict';
// Benchmark child: onnxruntime-node on the ONNX exported from the same .pt (scripts/export_onnx.py).
//   node bench/runners/ort.js --model M.onnx --input clips.f32 --clips K --shape T,C,S,S
//     --threads N [--iters I] [--conc C] [--conc-clips J] [--opt all|extended|basic|disabled]

const { parseArgs, readClips, runPhases } = require('./common');

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const ort = require('onnxruntime-node');
  const shape = args.shape.split(',').map(Number);
  const clips = readClips(args.input, Number(args.clips), shape);
  const tensors = clips.map((c) => new ort.Tensor('float32', c, [1, ...shape]));
  let session;
  const out = await runPhases(args, async () => {
    session = await ort.InferenceSession.create(args.model, {
      graphOptimizationLevel: args.opt ?? 'all',
      intraOpNumThreads: Number(args.threads),
      interOpNumThreads: 1,
      executionMode: 'sequential',
    });
    return async (i) => (await session.run({ pixel_values: tensors[i % tensors.length] })).logits.data;
  });
  await session.release();
  out.runtime = 'onnxruntime-node';
  out.graph_optimization = args.opt ?? 'all';
  out.versions = { node: process.version, onnxruntime: require('onnxruntime-node/package.json').version };
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
