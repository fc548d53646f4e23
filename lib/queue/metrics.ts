// Prometheus metrics of one worker process (prom-client), served over HTTP for scraping.
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';

import type { Registry } from 'prom-client';

import { VideoClassifier } from '../classifier';
import type { ErrorCode } from '../errors';
import type { ModelOps } from '../video/frames';
import { promClient } from './deps';
import type { VideoJobResult } from './job';

const LATENCY_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];

/** What a worker records. */
export interface WorkerMetrics {
  readonly registry: Registry;
  jobCompleted(result: VideoJobResult): void;
  jobFailed(code: ErrorCode, retried: boolean): void;
  jobStarted(): () => void;
  modelLoaded(seconds: number): void;
  /** Observes the clips of one forward request (called by MeteredClassifier). */
  forward(clips: number): void;
}

/** Sync. A registry with the worker's metrics and the process defaults; `labels` go on every series. */
export function workerMetrics(labels: Record<string, string>): WorkerMetrics {
  const prom = promClient();
  const registry = new prom.Registry();
  registry.setDefaultLabels(labels);
  prom.collectDefaultMetrics({ register: registry });
  const registers = [registry];
  const completed = new prom.Counter({ name: 'videomae_jobs_completed_total', help: 'Jobs classified', registers });
  const failed = new prom.Counter({
    name: 'videomae_jobs_failed_total', help: 'Failed job attempts, by error code; retried="true" when BullMQ will try again',
    labelNames: ['code', 'retried'], registers,
  });
  const active = new prom.Gauge({ name: 'videomae_jobs_active', help: 'Jobs being processed now', registers });
  const jobSeconds = new prom.Histogram({
    name: 'videomae_job_duration_seconds', help: 'One job attempt, from pick-up to result', buckets: LATENCY_BUCKETS, registers,
  });
  const queueSeconds = new prom.Histogram({
    name: 'videomae_job_queue_seconds', help: 'From enqueueing to the start of the attempt that completed', buckets: LATENCY_BUCKETS, registers,
  });
  const stageSeconds = new prom.Histogram({
    name: 'videomae_classify_stage_seconds', help: 'Time per classification stage (decode, preprocess, inference)',
    labelNames: ['stage'], buckets: LATENCY_BUCKETS, registers,
  });
  const clips = new prom.Histogram({
    name: 'videomae_forward_clips',
    help: 'Clips per forward request sent to the inference thread (which may merge single-clip requests further, up to --max-batch-size)',
    buckets: [1, 2, 3, 4, 6, 8], registers,
  });
  const load = new prom.Gauge({ name: 'videomae_model_load_seconds', help: 'Time to load and warm up the model', registers });
  return {
    registry,
    jobCompleted(r) {
      completed.inc();
      jobSeconds.observe(r.timings.totalMs / 1000);
      queueSeconds.observe(r.timings.queueMs / 1000);
      stageSeconds.observe({ stage: 'decode' }, r.timings.decodeMs / 1000);
      stageSeconds.observe({ stage: 'preprocess' }, r.timings.preprocessMs / 1000);
      stageSeconds.observe({ stage: 'inference' }, r.timings.inferenceMs / 1000);
    },
    jobFailed(code, retried) {
      failed.inc({ code, retried: String(retried) });
    },
    jobStarted() {
      active.inc();
      return () => active.dec();
    },
    modelLoaded(seconds) {
      load.set(seconds);
    },
    forward(n) {
      clips.observe(n);
    },
  };
}

/** A VideoClassifier that reports the size of each forward request to `metrics`. */
export class MeteredClassifier extends VideoClassifier {
  /** @internal Set right after load. */
  metrics: WorkerMetrics | undefined;

  protected override videoOps(): ModelOps {
    const ops = super.videoOps();
    const t = this.config.numFrames;
    return {
      ...ops,
      forward: (pixels, shape, o) => {
        this.metrics?.forward(shape[0]);
        return ops.forward(pixels, shape, o);
      },
      forwardFrames: (frames, shape, crops, o) => {
        this.metrics?.forward((shape[0] / t) * crops);
        return ops.forwardFrames(frames, shape, crops, o);
      },
    };
  }
}

/** Async. Serves `registry` at GET /metrics on host:port; resolves once listening. */
export async function serveMetrics(registry: Registry, port: number, host: string): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    if (req.method !== 'GET' || (req.url !== '/metrics' && !req.url?.startsWith('/metrics?'))) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('Not found; metrics are at /metrics\n');
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
      (err: Error) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`${err.message}\n`),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return server;
}

/** The port a server listens on (for --metrics-port 0). */
export function portOf(server: http.Server): number {
  return (server.address() as AddressInfo).port;
}
