// The job payload (what a producer puts in Redis and a worker reads back), its validation, and
// the one place a worker turns a job into a video it may read. A payload is untrusted input:
// anyone who can write to Redis can enqueue one.
import * as fs from 'node:fs';
import * as path from 'node:path';

import { z } from 'zod';

import type { Prediction } from '../classification';
import { invalid, isErrorCode, VideoMAEError, type ErrorCode } from '../errors';
import type { VideoTimings } from '../video/clips';
import { MAX_CLIPS, MAX_CROPS } from '../video/sampling';

/** The largest inline video a worker accepts by default (`--max-inline-bytes`), in bytes. */
export const DEFAULT_MAX_INLINE_BYTES = 8 * 1024 * 1024;

/** The BullMQ job name producers use. Workers accept any name. */
export const JOB_NAME = 'classify';

/** The classify options a job carries. */
export interface VideoJobOptions {
  /** Ranked labels to return; more than the model has returns all of them. Default 5. */
  topK?: number;
  /** Temporal clips, averaged (1..32). Default 1. */
  clips?: number;
  /** Spatial crops per clip, averaged (1..8). Default 1. */
  crops?: number;
  /** Take every n-th decoded frame. Default 4. */
  sampleRate?: number;
  /** Fail the attempt with VMAE_TIMEOUT (retried) after this many ms of decoding and inference. */
  timeoutMs?: number;
}

/**
 * A job's data (job.data), as JSON. Exactly one of `path` and `data`. Unknown fields are rejected.
 * Producers other than VideoQueue may enqueue this shape with plain BullMQ.
 */
export interface VideoJobData extends VideoJobOptions {
  /**
   * A video file on the storage the workers share: relative paths resolve against the worker's
   * --root; absolute ones must lie inside it. Never a URL.
   */
  path?: string;
  /** A small video, inline, base64-encoded (at most the worker's --max-inline-bytes once decoded). */
  data?: string;
  /** How results and messages name an inline video. */
  name?: string;
}

/** What a finished job returns (job.returnvalue): the classification and where the time went. */
export interface VideoJobResult {
  /** The job's path, or the inline video's name. */
  video: string;
  /** The topK labels, highest score first. */
  predictions: Prediction[];
  /** The mean logits over all views, one per label, in label order. */
  logits: number[];
  views: number;
  framesDecoded: number;
  durationSec: number;
  timings: VideoTimings & {
    /** From enqueueing (job.timestamp) to the start of this attempt. */
    queueMs: number;
    /** This attempt, from pick-up to result. */
    totalMs: number;
  };
  /** The model's name (from its metadata). */
  model: string;
  /** The worker that ran the job (its --name). */
  worker: string;
  /** 1 for the first attempt. */
  attempt: number;
}

const int = (min: number, max: number) => z.int().min(min).max(max);

const JobSchema = z.strictObject({
  path: z.string().min(1).max(4096).optional(),
  data: z.string().min(1).optional(),
  name: z.string().min(1).max(256).optional(),
  topK: int(1, 100_000).optional(),
  clips: int(1, MAX_CLIPS).optional(),
  crops: int(1, MAX_CROPS).optional(),
  sampleRate: int(1, 1024).optional(),
  timeoutMs: int(1, 2 ** 31 - 1).optional(),
});

// Something that would be read as a URL or an ffmpeg protocol ("http://…", "file:…", "concat:…").
const URL_LIKE = /^[a-z][a-z0-9+.-]*:/i;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * Sync. Checks a payload's shape and sizes (no file system access). Throws VMAE_INVALID_INPUT
 * naming the offending field. Used by producers before enqueueing and by workers before anything else.
 */
export function checkJobData(data: unknown, maxInlineBytes = DEFAULT_MAX_INLINE_BYTES): VideoJobData {
  const parsed = JobSchema.safeParse(data);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue.path.length ? `job.${issue.path.join('.')}` : 'job';
    throw invalid(`Invalid job payload: ${where}: ${issue.message}`);
  }
  const job = parsed.data;
  if ((job.path === undefined) === (job.data === undefined)) {
    throw invalid(`Invalid job payload: expected exactly one of 'path' and 'data' but received ${
      job.path === undefined ? 'neither' : 'both'}`);
  }
  if (job.path !== undefined) {
    if (job.path.includes('\0')) throw invalid('Invalid job payload: job.path contains a NUL byte');
    if (URL_LIKE.test(job.path)) {
      throw invalid(`Invalid job payload: expected a file path for job.path but received the URL '${job.path.slice(0, 80)}'; ` +
        'workers only read files under their --root');
    }
    if (job.name !== undefined) throw invalid("Invalid job payload: job.name is only for inline videos ('data')");
  } else {
    const b64 = job.data!;
    if (b64.length % 4 !== 0 || !BASE64.test(b64)) throw invalid('Invalid job payload: expected base64 for job.data');
    const bytes = (b64.length / 4) * 3 - (b64.endsWith('==') ? 2 : b64.endsWith('=') ? 1 : 0);
    if (bytes > maxInlineBytes) {
      throw invalid(`Invalid job payload: expected an inline video of at most ${maxInlineBytes} bytes but received ${bytes}; ` +
        'put larger videos on shared storage and enqueue their path');
    }
  }
  return job;
}

/**
 * Async. The file a path job names, as a real path inside `root` (a real path itself). Symbolic
 * links are followed first, so a link inside the root that points outside it is refused too.
 * Rejects with VMAE_INVALID_INPUT.
 */
export async function resolveJobPath(jobPath: string, root: string): Promise<string> {
  const outside = () => invalid(`Invalid job payload: job.path '${jobPath.slice(0, 200)}' is outside the worker's root`);
  const inside = (p: string) => p === root || p.startsWith(root.endsWith(path.sep) ? root : root + path.sep);
  const full = path.resolve(root, jobPath);
  if (!inside(full)) throw outside();
  let real: string;
  try {
    real = await fs.promises.realpath(full);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : (err as Error).message;
    throw invalid(`Expected an existing video file for job.path but received '${jobPath.slice(0, 200)}' (${why})`);
  }
  if (!inside(real) || real === root) throw outside();
  return real;
}

/** How a failure travels through BullMQ (failedReason is a string): "CODE: message". */
export function failureReason(err: unknown): { code: ErrorCode; reason: string } {
  const e = err as { code?: unknown; message?: unknown };
  const code = err instanceof VideoMAEError || isErrorCode(e?.code) ? (e.code as ErrorCode) : 'VMAE_RUNTIME';
  const message = typeof e?.message === 'string' ? e.message : String(err);
  return { code, reason: `${code}: ${message}` };
}

/** The VideoMAEError a failedReason stands for; VMAE_RUNTIME when it carries no code. */
export function fromFailureReason(reason: string): VideoMAEError {
  const m = /^(VMAE_[A-Z_]+): ([\s\S]*)$/.exec(reason);
  if (m && isErrorCode(m[1])) return new VideoMAEError(m[1], m[2]);
  return new VideoMAEError('VMAE_RUNTIME', reason);
}
