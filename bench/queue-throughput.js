#!/usr/bin/env node
'use strict';
// Queue throughput: a local redis-server (Debian's, on a free loopback port), then 1 and 2
// `videomae worker` processes with the demo model on examples/*.mp4. For each worker count, one
// warm-up round, then `--jobs` jobs enqueued at once (classifyMany) and timed from enqueueing to the
// last result. Workers on one machine share its cores, so on a small CPU box 2 workers show the
// queue's overhead and contention, not a scale-out; run workers on separate machines for that.
// `node bench/queue-throughput.js [--jobs 60] [--concurrency 2] [--threads N]`
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const { startRedis, startWorker, kill } = require('../test/helpers/queue');
const { VideoQueue } = require('../lib/queue');

function arg(name, dflt) {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
}
const JOBS = arg('--jobs', 60);
const CONCURRENCY = arg('--concurrency', 2);
const THREADS = arg('--threads', undefined);
const EXAMPLES = path.join(__dirname, '..', 'examples');
const FILES = fs.readdirSync(EXAMPLES).filter((f) => f.endsWith('.mp4')).sort();

async function round(queue, n) {
  const files = Array.from({ length: n }, (_, i) => FILES[i % FILES.length]);
  const t0 = performance.now();
  const perJob = [];
  for await (const o of queue.classifyMany(files)) {
    if (o.error) throw o.error;
    perJob.push(o.result.timings.totalMs);
  }
  const seconds = (performance.now() - t0) / 1000;
  perJob.sort((a, b) => a - b);
  return { seconds, median: perJob[Math.floor(perJob.length / 2)] };
}

(async () => {
  const cpu = (os.cpus()[0]?.model ?? 'unknown CPU').trim();
  console.log(`CPU: ${cpu}, ${os.cpus().length} logical cores; ${JOBS} jobs per run, --concurrency ${CONCURRENCY}` +
    `${THREADS ? `, --threads ${THREADS}` : ''}; demo model, examples/*.mp4 (2 s, 64x64)`);
  const redis = await startRedis();
  try {
    for (const workers of [1, 2]) {
      const queueName = `bench-${workers}`;
      const extra = ['--root', EXAMPLES, '--concurrency', String(CONCURRENCY), ...(THREADS ? ['--threads', String(THREADS)] : [])];
      const procs = await Promise.all(Array.from({ length: workers }, (_, i) =>
        startWorker(['--redis', redis.url, '--queue', queueName, '--name', `bench${i + 1}`, ...extra])));
      const queue = new VideoQueue({ redis: redis.url, queue: queueName });
      try {
        await round(queue, 2 * workers * CONCURRENCY); // warm-up
        const { seconds, median } = await round(queue, JOBS);
        console.log(`${workers} worker(s): ${JOBS} jobs in ${seconds.toFixed(2)} s = ${(JOBS / seconds).toFixed(2)} jobs/s; ` +
          `median job attempt ${median.toFixed(0)} ms`);
      } finally {
        await queue.close();
        for (const p of procs) {
          p.child.kill('SIGTERM');
          await p.exited;
        }
        await Promise.all(procs.map(kill));
      }
    }
  } finally {
    await redis.stop();
  }
})().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
