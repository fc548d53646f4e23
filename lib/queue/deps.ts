// The optional peer dependencies of videomae-node/queue, required on first use so that the rest
// of the package never loads them (and works without them installed).
import { VideoMAEError } from '../errors';

function load<T>(name: string, why: string): T {
  try {
    return require(name) as T;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'MODULE_NOT_FOUND') throw err;
    throw new VideoMAEError('VMAE_SETUP_FAILED',
      `videomae-node/queue needs the package '${name}' (${why}), an optional peer dependency that is not installed: ` +
      'npm install bullmq ioredis prom-client', { cause: err });
  }
}

/** BullMQ (which loads ioredis itself, from the connection options). */
export function bullmq(): typeof import('bullmq') {
  load<unknown>('ioredis', 'the Redis client BullMQ uses');
  return load('bullmq', 'the job queue');
}

/** prom-client, for `videomae worker --metrics-port`. */
export function promClient(): typeof import('prom-client') {
  return load('prom-client', 'Prometheus metrics');
}
