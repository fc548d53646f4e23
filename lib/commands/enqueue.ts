import * as fs from 'node:fs';
import * as path from 'node:path';

import { Option, type Command } from 'commander';

import { integer, print, progressBar, type FileResult } from './classify';

interface EnqueueFlags {
  redis: string;
  queue: string;
  wait?: boolean;
  json?: boolean;
  inline?: boolean;
  topK?: number;
  clips?: number;
  crops?: number;
  sampleRate?: number;
  timeoutMs?: number;
  priority?: number;
  attempts?: number;
}

/** Adds `videomae enqueue` to the program. */
export function register(program: Command): void {
  program
    .command('enqueue')
    .description('Queue videos for `videomae worker`s; with --wait, print their results (see README "Scaling out")')
    .argument('<video...>', "video paths as the workers see them (relative to their --root), or local files with --inline")
    .addOption(new Option('--redis <url>', 'Redis URL, e.g. redis://host:6379').env('VIDEOMAE_REDIS').makeOptionMandatory())
    .option('--queue <name>', 'queue name', 'videomae')
    .option('--wait', 'wait for the results and print them (exit status 1 if any failed)')
    .option('--json', 'print JSON: the job ids, or with --wait one entry per file as `videomae classify --json`')
    .option('--inline', 'send the bytes of these local files instead of their paths (small videos only)')
    .option('-k, --top-k <n>', 'labels to return per file (default 5)', integer)
    .option('--clips <n>', 'temporal clips per video, averaged (default 1)', integer)
    .option('--crops <n>', 'spatial crops per clip, averaged (default 1)', integer)
    .option('--sample-rate <n>', 'take every n-th decoded frame (default 4)', integer)
    .option('--timeout-ms <ms>', 'per attempt; a timed-out attempt is retried', integer)
    .option('--priority <n>', '1 (highest) to 2097152; default: first in, first out', integer)
    .option('--attempts <n>', 'attempts per job for transient failures (default 5)', integer)
    .addHelpText('after', '\nExample: videomae enqueue --redis redis://10.0.0.5:6379 --wait clips/a.mp4 clips/b.mp4\n')
    .action((videos: string[], flags: EnqueueFlags) => run(videos, flags));
}

async function run(videos: string[], flags: EnqueueFlags): Promise<void> {
  // Required here, not at the top: only this command loads BullMQ.
  const { VideoQueue } = require('../queue/producer') as typeof import('../queue/producer');
  const queue = new VideoQueue({ redis: flags.redis, queue: flags.queue, attempts: flags.attempts });
  const options = {
    topK: flags.topK, clips: flags.clips, crops: flags.crops, sampleRate: flags.sampleRate,
    timeoutMs: flags.timeoutMs, priority: flags.priority,
  };
  try {
    const inputs = flags.inline ? await Promise.all(videos.map((v) => fs.promises.readFile(v))) : videos;
    if (!flags.wait) {
      const ids: { file: string; jobId: string }[] = [];
      for (const [i, video] of inputs.entries()) {
        const name = flags.inline ? path.basename(videos[i]) : undefined;
        ids.push({ file: videos[i], jobId: await queue.enqueue(video, { ...options, name }) });
      }
      if (flags.json) process.stdout.write(JSON.stringify(ids, null, 2) + '\n');
      else for (const { file, jobId } of ids) process.stdout.write(`${jobId}\t${file}\n`);
      return;
    }
    const results: FileResult[] = new Array(videos.length);
    const bar = process.stderr.isTTY && !flags.json ? progressBar(videos.length, 'waiting') : undefined;
    let done = 0;
    try {
      for await (const outcome of queue.classifyMany(inputs, options)) {
        const file = videos[outcome.index];
        const r = outcome.result;
        results[outcome.index] = r
          ? { file, predictions: r.predictions, timings: r.timings, views: r.views, framesDecoded: r.framesDecoded,
            durationSec: r.durationSec }
          : { file, error: { code: outcome.error.code, message: outcome.error.message } };
        bar?.update(++done, { file: path.basename(file) });
        if (!bar && !flags.json) print(results[outcome.index]);
      }
    } finally {
      bar?.stop();
    }
    if (flags.json) process.stdout.write(JSON.stringify(results, null, 2) + '\n');
    else if (bar) results.forEach(print);
    if (results.some((r) => 'error' in r)) process.exitCode = 1;
  } finally {
    await queue.close();
  }
}
