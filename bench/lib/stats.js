'use strict';
// Summary statistics of one benchmark child's raw output.

/** Nearest-rank percentile of `xs` (0 < p <= 100); undefined for an empty list. */
function percentile(xs, p) {
  if (!xs || xs.length === 0) return undefined;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}

function mean(xs) {
  return xs && xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : undefined;
}

/** a / b rounded to 3 digits, or null when either is missing. */
function ratio(a, b) {
  return a > 0 && b > 0 ? Math.round((a / b) * 1000) / 1000 : null;
}

/** The numbers the report shows, from one child's JSON. */
function summarize(raw) {
  const s = { load_ms: raw.load_ms, first_call_ms: raw.first_call_ms, peak_rss_mb: raw.peak_rss_mb };
  if (raw.c1) {
    s.c1_mean_ms = mean(raw.c1.lat_ms);
    s.c1_p50_ms = percentile(raw.c1.lat_ms, 50);
    s.c1_p99_ms = percentile(raw.c1.lat_ms, 99);
    s.c1_clips_per_s = 1000 / s.c1_mean_ms;
    if (raw.c1.cpu_ms !== undefined) s.c1_cpu_ms_per_clip = raw.c1.cpu_ms / raw.c1.lat_ms.length;
    if (raw.c1.lag_p99_ms !== undefined) s.c1_lag_p99_ms = raw.c1.lag_p99_ms;
  }
  if (raw.cc) {
    s.cc_p50_ms = percentile(raw.cc.lat_ms, 50);
    s.cc_p99_ms = percentile(raw.cc.lat_ms, 99);
    s.cc_clips_per_s = (raw.cc.clips * 1000) / raw.cc.wall_ms;
    if (raw.cc.cpu_ms !== undefined) s.cc_cpu_ms_per_clip = raw.cc.cpu_ms / raw.cc.clips;
    if (raw.cc.lag_p99_ms !== undefined) {
      s.cc_lag_p99_ms = raw.cc.lag_p99_ms;
      s.cc_lag_max_ms = raw.cc.lag_max_ms;
    }
  }
  if (raw.batch) {
    s.batch = raw.batch.batch;
    s.batch_p50_ms = percentile(raw.batch.lat_ms, 50);
    s.batch_clips_per_s = (raw.batch.batch * 1000) / mean(raw.batch.lat_ms);
  }
  if (raw.peak_gpu_mb !== undefined) s.peak_gpu_mb = raw.peak_gpu_mb;
  return s;
}

module.exports = { percentile, mean, ratio, summarize };
