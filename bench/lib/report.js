'use strict';
// The Markdown table and the SVG chart of a benchmark result (bench/run.js).

const f = (v, d) => {
  if (v === undefined || v === null || Number.isNaN(v)) return '–';
  const digits = d ?? (Math.abs(v) >= 100 ? 0 : Math.abs(v) >= 1 ? 1 : 2);
  return Number(v).toFixed(digits);
};

function markdown(r, svgName) {
  const m = r.machine;
  const v = r.versions;
  const lines = [
    `# videomae-node benchmark: ${r.label}`,
    '',
    `- Date: ${r.date}${r.quick ? ' (quick mode)' : ''}; duration ${r.duration_s} s`,
    `- Machine: ${m.cpu}${m.cpu_family ? ` (family ${m.cpu_family}, model ${m.cpu_model})` : ''}, ${m.cores} cores available, ${m.memory_gb} GB, ` +
      `AVX-512 ${m.avx512 ? 'yes' : 'no'}${m.avx512bf16 === undefined ? '' : `, AVX512-BF16 ${m.avx512bf16 ? 'yes' : 'no'}, AMX ${m.amx ? 'yes' : 'no'}`}, ${m.platform}, kernel ${m.kernel}`,
    `- Load average at start / end: ${r.load_average_start.map((x) => x.toFixed(2)).join(' ')} / ${r.load_average_end.map((x) => x.toFixed(2)).join(' ')} (shared machine: only ratios within this run count)`,
    `- Versions: node ${v.node}, libtorch ${v.libtorch ?? '–'} (${v.libtorch_source ?? '–'}), Python torch ${v.torch ?? "–"}, transformers ${v.transformers ?? "–"}, onnxruntime-node ${v.onnxruntime ?? '–'}`,
    `- Device ${r.device}, dtype ${r.dtype}, ${r.threads} intra-op threads in every runtime`,
    `- Command: \`${r.command}\``,
    '',
    'Columns: *load* = model load (for the addon it includes the warm-up forward of each batch bucket); ' +
      '*first call* = the first forward after load (cold); *c1* = sequential single-clip requests after one more ' +
      'untimed warm-up; *CPU ms/clip* = process CPU time (all threads) per clip during c1, less sensitive to other load on a shared machine than wall time; *c8* = 8 clients each sending single-clip requests back to back; *EL lag* = ' +
      'how late the ticks of a 5 ms interval came during c8, p99 / max, counting a loop blocked until the end (Node runtimes only; onnxruntime-node runs on the JS thread); *RSS* = peak RSS of that ' +
      "runtime's own child process; *Δ vs python* = max |logit difference| to Python torch.jit on the same clip.",
    '',
  ];
  for (const [size, e] of Object.entries(r.models)) {
    const c = e.config;
    lines.push(`## ${size}: hidden ${c.hiddenSize}, ${c.numLayers} layers, ${c.numHeads} heads, MLP ${c.intermediateSize}, ` +
      `${c.numFrames}×${c.imageSize}², ${c.numLabels} labels`, '');
    lines.push(`Plan: ${e.plan.iters} sequential requests; ${e.plan.concClips} requests from ${e.plan.conc} clients.`, '');
    lines.push('| runtime | load ms | first call ms | c1 p50 ms | c1 p99 ms | c1 clips/s | c1 CPU ms/clip | c8 p50 ms | c8 p99 ms | c8 clips/s | EL lag p99 / max ms | peak RSS MB | Δ vs python |');
    lines.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
    for (const [name, s] of Object.entries(e.runtimes)) {
      if (s.error) {
        lines.push(`| ${name} | failed: ${s.error} ||||||||||||`);
        continue;
      }
      const lag = s.cc_lag_p99_ms !== undefined ? `${f(s.cc_lag_p99_ms, 1)} / ${f(s.cc_lag_max_ms, 0)}` : '–';
      const d = e.logit_diff_vs_python?.[name];
      lines.push(`| ${name} | ${f(s.load_ms)} | ${f(s.first_call_ms)} | ${f(s.c1_p50_ms)} | ${f(s.c1_p99_ms)} | ${f(s.c1_clips_per_s)} | ${f(s.c1_cpu_ms_per_clip)} | ` +
        `${f(s.cc_p50_ms)} | ${f(s.cc_p99_ms)} | ${f(s.cc_clips_per_s)} | ${lag} | ${f(s.peak_rss_mb)} | ${d === undefined ? '–' : d.toExponential(1)} |`);
    }
    lines.push('', 'Ratios (same run; > 1 means the first named is faster or the option helps):', '');
    for (const [k, x] of Object.entries(e.ratios || {})) lines.push(`- \`${k}\` = **${x.toFixed(3)}**`);
    lines.push('');
    if (e.ceiling) {
      const g = e.ceiling.gemm;
      lines.push(`GEMM ceiling (a bare ${g.shape.join('×')} GEMM, ${g.threads} threads, Python torch ${g.torch}): ` +
        `float32 ${f(g.float32, 0)} GFLOP/s, bfloat16 (oneDNN, packed) ${f(g.bfloat16, 0)} GFLOP/s. ` +
        `One clip is ${f(e.ceiling.clip_gflop, 1)} GFLOP.`, '');
      lines.push('| runtime | dtype | c1 p50 GFLOP/s | fraction of its GEMM ceiling |', '|---|---|---:|---:|');
      for (const [name, c] of Object.entries(e.ceiling.runtimes)) {
        lines.push(`| ${name} | ${c.dtype} | ${f(c.gflops, 0)} | ${c.fraction === null ? '–' : f(c.fraction, 2)} |`);
      }
      lines.push('');
    }
  }
  if (svgName) lines.push(`![throughput chart](${svgName})`, '');
  return `${lines.join('\n')}\n`;
}

