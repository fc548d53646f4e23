// The producer side: enqueue videos for `videomae worker`s and await their results.
import type { ConnectionOptions, Job, JobsOptions, Queue, QueueEvents } from 'bullmq';

import { expected, invalid, VideoMAEError } from '../errors';
import { bullmq } from './deps';
import { checkJobData, DEFAULT_MAX_INLINE_BYTES, fromFailureReason, JOB_NAME, type VideoJobData, type VideoJobOptions,
  type VideoJobResult } from './job';
import { checkQueueName, DEFAULT_QUEUE, redisConnection } from './redis';

/** A video for a worker: a path on the workers' shared storage (under their --root), or the bytes of a small video. */
export type QueueVideo = string | Uint8Array;

export interface VideoQueueOptions {
  /** Redis URL, e.g. 'redis://host:6379'. */
  redis: string;
  /** Queue name. Default 'videomae'. */
  queue?: string;
  /** Attempts per job; only VMAE_BUSY, VMAE_OUT_OF_MEMORY and VMAE_TIMEOUT are retried. Default 5. */
  attempts?: number;
  /** Delay before the first retry in ms, doubled for each further one. Default 1000. */
  backoffMs?: number;
  /** Largest inline video sent, in bytes; match the workers' --max-inline-bytes. Default 8 MiB. */
  maxInlineBytes?: number;
  /** Finished jobs (and their results) are removed from Redis after this many seconds. Default 86400. */
  keepFinishedSec?: number;
}

export interface QueueClassifyOptions extends VideoJobOptions {
  /**
   * The job's id. Enqueueing an id that is still in Redis adds nothing: the caller gets that job's
   * result. Derive it from the video and options to make resubmissions idempotent. Default: a new id.
   */
  jobId?: string;
  /** How results name an inline video. */
  name?: string;
  /** BullMQ priority, 1 (highest) to 2097152. Default: none (first in, first out). */
  priority?: number;
}

/** One finished job of classifyMany: its result, or the error it failed with. */
export type QueueOutcome =
  | { index: number; video: string; jobId: string; result: VideoJobResult; error?: undefined }
  | { index: number; video: string; jobId: string; result?: undefined; error: VideoMAEError };

/** A queue of videos to classify, for producers anywhere that can reach Redis. */
export class VideoQueue {
  /** The BullMQ Queue, for what this class does not wrap (counts, pausing, cleaning). */
  readonly queue: Queue<VideoJobData, VideoJobResult>;
  private readonly connection: ConnectionOptions;
  private queueEvents: QueueEvents | undefined;
  private readonly jobOptions: JobsOptions;
  private readonly maxInlineBytes: number;
  private closing: Promise<void> | undefined;

  /** Sync. Connects lazily. Throws VMAE_INVALID_INPUT on bad options, VMAE_SETUP_FAILED without bullmq. */
  constructor(options: VideoQueueOptions) {
    if (options === null || typeof options !== 'object') throw expected('an options object', 'options', options);
    const connection = redisConnection(options.redis);
    const name = checkQueueName(options.queue ?? DEFAULT_QUEUE);
    const int = (v: unknown, key: string, min: number, max: number, dflt: number): number => {
      if (v === undefined) return dflt;
      if (!Number.isInteger(v) || (v as number) < min || (v as number) > max) throw expected(`an integer in ${min}..${max}`, key, v);
      return v as number;
    };
    const keep = int(options.keepFinishedSec, 'keepFinishedSec', 1, 365 * 86400, 86400);
    this.jobOptions = {
      attempts: int(options.attempts, 'attempts', 1, 100, 5),
      backoff: { type: 'exponential', delay: int(options.backoffMs, 'backoffMs', 0, 3_600_000, 1000) },
      removeOnComplete: { age: keep },
      removeOnFail: { age: keep },
    };
    this.maxInlineBytes = int(options.maxInlineBytes, 'maxInlineBytes', 1, 512 * 1024 * 1024, DEFAULT_MAX_INLINE_BYTES);
    const { Queue } = bullmq();
    this.connection = connection;
    this.queue = new Queue(name, { connection });
    // Each job awaited (waitUntilFinished) listens for the queue closing.
    this.queue.setMaxListeners(0);
    // Without a listener an 'error' event would throw; connection errors are retried by the client.
    this.queue.on('error', () => undefined);
  }

  /** QueueEvents, created on first need: producers that only enqueue never open its blocking connection. */
  private get events(): QueueEvents {
    if (!this.queueEvents) {
      const { QueueEvents } = bullmq();
      // From the start of the event stream, not '$': BullMQ checks a job's state once its QueueEvents
      // is "ready", which can be before the first XREAD is issued; an event emitted in between would
      // be missed and the wait would never end. Replaying the capped stream once closes that gap.
      const events = new QueueEvents(this.queue.name, { connection: this.connection, lastEventId: '0-0' });
      // Each awaited job listens for its own two events.
      events.setMaxListeners(0);
      events.on('error', () => undefined);
      this.queueEvents = events;
    }
    return this.queueEvents;
  }

