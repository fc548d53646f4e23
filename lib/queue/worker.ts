// A BullMQ worker around one loaded VideoClassifier: `videomae worker`, and the same as an API.
import * as fs from 'node:fs';
import type * as http from 'node:http';
import * as os from 'node:os';

import type { Job, Worker } from 'bullmq';

import { loadInto, type LoadOptions } from '../classifier';
import { requireDefaultModel } from '../default-model';
import { expected, invalid, type ErrorCode } from '../errors';
import type { VideoLimits } from '../video/limits';
import { bullmq } from './deps';
import { checkJobData, DEFAULT_MAX_INLINE_BYTES, failureReason, resolveJobPath, type VideoJobData, type VideoJobResult } from './job';
import { MeteredClassifier, portOf, serveMetrics, workerMetrics } from './metrics';
import { checkQueueName, DEFAULT_QUEUE, redisConnection } from './redis';

/** Codes worth another attempt (with the job's backoff); every other failure is final at once. */
export const RETRYABLE_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>(['VMAE_BUSY', 'VMAE_OUT_OF_MEMORY', 'VMAE_TIMEOUT']);

export interface VideoWorkerOptions {
  /** Redis URL, e.g. 'redis://host:6379' (rediss:// for TLS; credentials and /db in the URL). */
  redis: string;
  /** Queue name. Default 'videomae'. */
  queue?: string;
  /** Path jobs resolve against this folder and may not leave it (symbolic links included). */
  root: string;
  /** Model file from `videomae export`. Default: the bundled demo model. */
  model?: string;
  /** device, dtype, threads, maxBatchSize, maxBatchDelayMs of the one classifier. */
  load?: Pick<LoadOptions, 'device' | 'dtype' | 'threads' | 'maxBatchSize' | 'maxBatchDelayMs'>;
  /** Jobs processed at once, all by the one model (they feed its queue and batching). Default 1. */
  concurrency?: number;
  /** This worker's name in Redis (job.processedBy) and in logs. Default 'host:pid'. */
  name?: string;
  /** Largest inline video, in bytes. Default 8 MiB. */
  maxInlineBytes?: number;
  /** Decoding limits for every job (VideoLimits). */
  limits?: VideoLimits;
  /** How long a job's lock lasts without renewal; a dead worker's jobs are recovered after it. Default 30000. */
  lockDurationMs?: number;
  /** How often this worker looks for stalled jobs (locks that expired). Default 30000. */
  stalledIntervalMs?: number;
  /** Times a job may stall (its worker died) before it fails. Default 1. */
  maxStalledCount?: number;
  /** Serve Prometheus metrics at http://metricsHost:metricsPort/metrics (0: any free port). */
  metricsPort?: number;
  /** Default '0.0.0.0'. */
  metricsHost?: string;
  /** Where log lines go. Default: stderr. */
  log?: (line: string) => void;
}

/** A running worker. Create with VideoWorker.start(); stop with close(). */
export class VideoWorker {
  /** The port metrics are served on, when metricsPort was given. */
  readonly metricsPort: number | undefined;
  private closing: Promise<void> | undefined;

  private constructor(
    /** The one classifier every job uses. */
    readonly classifier: MeteredClassifier,
    private readonly worker: Worker,
    private readonly server: http.Server | undefined,
    readonly name: string,
    private readonly state: { active: number },
  ) {
    this.metricsPort = server ? portOf(server) : undefined;
  }

  /**
   * Async. Loads the model, starts taking jobs and (with metricsPort) serves metrics. Resolves
   * once connected to Redis. Rejects with VMAE_INVALID_INPUT on bad options, or with the
   * model's load error.
   */
  static async start(options: VideoWorkerOptions): Promise<VideoWorker> {
    const o = resolveWorkerOptions(options);
    const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
    const { Worker, UnrecoverableError } = bullmq();
    const metrics = o.metricsPort === undefined ? undefined
      : workerMetrics({ queue: o.queue, device: options.load?.device ?? 'cpu' });
    const loadStart = performance.now();
    const clf = await loadInto(MeteredClassifier, options.model ?? requireDefaultModel(), {
      ...options.load,
      maxBatchSize: options.load?.maxBatchSize ?? [8, 4, 2, 1].find((b) => b <= o.concurrency),
      maxQueue: Math.max(64, 4 * o.concurrency),
    });
    clf.metrics = metrics;
    metrics?.modelLoaded((performance.now() - loadStart) / 1000);

    const state = { active: 0 };
    const processJob = async (job: Job): Promise<VideoJobResult> => {
      state.active++;
      const finished = metrics?.jobStarted();
      const start = performance.now();
      const queueMs = Math.max(0, Date.now() - job.timestamp);
      try {
        const data: VideoJobData = checkJobData(job.data, o.maxInlineBytes);
        const video = data.path ?? data.name ?? 'inline video';
        const input = data.path !== undefined ? await resolveJobPath(data.path, o.root) : Buffer.from(data.data!, 'base64');
        await progress(job, { stage: 'classifying', percent: 10 });
        const r = await clf.classifyVideo(input, {
          topK: Math.min(data.topK ?? 5, clf.config.numLabels), clips: data.clips, crops: data.crops,
          sampleRate: data.sampleRate, timeoutMs: data.timeoutMs, limits: o.limits,
        });
        const result: VideoJobResult = {
          video, predictions: r.predictions, logits: Array.from(r.logits), views: r.views,
          framesDecoded: r.framesDecoded, durationSec: r.durationSec,
          timings: { ...r.timings, queueMs, totalMs: performance.now() - start },
          model: clf.model.name, worker: o.name, attempt: job.attemptsMade + 1,
        };
        await progress(job, { stage: 'done', percent: 100 });
        metrics?.jobCompleted(result);
        return result;
      } catch (err) {
        const { code, reason } = failureReason(err);
        const retry = RETRYABLE_CODES.has(code);
        metrics?.jobFailed(code, retry && job.attemptsMade + 1 < (job.opts.attempts ?? 1));
        log(`videomae worker: job ${job.id} failed [${code}] ${reason.slice(code.length + 2)}${retry ? ' (retryable)' : ''}`);
        throw retry ? new Error(reason) : new UnrecoverableError(reason);
      } finally {
        state.active--;
        finished?.();
      }
    };

    const worker = new Worker(o.queue, processJob, {
      connection: redisConnection(o.redis), concurrency: o.concurrency, name: o.name, autorun: false,
      lockDuration: o.lockDurationMs, stalledInterval: o.stalledIntervalMs, maxStalledCount: o.maxStalledCount,
    });
    // An 'error' event without a listener would crash the process; these are Redis connection
    // errors (the client reconnects on its own) or errors of BullMQ's housekeeping.
    let lastError = '';
    worker.on('error', (err) => {
      if (err.message !== lastError) log(`videomae worker: ${err.message}`);
      lastError = err.message;
    });
    let server: http.Server | undefined;
    try {
      await worker.waitUntilReady();
      if (metrics) server = await serveMetrics(metrics.registry, o.metricsPort!, o.metricsHost);
    } catch (err) {
      await worker.close(true).catch(() => undefined);
      await clf.dispose();
      throw err;
    }
    void worker.run().catch((err: Error) => log(`videomae worker: ${err.message}`));
    return new VideoWorker(clf, worker, server, o.name, state);
  }

