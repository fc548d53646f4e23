import * as path from 'node:path';

import { Presets, SingleBar } from 'cli-progress';
import { InvalidArgumentError, type Command } from 'commander';

import { VideoClassifier, type ModelDtype } from '../classifier';
import { requireDefaultModel } from '../default-model';
import { expected, VideoMAEError } from '../errors';
import { defaultFileConcurrency, mapOrdered } from '../video/file-pool';
import { resolveSampling } from '../video/sampling';
import type { VideoClassification } from '../video/clips';

interface ClassifyFlags {
  model?: string;
  device?: string;
  dtype?: ModelDtype;
  topK: number;
  clips?: number;
  crops?: number;
  sampleRate?: number;
  threads?: number;
  jobs?: number;
  json?: boolean;
}

/** What --json prints per file (`videomae enqueue --wait --json` prints the same). */
export type FileResult =
  | { file: string; predictions: VideoClassification['predictions']; timings: VideoClassification['timings'];
    views: number; framesDecoded: number; durationSec: number }
  | { file: string; error: { code: string; message: string } };

/** commander parser for integer options. */
export function integer(value: string): number {
  if (!/^-?\d+$/.test(value.trim())) throw new InvalidArgumentError('Expected an integer.');
  return Number(value);
}

/** The options every model-loading command takes: --model, --device, --dtype. */
export function addModelOptions(command: Command): Command {
  return command
    .option('-m, --model <file>', 'model file from `videomae export` (default: the bundled demo model)')
    .option('--device <device>', "'cpu', 'cuda' or 'cuda:N'", 'cpu')
    .option('--dtype <dtype>', "'float32', 'float16' or 'bfloat16'", 'float32');
}

/** The model, device and sampling options that the commands taking video files share. */
export function videoOptions(command: Command): Command {
  return addModelOptions(command.argument('<video...>', 'video files'))
    .option('--clips <n>', 'temporal clips per video, averaged (default 1)', integer)
    .option('--crops <n>', 'spatial crops per clip along the long side, averaged (default 1)', integer)
    .option('--sample-rate <n>', 'take every n-th decoded frame (default 4)', integer)
    .option('--threads <n>', 'intra-op threads (default: all cores)', integer);
}

/** Adds `videomae classify` to the program. */
export function register(program: Command): void {
  videoOptions(program
    .command('classify')
    .description('Classify video files (decoded with ffmpeg; VideoMAE Kinetics test protocol, see docs/VIDEO.md)'))
    .option('-k, --top-k <n>', 'labels to show per file', integer, 5)
    .option('-j, --jobs <n>', `files decoded while one is classified, ffmpeg processes at most (default ${defaultFileConcurrency()})`, integer)
    .option('--json', 'print a JSON array, one entry per file')
    .addHelpText('after', '\nExit status is 1 if any file failed; every file is still reported.\n' +
      'Example: videomae classify --model model.pt --clips 5 --crops 3 a.mp4 b.webm\n')
    .action((videos: string[], flags: ClassifyFlags) => run(videos, flags));
}

async function run(videos: string[], flags: ClassifyFlags): Promise<void> {
  // Fail on bad sampling flags before spending time on the model.
  const sampling = resolveSampling({ clips: flags.clips, crops: flags.crops, sampleRate: flags.sampleRate });
  if (flags.topK < 1) throw expected('a positive integer', '--top-k', flags.topK);
  const jobs = flags.jobs ?? defaultFileConcurrency();
  if (jobs < 1) throw expected('a positive integer', '--jobs', jobs);
  const modelFile = flags.model ?? requireDefaultModel();
  const clf = await VideoClassifier.load(modelFile, { device: flags.device, dtype: flags.dtype, threads: flags.threads });
  const topK = Math.min(flags.topK, clf.config.numLabels); // -k 5 on a 3-label model shows all 3
  const bar = process.stderr.isTTY && videos.length > 1 ? progressBar(videos.length) : undefined;
  let results: FileResult[] = [];
  let reported = 0;
  try {
    // The next files decode while one is classified; results print in the order given.
    results = await mapOrdered(videos, jobs, async (file): Promise<FileResult> => {
      try {
        const r = await clf.classifyVideo(file, { ...sampling, topK });
        return { file, predictions: r.predictions, timings: r.timings, views: r.views,
          framesDecoded: r.framesDecoded, durationSec: r.durationSec };
      } catch (err) {
        const e = err as Partial<VideoMAEError>;
        return { file, error: { code: e.code ?? 'VMAE_RUNTIME', message: e.message ?? String(err) } };
      }
    }, (result, i) => {
      reported = i + 1;
      bar?.update(reported, { file: path.basename(videos[i + 1] ?? '') });
      if (!bar && !flags.json) print(result);
    });
  } finally {
    bar?.update(reported, { file: '' });
    bar?.stop();
    await clf.dispose();
  }
  if (flags.json) process.stdout.write(JSON.stringify(results, null, 2) + '\n');
  else if (bar) results.forEach(print);
  if (results.some((r) => 'error' in r)) process.exitCode = 1;
}

/** A progress bar on stderr: `<verb> [====] 3/10 file.mp4`. */
export function progressBar(total: number, verb = 'classifying'): SingleBar {
  const bar = new SingleBar({ format: `${verb} [{bar}] {value}/{total} {file}`, stream: process.stderr,
    clearOnComplete: true, hideCursor: true }, Presets.shades_classic);
  bar.start(total, 0, { file: '' });
  return bar;
}

/** The human-readable report of one file: a header line and a small table. */
export function print(r: FileResult): void {
  if ('error' in r) {
    process.stderr.write(`${r.file}: failed [${r.error.code}] ${r.error.message}\n\n`);
    return;
  }
  const t = r.timings;
  const ms = (v: number) => `${Math.round(v)} ms`;
  const lines = [
    `${r.file}  (${r.durationSec.toFixed(1)} s, ${r.framesDecoded} frames, ${r.views} view${r.views === 1 ? '' : 's'}; ` +
      `decode ${ms(t.decodeMs)}, preprocess ${ms(t.preprocessMs)}, inference ${ms(t.inferenceMs)})`,
  ];
  const width = Math.max(5, ...r.predictions.map((p) => p.label.length));
  lines.push(`   #  ${'label'.padEnd(width)}   score`);
  r.predictions.forEach((p, i) => {
    lines.push(`  ${String(i + 1).padStart(2)}  ${p.label.padEnd(width)}  ${(p.score * 100).toFixed(1).padStart(5)}%`);
  });
  process.stdout.write(lines.join('\n') + '\n\n');
}