  /**
   * Async. Enqueues one video and resolves with its result once a worker has classified it.
   * Rejects with a VideoMAEError carrying the worker's code (VMAE_INVALID_INPUT, VMAE_DECODE_FAILED, …),
   * or with VMAE_INVALID_INPUT before enqueueing when `video` or `options` are malformed.
   */
  async classify(video: QueueVideo, options: QueueClassifyOptions = {}): Promise<VideoJobResult> {
    return this.result(await this.enqueue(video, options));
  }

  /** Async. Enqueues one video and resolves with its job id, without waiting for the result. */
  async enqueue(video: QueueVideo, options: QueueClassifyOptions = {}): Promise<string> {
    const { data, opts } = this.job(video, options);
    const job = await redis(() => this.queue.add(JOB_NAME, data, opts));
    return job.id!;
  }

  /**
   * Async. Resolves with the result of job `jobId` (enqueued by anyone) once it has finished;
   * rejects with its failure as a VideoMAEError, or VMAE_INVALID_INPUT when no such job exists.
   */
  async result(jobId: string): Promise<VideoJobResult> {
    if (typeof jobId !== 'string' || jobId.length === 0) throw expected('a job id', 'jobId', jobId);
    const job: Job<VideoJobData, VideoJobResult> | undefined = await redis(() => this.queue.getJob(jobId));
    if (!job) throw invalid(`No job '${jobId}' in queue '${this.queue.name}' (never enqueued, or removed after keepFinishedSec)`);
    try {
      return await job.waitUntilFinished(this.events);
    } catch (err) {
      // BullMQ rejects with Error(failedReason), or with the string 'closing queue' on close().
      throw fromFailureReason(typeof (err as Error)?.message === 'string' ? (err as Error).message : String(err));
    }
  }

  /**
   * Enqueues every video (in one round trip) and yields each outcome as its job finishes, in
   * finishing order. A failed job yields an `error`; it does not end the iteration.
   */
  async *classifyMany(videos: Iterable<QueueVideo>, options: Omit<QueueClassifyOptions, 'jobId' | 'name'> = {}):
    AsyncGenerator<QueueOutcome, void, undefined> {
    const list = [...videos];
    const jobs = list.map((v) => this.job(v, options));
    if (jobs.length === 0) return;
    const added = await redis(() => this.queue.addBulk(jobs.map(({ data, opts }) => ({ name: JOB_NAME, data, opts }))));
    const pending = new Map<number, Promise<QueueOutcome>>();
    added.forEach((job, index) => {
      const video = typeof list[index] === 'string' ? (list[index] as string) : `inline video #${index}`;
      const base = { index, video, jobId: job.id! };
      pending.set(index, this.result(job.id!).then(
        (result): QueueOutcome => ({ ...base, result }),
        (err): QueueOutcome => ({ ...base, error: err instanceof VideoMAEError ? err : fromFailureReason(String(err)) })));
    });
    while (pending.size > 0) {
      const outcome = await Promise.race(pending.values());
      pending.delete(outcome.index);
      yield outcome;
    }
  }

  /** Async. Closes the Redis connections; pending classify() calls reject. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      const events = this.queueEvents;
      if (events) {
        // QueueEvents.close() waits for a connection that may never come (Redis unreachable);
        // it stops the event loop, and closing its backend with force ends the sockets either way.
        const closed = events.close().catch(() => undefined);
        await events.getBackend().close(true).catch(() => undefined);
        await closed;
      }
      await this.queue.close();
    })();
    return this.closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  private job(video: QueueVideo, options: QueueClassifyOptions): { data: VideoJobData; opts: JobsOptions } {
    if (options === null || typeof options !== 'object') throw expected('an options object', 'options', options);
    const { jobId, priority, name, ...classify } = options;
    let data: Record<string, unknown>;
    if (typeof video === 'string') data = { path: video, ...classify };
    else if (video instanceof Uint8Array) {
      data = { data: Buffer.from(video.buffer, video.byteOffset, video.byteLength).toString('base64'), name, ...classify };
    } else throw expected('a path string or a Buffer', 'video', video);
    if (typeof video === 'string' && name !== undefined) throw invalid('options.name is only for inline (Buffer) videos');
    for (const [k, v] of Object.entries(data)) if (v === undefined) delete data[k];
    const checked = checkJobData(data, this.maxInlineBytes);
    const opts: JobsOptions = { ...this.jobOptions };
    if (jobId !== undefined) {
      if (typeof jobId !== 'string' || jobId.length === 0 || jobId.length > 256 || jobId.includes(':') || /^\d+$/.test(jobId)) {
        throw expected("a job id of 1..256 characters, not all digits and without ':'", 'jobId', jobId);
      }
      opts.jobId = jobId;
    }
    if (priority !== undefined) {
      if (!Number.isInteger(priority) || priority < 1 || priority > 2_097_152) throw expected('an integer in 1..2097152', 'priority', priority);
      opts.priority = priority;
    }
    return { data: checked, opts };
  }
}

/** Runs a Redis operation; its failure (connection refused, closed) becomes VMAE_RUNTIME. */
async function redis<T>(op: () => Promise<T>): Promise<T> {
  try {
    return await op();
  } catch (err) {
    if (err instanceof VideoMAEError) throw err;
    throw new VideoMAEError('VMAE_RUNTIME', `Redis: ${(err as Error)?.message ?? String(err)}`, { cause: err });
  }
}