  /**
   * Async. Drains: takes no new jobs, waits for the running ones to finish (and report), then
   * disconnects, disposes the model and stops the metrics server. Idempotent. With `force`, the
   * running jobs are abandoned to other workers (they stall and are picked up again).
   */
  close(force = false): Promise<void> {
    this.closing ??= (async () => {
      try {
        await this.worker.close(force);
      } finally {
        await this.classifier.dispose();
        await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
      }
    })();
    return this.closing;
  }

  /** Jobs running now. */
  get activeJobs(): number {
    return this.state.active;
  }
}

/** Progress is advisory: a failed update (Redis restarting) must not fail the job. */
async function progress(job: Job, value: { stage: string; percent: number }): Promise<void> {
  await job.updateProgress(value).catch(() => undefined);
}

interface ResolvedWorkerOptions {
  redis: string; queue: string; root: string; concurrency: number; name: string; maxInlineBytes: number;
  limits: VideoLimits; lockDurationMs: number; stalledIntervalMs: number; maxStalledCount: number;
  metricsPort: number | undefined; metricsHost: string;
}

function resolveWorkerOptions(o: VideoWorkerOptions): ResolvedWorkerOptions {
  if (o === null || typeof o !== 'object') throw expected('an options object', 'options', o);
  const int = (v: unknown, name: string, min: number, max: number, dflt: number): number => {
    if (v === undefined) return dflt;
    if (!Number.isInteger(v) || (v as number) < min || (v as number) > max) throw expected(`an integer in ${min}..${max}`, name, v);
    return v as number;
  };
  if (typeof o.root !== 'string' || o.root.length === 0) throw expected('a folder path', 'root', o.root);
  let root: string;
  try {
    root = fs.realpathSync(o.root);
  } catch {
    throw invalid(`Expected an existing folder for root but received '${o.root}' (no such folder)`);
  }
  if (!fs.statSync(root).isDirectory()) throw invalid(`Expected a folder for root but '${o.root}' is not one`);
  const maxInlineBytes = int(o.maxInlineBytes, 'maxInlineBytes', 1, 512 * 1024 * 1024, DEFAULT_MAX_INLINE_BYTES);
  redisConnection(o.redis);
  if (o.name !== undefined && (typeof o.name !== 'string' || !/^[\x21-\x7e]{1,200}$/.test(o.name))) {
    throw expected('a name of printable ASCII characters without spaces', 'name', o.name);
  }
  return {
    redis: o.redis,
    queue: checkQueueName(o.queue ?? DEFAULT_QUEUE),
    root,
    concurrency: int(o.concurrency, 'concurrency', 1, 1024, 1),
    name: o.name ?? `${os.hostname()}:${process.pid}`,
    maxInlineBytes,
    limits: { ...o.limits, maxInputBytes: Math.min(o.limits?.maxInputBytes ?? maxInlineBytes, maxInlineBytes) },
    lockDurationMs: int(o.lockDurationMs, 'lockDurationMs', 100, 2 ** 31 - 1, 30_000),
    stalledIntervalMs: int(o.stalledIntervalMs, 'stalledIntervalMs', 100, 2 ** 31 - 1, 30_000),
    maxStalledCount: int(o.maxStalledCount, 'maxStalledCount', 0, 1000, 1),
    metricsPort: o.metricsPort === undefined ? undefined : int(o.metricsPort, 'metricsPort', 0, 65535, 0),
    metricsHost: o.metricsHost ?? '0.0.0.0',
  };
}
