// Redis connection options and queue names, checked the same way by workers and producers.
import type { ConnectionOptions } from 'bullmq';

import { expected } from '../errors';

/** The queue workers and producers use when none is named. */
export const DEFAULT_QUEUE = 'videomae';

/**
 * Sync. BullMQ connection options for a redis:// or rediss:// URL (credentials and /db may be
 * in the URL). Throws VMAE_INVALID_INPUT.
 */
export function redisConnection(url: unknown): ConnectionOptions {
  let parsed: URL | undefined;
  try {
    parsed = typeof url === 'string' ? new URL(url) : undefined;
  } catch {
    parsed = undefined;
  }
  if (!parsed || (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') || !parsed.hostname) {
    throw expected("a Redis URL such as 'redis://host:6379'", 'redis', url);
  }
  // Workers and QueueEvents block on Redis; BullMQ needs retries without a per-request cap so
  // that commands wait out a Redis restart instead of failing.
  return { url: url as string, maxRetriesPerRequest: null };
}

/** Sync. Throws VMAE_INVALID_INPUT unless `name` is a usable queue name. */
export function checkQueueName(name: unknown): string {
  if (typeof name !== 'string' || !/^[A-Za-z0-9_.-]{1,200}$/.test(name)) {
    throw expected('a queue name of letters, digits, _ . and -', 'queue', name);
  }
  return name;
}
