import { InvalidArgumentError, type Command } from 'commander';

import { VideoClassifier, type ModelDtype } from '../classifier';
import { requireDefaultModel } from '../default-model';
import { expected, invalid } from '../errors';
import type { SmoothingOptions } from '../video/smoothing';
import type { StreamOptions, StreamResult } from '../video/stream';
import { addModelOptions, integer } from './classify';

interface WatchFlags {
  model?: string;
  device?: string;
  dtype?: ModelDtype;
  topK: number;
  every?: { strideSec?: number; strideFrames?: number };
  mode?: 'latest' | 'every';
  smooth?: SmoothingOptions;
  sampleRate?: number;
  threads?: number;
  allowNetwork?: boolean;
  json?: boolean;
}

/** commander parser for --every: "1s", "500ms", "1.5" (seconds) or "30f" (frames). */
export function stride(value: string): { strideSec?: number; strideFrames?: number } {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|f|frames?)?\s*$/i.exec(value);
  if (!m) throw new InvalidArgumentError('Expected a duration such as 1s, 500ms or 30f (frames).');
  const n = Number(m[1]);
  const unit = (m[2] ?? 's').toLowerCase();
  if (unit.startsWith('f')) return { strideFrames: n };
  return { strideSec: unit === 'ms' ? n / 1000 : n };
}

/** commander parser for --smooth: "ema", "ema:0.3", "vote" or "vote:5". */
export function smoothing(value: string): SmoothingOptions {
  const [method, arg] = value.split(':');
  if (method === 'ema') return arg === undefined ? { method } : { method, alpha: Number(arg) };
  if (method === 'vote') return arg === undefined ? { method } : { method, windows: Number(arg) };
  throw new InvalidArgumentError("Expected 'ema', 'ema:ALPHA', 'vote' or 'vote:K'.");
}

/** Adds `videomae watch` to the program. */
export function register(program: Command): void {
  addModelOptions(program
    .command('watch')
    .description('Classify a live video as it arrives: one line per window (docs/STREAMING.md)')
    .argument('<input>', "a video file, '-' for container bytes on stdin, or a URL with --allow-network"))
    .option('-k, --top-k <n>', 'labels per window', integer, 3)
    .option('--every <stride>', 'stream time between results: 1s, 500ms, or 30f for frames (default 1s)', stride)
    .option('--mode <mode>', "'latest' drops stale windows when inference is behind; 'every' classifies all " +
      "(default: 'every' for a file, 'latest' for stdin and URLs)")
    .option('--smooth <how>', "smooth over windows: 'ema[:alpha]' or 'vote[:K]'", smoothing)
    .option('--sample-rate <n>', 'take every n-th decoded frame (default 4)', integer)
    .option('--threads <n>', 'intra-op threads (default: all cores)', integer)
    .option('--allow-network', 'let <input> be an rtsp:, http(s):, srt:, rtmp: … URL')
    .option('--json', 'print one JSON object per window (NDJSON)')
    .addHelpText('after', '\nExamples:\n' +
      '  videomae watch clip.mp4 --every 500ms\n' +
      '  ffmpeg -i /dev/video0 -f matroska - | videomae watch - --json\n' +
      '  videomae watch rtsp://camera.local/stream --allow-network --smooth ema\n')
    .action((input: string, flags: WatchFlags) => run(input, flags));
}

async function run(input: string, flags: WatchFlags): Promise<void> {
  if (flags.topK < 1) throw expected('a positive integer', '--top-k', flags.topK);
  if (input === '-' && process.stdin.isTTY) {
    throw invalid("Expected container bytes on stdin for '-' but stdin is a terminal; pipe a stream in, " +
      'e.g. ffmpeg -i /dev/video0 -f matroska - | videomae watch -');
  }
  const clf = await VideoClassifier.load(flags.model ?? requireDefaultModel(),
    { device: flags.device, dtype: flags.dtype, threads: flags.threads });
  const ac = new AbortController();
  const stop = () => ac.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    const options: StreamOptions = {
      ...flags.every, topK: Math.min(flags.topK, clf.config.numLabels), mode: flags.mode, smoothing: flags.smooth,
      sampleRate: flags.sampleRate, allowNetwork: flags.allowNetwork, signal: ac.signal,
    };
    for await (const r of clf.classifyStream(input === '-' ? process.stdin : input, options)) {
      process.stdout.write(flags.json ? JSON.stringify(toJson(r)) + '\n' : line(r) + '\n');
    }
  } catch (err) {
    if (!ac.signal.aborted) throw err;
    process.exitCode = 130; // stopped with Ctrl-C: ffmpeg is already gone
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    await clf.dispose();
    if (input === '-') process.stdin.destroy();
  }
}

function toJson(r: StreamResult) {
  return {
    startSec: round(r.startSec, 3), endSec: round(r.endSec, 3), startFrame: r.startFrame, endFrame: r.endFrame,
    predictions: r.predictions, latencyMs: round(r.latencyMs, 1), dropped: r.dropped,
  };
}

const round = (v: number, digits: number) => Number(v.toFixed(digits));

/** "  12.75 s  moving_left  93.1%  · rotating 3.2%  (12 ms)" */
function line(r: StreamResult): string {
  const [top, ...rest] = r.predictions;
  const pct = (s: number) => `${(s * 100).toFixed(1)}%`;
  const others = rest.map((p) => `${p.label} ${pct(p.score)}`).join(', ');
  return `${r.endSec.toFixed(2).padStart(8)} s  ${top.label.padEnd(16)} ${pct(top.score).padStart(6)}` +
    `${others ? `  · ${others}` : ''}  (${Math.round(r.latencyMs)} ms${r.dropped ? `, ${r.dropped} dropped` : ''})`;
}
