import * as fs from 'node:fs';
import * as path from 'node:path';

import type { Command } from 'commander';

import { VideoClassifier, type ModelDtype } from '../classifier';
import { requireDefaultModel } from '../default-model';
import { invalid, VideoMAEError } from '../errors';
import { resolveSampling } from '../video/sampling';
import { progressBar, videoOptions } from './classify';

interface EmbedFlags {
  model?: string;
  device?: string;
  dtype?: ModelDtype;
  clips?: number;
  crops?: number;
  sampleRate?: number;
  threads?: number;
  normalize?: boolean;
  json?: boolean;
  npy?: string;
}

type FileResult = { file: string; embedding: Float32Array } | { file: string; error: { code: string; message: string } };

/** Adds `videomae embed` to the program. */
export function register(program: Command): void {
  videoOptions(program
    .command('embed')
    .description('Embed video files: one vector per file, the mean over its clips x crops views (for search, deduplication, clustering)'))
    .option('--normalize', 'scale each vector to unit length (dot product = cosine similarity)')
    .option('--json', 'print a JSON array, one { file, embedding } (or { file, error }) per file')
    .option('--npy <file>', 'write a float32 [N, D] .npy array, one row per embedded file, and a sidecar <file minus .npy>.json listing the files in row order')
    .addHelpText('after', '\nWithout --json or --npy, prints one line per file: its length, norm and first values.\n' +
      'Exit status is 1 if any file failed; every file is still reported (failed files get no .npy row).\n' +
      'Example: videomae embed --model model.pt --normalize --npy index.npy videos/*.mp4\n')
    .action((videos: string[], flags: EmbedFlags) => run(videos, flags));
}

/** The sidecar of an .npy file: out.npy -> out.json. */
export function sidecarPath(npy: string): string {
  return npy.replace(/\.npy$/i, '') + '.json';
}

async function run(videos: string[], flags: EmbedFlags): Promise<void> {
  const sampling = resolveSampling({ clips: flags.clips, crops: flags.crops, sampleRate: flags.sampleRate });
  if (flags.json && flags.npy !== undefined) throw invalid('Expected one of --json and --npy, not both');
  if (flags.npy !== undefined) checkWritable(flags.npy);
  const modelFile = flags.model ?? requireDefaultModel();
  const clf = await VideoClassifier.load(modelFile, { device: flags.device, dtype: flags.dtype, threads: flags.threads });
  const results: FileResult[] = [];
  const bar = process.stderr.isTTY && videos.length > 1 ? progressBar(videos.length, 'embedding') : undefined;
  try {
    // A file without an embedding output fails every video the same way: say so once, up front.
    if (clf.config.embeddingSize === null) await clf.embed(videos[0]);
    for (const file of videos) {
      bar?.update(results.length, { file: path.basename(file) });
      try {
        results.push({ file, embedding: await clf.embed(file, { ...sampling, normalize: flags.normalize ?? false }) });
      } catch (err) {
        const e = err as Partial<VideoMAEError>;
        results.push({ file, error: { code: e.code ?? 'VMAE_RUNTIME', message: e.message ?? String(err) } });
      }
      if (!bar && !flags.json && flags.npy === undefined) print(results[results.length - 1]);
    }
  } finally {
    bar?.update(results.length, { file: '' });
    bar?.stop();
    await clf.dispose();
  }
  const failed = results.filter((r): r is Extract<FileResult, { error: unknown }> => 'error' in r);
  if (flags.json) {
    const out = results.map((r) => ('error' in r ? r : { file: r.file, embedding: Array.from(r.embedding) }));
    process.stdout.write(JSON.stringify(out) + '\n');
  } else if (flags.npy !== undefined) {
    const rows = results.filter((r): r is Extract<FileResult, { embedding: unknown }> => 'embedding' in r);
    writeNpy(flags.npy, rows.map((r) => r.embedding), clf.config.embeddingSize!);
    const sidecar = {
      model: path.resolve(modelFile), name: clf.model.name, normalized: flags.normalize ?? false,
      shape: [rows.length, clf.config.embeddingSize], sampling,
      files: rows.map((r) => r.file), failed: failed.map((r) => ({ file: r.file, ...r.error })),
    };
    fs.writeFileSync(sidecarPath(flags.npy), JSON.stringify(sidecar, null, 2) + '\n');
    process.stderr.write(`wrote ${flags.npy} (${rows.length} x ${clf.config.embeddingSize} float32) and ${sidecarPath(flags.npy)}\n`);
    failed.forEach(print);
  } else if (bar) {
    results.forEach(print);
  }
  if (failed.length) process.exitCode = 1;
}

function checkWritable(file: string): void {
  if (!/\.npy$/i.test(file)) throw invalid(`Expected a file name ending in .npy for --npy but received '${file}'`);
  const dir = path.dirname(path.resolve(file));
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) throw invalid(`The folder of --npy ${file} does not exist`);
}

/** Writes rows as a little-endian float32 [N, D] .npy file (format version 1.0). */
export function writeNpy(file: string, rows: readonly Float32Array[], width: number): void {
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${rows.length}, ${width}), }`;
  // magic (6) + version (2) + header length (2) + header, padded with spaces to a multiple of 64, ending in \n
  const total = Math.ceil((10 + header.length + 1) / 64) * 64;
  header = header.padEnd(total - 10 - 1, ' ') + '\n';
  const out = Buffer.alloc(total + rows.length * width * 4);
  out.write('\x93NUMPY', 0, 'latin1');
  out[6] = 1;
  out[7] = 0;
  out.writeUInt16LE(header.length, 8);
  out.write(header, 10, 'latin1');
  rows.forEach((r, i) => {
    for (let j = 0; j < width; j++) out.writeFloatLE(r[j], total + (i * width + j) * 4);
  });
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, out);
  fs.renameSync(tmp, file);
}

function print(r: FileResult): void {
  if ('error' in r) {
    process.stderr.write(`${r.file}: failed [${r.error.code}] ${r.error.message}\n`);
    return;
  }
  let sq = 0;
  for (const v of r.embedding) sq += v * v;
  const head = Array.from(r.embedding.subarray(0, 4), (v) => v.toFixed(4)).join(', ');
  process.stdout.write(`${r.file}  D=${r.embedding.length}  norm=${Math.sqrt(sq).toFixed(4)}  [${head}, …]\n`);
}
