import { Option, type Command } from 'commander';

import type { ModelDtype } from '../classifier';
import { integer } from './classify';

interface WorkerFlags {
  redis: string;
  queue: string;
  root: string;
  model?: string;
  device: string;
  dtype: ModelDtype;
  threads?: number;
  concurrency: number;
  maxBatchSize?: number;
  name?: string;
  maxInlineBytes?: number;
  lockDuration?: number;
  stalledInterval?: number;
  maxStalledCount?: number;
  metricsPort?: number;
  metricsHost: string;
}

/** Adds `videomae worker` to the program. */
export function register(program: Command): void {
  program
    .command('worker')
    .description('Classify videos from a BullMQ queue in Redis, with one loaded model (see README "Scaling out")')
    .addOption(new Option('--redis <url>', 'Redis URL, e.g. redis://host:6379').env('VIDEOMAE_REDIS').makeOptionMandatory())
    .option('--queue <name>', 'queue name', 'videomae')
    .addOption(new Option('--root <dir>', 'folder that job paths resolve against; nothing outside it is read')
      .default(process.cwd(), 'the current folder'))
    .option('-m, --model <file>', 'model file from `videomae export` (default: the bundled demo model)')
    .option('--device <device>', "'cpu', 'cuda' or 'cuda:N' (run one worker per GPU)", 'cpu')
    .option('--dtype <dtype>', "'float32', 'float16' or 'bfloat16'", 'float32')
    .option('--threads <n>', 'intra-op threads (default: all cores)', integer)
    .option('-c, --concurrency <n>', 'jobs at once, all on the one model (they feed its dynamic batching)', integer, 1)
    .option('--max-batch-size <n>', 'clips merged into one forward: 1, 2, 4 or 8 (default: the largest <= concurrency)', integer)
    .option('--name <name>', 'worker name in Redis and logs (default: host:pid)')
    .option('--max-inline-bytes <n>', 'largest inline video a job may carry (default 8 MiB)', integer)
    .option('--lock-duration <ms>', 'job lock lifetime; jobs of a dead worker are retaken after it (default 30000)', integer)
    .option('--stalled-interval <ms>', 'how often to look for jobs of dead workers (default 30000)', integer)
    .option('--max-stalled-count <n>', 'times a job may lose its worker before it fails (default 1)', integer)
    .option('--metrics-port <port>', 'serve Prometheus metrics at http://<host>:<port>/metrics', integer)
    .option('--metrics-host <host>', 'address the metrics server binds', '0.0.0.0')
    .addHelpText('after', '\nSIGTERM or SIGINT drains: running jobs finish, no new ones start, the model is freed, exit 0.\n' +
      'A second signal exits at once (the running jobs are retaken by other workers).\n' +
      'Example: videomae worker --redis redis://10.0.0.5:6379 --root /mnt/videos --model k400.pt --device cuda:0 -c 8\n')
    .action((flags: WorkerFlags) => run(flags));
}

async function run(flags: WorkerFlags): Promise<void> {
  // Required here, not at the top: only this command loads BullMQ and prom-client.
  const { VideoWorker } = require('../queue/worker') as typeof import('../queue/worker');
  const log = (line: string) => process.stderr.write(`videomae worker: ${line}\n`);
  const started = performance.now();
  const worker = await VideoWorker.start({
    redis: flags.redis, queue: flags.queue, root: flags.root, model: flags.model,
    load: { device: flags.device, dtype: flags.dtype, threads: flags.threads, maxBatchSize: flags.maxBatchSize },
    concurrency: flags.concurrency, name: flags.name, maxInlineBytes: flags.maxInlineBytes,
    lockDurationMs: flags.lockDuration, stalledIntervalMs: flags.stalledInterval, maxStalledCount: flags.maxStalledCount,
    metricsPort: flags.metricsPort, metricsHost: flags.metricsHost,
    log: (line) => process.stderr.write(`${line}\n`),
  });
  const clf = worker.classifier;
  log(`${worker.name} ready in ${Math.round(performance.now() - started)} ms: queue '${flags.queue}' on ${redacted(flags.redis)}, ` +
    `model '${clf.model.name}' (${clf.device}, ${clf.dtype}), concurrency ${flags.concurrency}, root ${flags.root}` +
    (worker.metricsPort === undefined ? '' : `, metrics on ${flags.metricsHost}:${worker.metricsPort}/metrics`));

  let signals = 0;
  const stop = (signal: NodeJS.Signals) => {
    if (++signals > 1) {
      log(`${signal} again: exiting now; running jobs will be retaken by other workers`);
      process.exit(1);
    }
    log(`${signal}: draining (${worker.activeJobs} active job${worker.activeJobs === 1 ? '' : 's'}), taking no new jobs`);
    worker.close().then(
      () => {
        log('drained; model disposed; exiting');
        process.exit(0);
      },
      (err: Error) => {
        log(`failed to drain: ${err.message}`);
        process.exit(1);
      });
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

/** The URL without its password, for logs. */
function redacted(url: string): string {
  const u = new URL(url);
  if (u.password) u.password = '***';
  return u.toString();
}