/** A grouped bar chart: clips/s at c1 and c8 for each runtime, one panel per model. */
function svgChart(r) {
  const models = Object.entries(r.models);
  const panelW = 460;
  const panelH = 260;
  const W = panelW * Math.max(1, models.length) + 20;
  const H = panelH + 80;
  const colors = { c1: '#4e79a7', c8: '#f28e2b' };
  const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;');
  const out = [`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="10" y="18" font-size="14" font-weight="bold">${esc(`videomae-node benchmark ${r.label}: clips/s (higher is better)`)}</text>`,
    `<text x="10" y="34" fill="#555">${esc(`${r.machine.cpu}, ${r.threads} threads, ${r.device} ${r.dtype}`)}</text>`,
    `<rect x="${W - 170}" y="8" width="10" height="10" fill="${colors.c1}"/><text x="${W - 155}" y="17">concurrency 1</text>`,
    `<rect x="${W - 170}" y="24" width="10" height="10" fill="${colors.c8}"/><text x="${W - 155}" y="33">concurrency 8</text>`];
  models.forEach(([size, e], pi) => {
    const x0 = 10 + pi * panelW;
    const y0 = 50;
    const names = Object.keys(e.runtimes).filter((n) => !e.runtimes[n].error);
    const max = Math.max(1e-9, ...names.flatMap((n) => [e.runtimes[n].c1_clips_per_s || 0, e.runtimes[n].cc_clips_per_s || 0]));
    const plotH = panelH - 70;
    const slot = (panelW - 60) / Math.max(1, names.length);
    out.push(`<text x="${x0 + 40}" y="${y0 + 10}" font-weight="bold">${esc(size)}</text>`);
    out.push(`<line x1="${x0 + 40}" y1="${y0 + 20 + plotH}" x2="${x0 + panelW - 20}" y2="${y0 + 20 + plotH}" stroke="#333"/>`);
    names.forEach((n, i) => {
      const s = e.runtimes[n];
      const bx = x0 + 45 + i * slot;
      const bw = Math.min(24, slot / 2 - 4);
      [['c1', s.c1_clips_per_s], ['c8', s.cc_clips_per_s]].forEach(([k, val], j) => {
        if (!val) return;
        const h = (val / max) * plotH;
        const x = bx + j * (bw + 2);
        const y = y0 + 20 + plotH - h;
        out.push(`<rect x="${x.toFixed(1)}" y="${y.toFixed(1)}" width="${bw.toFixed(1)}" height="${h.toFixed(1)}" fill="${colors[k]}"/>`);
        out.push(`<text x="${(x + bw / 2).toFixed(1)}" y="${(y - 3).toFixed(1)}" text-anchor="middle" font-size="9">${val >= 10 ? val.toFixed(0) : val.toFixed(2)}</text>`);
      });
      out.push(`<text x="${(bx + bw).toFixed(1)}" y="${y0 + 34 + plotH}" text-anchor="middle" font-size="10">${esc(n)}</text>`);
    });
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}

module.exports = { markdown, svgChart };
