#!/usr/bin/env python3
"""The GEMM ceiling for `npm run bench`: the rate of one bare ViT-B MLP GEMM on this CPU.

    python3 scripts/bench/gemm_ceiling.py --threads N [--rows 1568 --k 768 --n 3072]

float32: the faster of torch.nn.functional.linear (MKL in pip's torch, OpenBLAS in Debian's) and
oneDNN's pre-packed float32 linear; bfloat16: oneDNN's pre-packed linear (mkldnn::_linear_pointwise,
torch >= 2.1; the kernel a bf16 model runs at best). A ceiling is the best rate seen: the fastest
of 7 timed calls after 3 warm-ups (a shared machine only ever makes a call slower). Prints one
JSON line: {"float32": GFLOP/s, "bfloat16": GFLOP/s or null, "float32_aten": ..., ...}.
"""

import argparse
import json
import sys
import time

import torch
import torch.nn.functional as F


def rate(fn, flop):
    for _ in range(3):
        fn()
    ts = []
    for _ in range(7):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return flop / min(ts) / 1e9


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--rows", type=int, default=1568)
    ap.add_argument("--k", type=int, default=768)
    ap.add_argument("--n", type=int, default=3072)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    flop = 2.0 * a.rows * a.k * a.n
    out = {"shape": [a.rows, a.k, a.n], "threads": a.threads, "torch": torch.__version__}
    with torch.inference_mode():
        x = torch.randn(a.rows, a.k)
        w = torch.randn(a.n, a.k) * 0.03
        b = torch.randn(a.n)
        out["float32_aten"] = rate(lambda: F.linear(x, w, b), flop)
        out["float32"] = out["float32_aten"]
        out["bfloat16"] = None
        mkldnn = getattr(torch.ops, "mkldnn", None)
        onednn = mkldnn is not None and hasattr(mkldnn, "_reorder_linear_weight")
        if onednn:
            packed = mkldnn._reorder_linear_weight(w, a.rows)
            out["float32_onednn"] = rate(lambda: mkldnn._linear_pointwise(x, packed, b, "none", [], None), flop)
            out["float32"] = max(out["float32"], out["float32_onednn"])
        if onednn and mkldnn._is_mkldnn_bf16_supported():
            xb, wb, bb = x.bfloat16(), w.bfloat16(), b.bfloat16()
            packed = mkldnn._reorder_linear_weight(wb, a.rows)
            out["bfloat16"] = rate(lambda: mkldnn._linear_pointwise(xb, packed, bb, "none", [], None), flop)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
