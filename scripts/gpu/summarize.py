#!/usr/bin/env python3
"""Summarize a scripts/gpu/run.sh run: read the JSON files it wrote under OUT and print (and
write OUT/summary.{json,md}) the comparisons the performance issue asks for:

  - batch-8 throughput, addon vs HF transformers eager (and sdpa), same precision (target >= 1.3x)
  - batch-1 p50 latency, addon vs the plain C++ libtorch loop over the same file (target <= 1.1x),
    against both the unrewritten graph (--fused 0) and the addon's rewrites (--fused 1)
  - the correctness check (max |logit difference| to HF eager float32 and to Python torch.jit)

    python3 scripts/gpu/summarize.py OUT
"""

import glob
import json
import os
import sys


def load(path):
    try:
        with open(path) as f:
            text = f.read().strip()
        return json.loads(text.splitlines()[-1]) if text else None
    except (OSError, ValueError, IndexError):
        return None


def p50(xs):
    s = sorted(xs)
    return s[len(s) // 2] if s else None


def main(out):
    summary = {"targets": {"batch8_vs_hf_eager": ">= 1.3", "batch1_p50_vs_cpp_loop": "<= 1.10"},
               "check": load(os.path.join(out, "check.json")), "precisions": {}}
    for dtype in ("float16", "bfloat16", "float32"):
        try:
            # bench/run.js --label gpu-huge-DTYPE (pretty-printed: read whole)
            with open(os.path.join(out, "gpu-huge-%s.json" % dtype)) as f:
                bench = json.load(f)
        except (OSError, ValueError):
            bench = None
        hf = {impl: load(os.path.join(out, "hf-%s-%s.json" % (impl, dtype))) for impl in ("eager", "sdpa")}
        cpp = {f: load(os.path.join(out, "cpp-%s-fused%s-b1.json" % (dtype, f))) for f in ("0", "1")}
        cpp8 = {f: load(os.path.join(out, "cpp-%s-fused%s-b8.json" % (dtype, f))) for f in ("0", "1")}
        if not bench and not any(hf.values()):
            continue
        row = {}
        rts = (bench or {}).get("models", {}).get("huge", {}).get("runtimes", {})
        addon = rts.get("addon", {})
        graphs = rts.get("addon-graphs", {})
        row["addon_batch8_clips_per_s"] = addon.get("batch_clips_per_s")
        row["addon_graphs_batch8_clips_per_s"] = graphs.get("batch_clips_per_s")
        row["addon_batch1_p50_ms"] = addon.get("c1_p50_ms")
        row["addon_graphs_batch1_p50_ms"] = graphs.get("c1_p50_ms")
        row["python_jit_batch1_p50_ms"] = rts.get("python", {}).get("c1_p50_ms")
        row["python_jit_batch8_clips_per_s"] = rts.get("python", {}).get("batch_clips_per_s")
        for impl, r in hf.items():
            if r:
                row["hf_%s_batch8_clips_per_s" % impl] = r["batches"].get("8", {}).get("clips_per_s")
                row["hf_%s_batch1_p50_ms" % impl] = r["batches"].get("1", {}).get("p50_ms")
        for f, r in cpp.items():
            if r:
                row["cpp_loop_fused%s_batch1_p50_ms" % f] = p50(r["lat_ms"])
        for f, r in cpp8.items():
            if r:
                row["cpp_loop_fused%s_batch8_clips_per_s" % f] = 8e3 / p50(r["lat_ms"])

        def ratio(a, b):
            return round(a / b, 3) if a and b else None

        row["ratio_batch8_addon_over_hf_eager"] = ratio(row["addon_batch8_clips_per_s"], row.get("hf_eager_batch8_clips_per_s"))
        row["ratio_batch8_addon_over_hf_sdpa"] = ratio(row["addon_batch8_clips_per_s"], row.get("hf_sdpa_batch8_clips_per_s"))
        row["ratio_batch1_p50_addon_over_cpp_loop_plain"] = ratio(row["addon_batch1_p50_ms"], row.get("cpp_loop_fused0_batch1_p50_ms"))
        row["ratio_batch1_p50_addon_over_cpp_loop_rewritten"] = ratio(row["addon_batch1_p50_ms"], row.get("cpp_loop_fused1_batch1_p50_ms"))
        summary["precisions"][dtype] = row
    with open(os.path.join(out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    lines = ["# GPU summary (scripts/gpu/run.sh)", ""]
    if summary["check"]:
        lines += ["Correctness: `%s`" % json.dumps(summary["check"]), ""]
    for dtype, row in summary["precisions"].items():
        lines += ["## %s" % dtype, "", "| metric | value |", "|---|---:|"]
        lines += ["| %s | %s |" % (k, "–" if v is None else (("%.3f" % v) if isinstance(v, float) else v)) for k, v in row.items()]
        lines.append("")
    text = "\n".join(lines) + "\n"
    with open(os.path.join(out, "summary.md"), "w") as f:
        f.write(text)
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else os.environ.get("OUT", ".")))
