'use strict';
// Benchmark child: videomae-node (the addon, through the public API in lib/).
//   node bench/runners/addon.js --model M.pt --input clips.f32 --clips K --shape T,C,S,S
//     --threads N [--iters I] [--conc C] [--conc-clips J] [--max-batch B] [--skip-c1]
//     [--device cpu] [--dtype float32] [--batch B]
// VIDEOMAE_DISABLE_FUSED_ATTENTION=1 / VIDEOMAE_DISABLE_FUSED_LINEAR=1 in the environment measure
// the graph without those rewrites; VIDEOMAE_CUDA_GRAPHS=1 turns on CUDA-graph replay.

const path = require('node:path');
const { parseArgs, readClips, runPhases } = require('./common');

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const root = path.join(__dirname, '..', '..');
  const { VideoClassifier, Tensor, runtimeInfo } = require(path.join(root, 'lib', 'index.js'));
  const shape = args.shape.split(',').map(Number);
  const clips = readClips(args.input, Number(args.clips), shape);
  const maxBatchSize = Number(args['max-batch'] ?? 1);
  const tensors = clips.map((c) => Tensor.fromBuffer(c, [1, ...shape], 'float32'));
  let model;
  const out = await runPhases(args, async () => {
    model = await VideoClassifier.load(args.model, {
      device: args.device ?? 'cpu', dtype: args.dtype ?? 'float32', threads: Number(args.threads),
      maxBatchSize, maxBatchDelayMs: Number(args['max-batch-delay'] ?? 2), rejectNonFinite: false,
    });
    const forward = async (i) => (await model.classify(tensors[i % tensors.length], { topK: 1 })).logits;
    const per = clips[0].length;
    forward.batched = async (n) => {
      if (!forward.batch || forward.batch.shape[0] !== n) {
        const all = new Float32Array(n * per);
        for (let i = 0; i < n; i++) all.set(clips[i % clips.length], i * per);
        forward.batch = Tensor.fromBuffer(all, [n, ...shape], 'float32');
      }
      return model.classifyBatch(forward.batch, { topK: 1 });
    };
    return forward;
  });
  await model.dispose();
  const info = runtimeInfo();
  out.runtime = 'addon';
  out.max_batch_size = maxBatchSize;
  out.fused_attention = process.env.VIDEOMAE_DISABLE_FUSED_ATTENTION !== '1';
  out.fused_linear = process.env.VIDEOMAE_DISABLE_FUSED_LINEAR !== '1';
  out.cuda_graphs = process.env.VIDEOMAE_CUDA_GRAPHS === '1';
  out.versions = { node: process.version, libtorch: info.libtorchVersion, libtorch_source: info.libtorchSource,
    cpu_kernels: info.cpuKernels };
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
