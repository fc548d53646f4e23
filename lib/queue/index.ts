// videomae-node/queue: scale classification out over BullMQ and Redis. Loads bullmq (and through
// it ioredis) and prom-client; the main entry point never does.
export { VideoQueue } from './producer';
export type { QueueClassifyOptions, QueueOutcome, QueueVideo, VideoQueueOptions } from './producer';
export { VideoWorker, RETRYABLE_CODES } from './worker';
export type { VideoWorkerOptions } from './worker';
export { checkJobData, DEFAULT_MAX_INLINE_BYTES, JOB_NAME } from './job';
export type { VideoJobData, VideoJobOptions, VideoJobResult } from './job';
export { DEFAULT_QUEUE } from './redis';
export { VideoMAEError } from '../errors';
export type { ErrorCode } from '../errors';
