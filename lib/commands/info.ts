import type { Command } from 'commander';

import { VideoClassifier } from '../classifier';

/** Labels the text output lists before "…". */
const SHOWN_LABELS = 10;

/** Adds `videomae info` to the program. */
export function register(program: Command): void {
  program
    .command('info')
    .description("Print a model file's embedded metadata (name, torch version, config, preprocessing, labels)")
    .argument('<model>', 'model file from `videomae export`')
    .option('--json', 'print JSON (with every label)')
    .action((model: string, flags: { json?: boolean }) => run(model, flags));
}

async function run(model: string, flags: { json?: boolean }): Promise<void> {
  const clf = await VideoClassifier.load(model, { threads: 1 });
  try {
    const { config: c, model: m } = clf;
    const { labels, preprocessing: p, ...geometry } = c; // geometry includes embeddingSize
    if (flags.json) {
      const out = { path: clf.path, name: m.name, description: m.description, torchVersion: m.torchVersion,
        config: geometry, preprocessing: p, numLabels: c.numLabels, labels };
      process.stdout.write(JSON.stringify(out, null, 2) + '\n');
      return;
    }
    const shown = labels.slice(0, SHOWN_LABELS).join(', ') + (labels.length > SHOWN_LABELS ? ', …' : '');
    const rows: Array<[string, string]> = [
      ['file', clf.path],
      ['name', m.name],
      ['description', m.description || '(none)'],
      ['torch', m.torchVersion],
      ['input', `${c.numFrames} frames x ${c.numChannels} x ${c.imageSize}x${c.imageSize}`],
      ['model', `patch ${c.patchSize}, tubelet ${c.tubeletSize}, hidden ${c.hiddenSize}, ${c.numLayers} layers, ${c.numHeads} heads`],
      ['preprocessing', `shortest edge ${p.shortestEdge}, crop ${p.cropSize}, rescale ${+p.rescaleFactor.toPrecision(6)}, ` +
        `mean [${p.mean.join(', ')}], std [${p.std.join(', ')}]`],
      ['labels', c.numLabels ? `${c.numLabels}: ${shown}` : '0 (encoder only: embed() only, no classification head)'],
      ['embedding', c.embeddingSize === null ? 'none (exported before embeddings; re-export to embed)' : `${c.embeddingSize} values`],
    ];
    const width = Math.max(...rows.map(([k]) => k.length));
    process.stdout.write(rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join('\n') + '\n');
  } finally {
    await clf.dispose();
  }
}
