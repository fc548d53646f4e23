#!/usr/bin/env python3
"""Hugging Face transformers' VideoMAEForVideoClassification on the GPU, for scripts/gpu/run.sh.

    python3 scripts/gpu/hf_bench.py --checkpoint DIR --impl eager|sdpa --dtype float16 \
        [--batch 1,8] [--iters 20] [--warmup 3] [--device cuda] [--logits-input x.f32 --logits-out y.f32]

The model is built from the checkpoint's config.json and the weights are copied in explicitly
(load_state_dict strict=True): transformers 5.x silently zeroes the biases of a 4.x-style
(q_bias/v_bias) checkpoint, so run.sh makes a 5.x-layout one (make_checkpoint.py --layout v5).
Prints one JSON object: per batch size the latencies (ms, CUDA-synchronized, host float32 input
uploaded each call as the addon does) and clips/s; peak GPU memory; versions.
--logits-input: also write the logits of that raw float32 [B,T,C,H,W] input (run.sh's check).
"""

import argparse
import json
import os
import sys
import time

import numpy as np
import torch


def load_state_dict(folder):
    path = os.path.join(folder, "model.safetensors")
    try:
        from safetensors.torch import load_file
        return load_file(path)
    except ImportError:
        sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
        import safetensors_lite
        return {k: torch.from_numpy(v) for k, v in safetensors_lite.load_file(path).items()}


def build(folder, impl, dtype, device):
    import transformers
    from transformers import VideoMAEConfig, VideoMAEForVideoClassification
    with open(os.path.join(folder, "config.json")) as f:
        raw = json.load(f)
    config = VideoMAEConfig(**{k: v for k, v in raw.items() if not k.startswith("_")})
    config._attn_implementation = impl
    # Initialized on the GPU (random init of 632M parameters on the CPU takes long), then every
    # weight is overwritten from the checkpoint.
    with torch.device(device):
        model = VideoMAEForVideoClassification(config)
    sd = load_state_dict(folder)
    missing, unexpected = model.load_state_dict(sd, strict=False)
    # Only keys the classifier does not use may be left over; every model weight must be set.
    if missing:
        raise SystemExit("hf_bench: weights missing from the checkpoint: %s" % missing[:10])
    model.eval().to(device=device, dtype=dtype)
    got = getattr(model.config, "_attn_implementation", impl)
    return model, {"transformers": transformers.__version__, "attn_implementation": got,
                   "unexpected_keys": len(unexpected)}


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--impl", choices=["eager", "sdpa"], required=True)
    ap.add_argument("--dtype", default="float16")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--batch", default="1,8")
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--tf32", action="store_true", help="allow TF32 for float32 (as the addon does)")
    ap.add_argument("--logits-input")
    ap.add_argument("--logits-shape")
    ap.add_argument("--logits-out")
    a = ap.parse_args(argv)

    torch.backends.cuda.matmul.allow_tf32 = a.tf32
    torch.backends.cudnn.allow_tf32 = a.tf32
    dev = torch.device(a.device)
    dtype = getattr(torch, a.dtype)
    t = time.perf_counter()
    model, versions = build(a.checkpoint, a.impl, dtype, dev)
    torch.cuda.synchronize(dev)
    out = {"runtime": "hf-" + a.impl, "dtype": a.dtype, "load_ms": (time.perf_counter() - t) * 1e3,
           "versions": dict(versions, torch=torch.__version__), "batches": {}}
    cfg = model.config
    shape = [cfg.num_frames, cfg.num_channels, cfg.image_size, cfg.image_size]

    def forward(host):
        with torch.inference_mode():
            x = host.to(dev, non_blocking=True).to(dtype)
            return model(pixel_values=x).logits.float().cpu()

    if a.logits_input:
        dims = [int(s) for s in a.logits_shape.split(",")]
        x = torch.from_numpy(np.fromfile(a.logits_input, dtype="<f4").reshape(dims).copy())
        forward(x).numpy().astype("<f4").tofile(a.logits_out)

    torch.cuda.reset_peak_memory_stats(dev)
    for b in [int(s) for s in a.batch.split(",")]:
        host = torch.randn([b] + shape).pin_memory()
        t = time.perf_counter()
        forward(host)
        first = (time.perf_counter() - t) * 1e3
        for _ in range(a.warmup):
            forward(host)
        lat = []
        for _ in range(a.iters):
            t = time.perf_counter()
            forward(host)
            lat.append((time.perf_counter() - t) * 1e3)
        lat.sort()
        out["batches"][str(b)] = {"first_call_ms": first, "lat_ms": lat, "p50_ms": lat[len(lat) // 2],
                                  "clips_per_s": b * 1e3 / (sum(lat) / len(lat))}
    out["peak_gpu_mb"] = torch.cuda.max_memory_allocated(dev) / 2**20
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
