#!/usr/bin/env python3
"""Write a random-weight VideoMAEForVideoClassification (or, with --encoder-only, VideoMAEModel)
checkpoint in Hugging Face layout.

    python3 test/tools/make_checkpoint.py --out DIR [--seed 0] [--layout v4|v5]
        [--format safetensors|bin] [--dtype float32|float16|bfloat16]
        [--bench-size tiny|base|huge]
        [--hidden 32 --layers 2 --heads 2 --intermediate 64 --frames 4 --image-size 32
         --patch 16 --tubelet 2 --labels 5 --channels 3] [--layer-norm-eps 1e-12]
        [--weight-std 0.02] [--no-qkv-bias] [--no-mean-pooling] [--preprocessor [--shortest-edge S --crop-size S]]
        [--encoder-only] [--zero-embedding]

Layouts: v4 = transformers 4.x (attention.attention.q_bias / v_bias, no key bias);
v5 = transformers 5.x (attention.attention.{query,key,value}.bias, key bias random too).
Weights: linears/conv normal(0, --weight-std, default 0.02 like HF); all biases 0.1*randn; LayerNorm weight 1 + 0.1*randn,
LayerNorm bias 0.1*randn, so that a wrong key mapping changes the logits.
--encoder-only: VideoMAEModel as save_pretrained writes it: keys without the "videomae." prefix, no
classifier, the final "layernorm.*" only with --no-mean-pooling. --zero-embedding: the norm before
the classifier (fc_norm or the final layernorm) gets weight and bias 0, so the pooled features (the
embedding) are exactly zero.
Safetensors is written tensor by tensor (the huge preset never holds two copies).
Only numpy is needed for --format safetensors with float32/float16; torch for bin / bfloat16-bin.
"""

import argparse
import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPTS = os.path.join(os.path.dirname(os.path.dirname(HERE)), "scripts")
if SCRIPTS not in sys.path:
    sys.path.insert(0, SCRIPTS)

import safetensors_lite  # noqa: E402

PRESETS = {
    "tiny": dict(hidden=32, layers=2, heads=2, intermediate=64, frames=4, image_size=32, patch=16,
                 tubelet=2, labels=5),
    "base": dict(hidden=768, layers=12, heads=12, intermediate=3072, frames=16, image_size=224,
                 patch=16, tubelet=2, labels=400),
    "huge": dict(hidden=1280, layers=32, heads=16, intermediate=5120, frames=16, image_size=224,
                 patch=16, tubelet=2, labels=400),
}


def tensor_specs(a):
    """List of (name, shape, init) in a stable order. init: w | b | lnw | lnb."""
    h, inter, c = a.hidden, a.intermediate, a.channels
    specs = [
        ("videomae.embeddings.patch_embeddings.projection.weight", (h, c, a.tubelet, a.patch, a.patch), "w"),
        ("videomae.embeddings.patch_embeddings.projection.bias", (h,), "b"),
    ]
    for i in range(a.layers):
        p = "videomae.encoder.layer.%d." % i
        at = p + "attention.attention."
        specs += [(at + "query.weight", (h, h), "w"), (at + "key.weight", (h, h), "w"),
                  (at + "value.weight", (h, h), "w")]
        if a.qkv_bias:
            if a.layout == "v4":
                specs += [(at + "q_bias", (h,), "b"), (at + "v_bias", (h,), "b")]
            else:
                specs += [(at + "query.bias", (h,), "b"), (at + "key.bias", (h,), "b"),
                          (at + "value.bias", (h,), "b")]
        specs += [
            (p + "attention.output.dense.weight", (h, h), "w"),
            (p + "attention.output.dense.bias", (h,), "b"),
            (p + "intermediate.dense.weight", (inter, h), "w"),
            (p + "intermediate.dense.bias", (inter,), "b"),
            (p + "output.dense.weight", (h, inter), "w"),
            (p + "output.dense.bias", (h,), "b"),
            (p + "layernorm_before.weight", (h,), "lnw"),
            (p + "layernorm_before.bias", (h,), "lnb"),
            (p + "layernorm_after.weight", (h,), "lnw"),
            (p + "layernorm_after.bias", (h,), "lnb"),
        ]
    norm = "zero" if a.zero_embedding else None
    if a.encoder_only:
        if not a.mean_pooling:
            specs += [("videomae.layernorm.weight", (h,), norm or "lnw"),
                      ("videomae.layernorm.bias", (h,), norm or "lnb")]
        return [(n[len("videomae."):], s, i) for n, s, i in specs]
    if a.mean_pooling:
        specs += [("fc_norm.weight", (h,), norm or "lnw"), ("fc_norm.bias", (h,), norm or "lnb")]
    else:
        specs += [("videomae.layernorm.weight", (h,), norm or "lnw"),
                  ("videomae.layernorm.bias", (h,), norm or "lnb")]
    specs += [("classifier.weight", (a.labels, h), "w"), ("classifier.bias", (a.labels,), "b")]
    return specs


def make_config(a):
    labels = ["class_%d" % i for i in range(a.labels)]
    cfg = {
        "_name_or_path": "test/videomae-random-%s" % a.name_tag,
        "architectures": ["VideoMAEModel" if a.encoder_only else "VideoMAEForVideoClassification"],
        "model_type": "videomae",
        "attention_probs_dropout_prob": 0.0,
        "hidden_dropout_prob": 0.0,
        "hidden_act": "gelu",
        "hidden_size": a.hidden,
        "num_hidden_layers": a.layers,
        "num_attention_heads": a.heads,
        "intermediate_size": a.intermediate,
        "initializer_range": 0.02,
        "layer_norm_eps": a.layer_norm_eps,
        "image_size": a.image_size,
        "patch_size": a.patch,
        "num_channels": a.channels,
        "num_frames": a.frames,
        "tubelet_size": a.tubelet,
        "qkv_bias": a.qkv_bias,
        "use_mean_pooling": a.mean_pooling,
        "norm_pix_loss": True,
        "decoder_hidden_size": 384,
        "decoder_intermediate_size": 1536,
        "decoder_num_attention_heads": 6,
        "decoder_num_hidden_layers": 4,
        "id2label": {str(i): n for i, n in enumerate(labels)},
        "label2id": {n: i for i, n in enumerate(labels)},
        "problem_type": "single_label_classification",
        "torch_dtype": a.dtype,
        "transformers_version": "4.46.0" if a.layout == "v4" else "5.0.0",
    }
    if a.encoder_only:
        for k in ("id2label", "label2id", "problem_type"):
            cfg.pop(k)
    return cfg


def make_preprocessor(a):
    return {
        "do_resize": True,
        "size": {"shortest_edge": a.shortest_edge},
        "do_center_crop": True,
        "crop_size": {"height": a.crop_size, "width": a.crop_size},
        "do_rescale": True,
        "rescale_factor": 1 / 255,
        "do_normalize": True,
        "image_mean": [0.45, 0.45, 0.45],
        "image_std": [0.225, 0.225, 0.225],
        "resample": 2,
        "image_processor_type": "VideoMAEImageProcessor",
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, help="output folder (created)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--layout", choices=["v4", "v5"], default="v4")
    ap.add_argument("--format", choices=["safetensors", "bin"], default="safetensors")
    ap.add_argument("--dtype", choices=["float32", "float16", "bfloat16"], default="float32")
    ap.add_argument("--bench-size", choices=sorted(PRESETS), default=None)
    ap.add_argument("--hidden", type=int)
    ap.add_argument("--layers", type=int)
    ap.add_argument("--heads", type=int)
    ap.add_argument("--intermediate", type=int)
    ap.add_argument("--frames", type=int)
    ap.add_argument("--image-size", type=int)
    ap.add_argument("--patch", type=int)
    ap.add_argument("--tubelet", type=int)
    ap.add_argument("--labels", type=int)
    ap.add_argument("--channels", type=int, default=3)
    ap.add_argument("--layer-norm-eps", type=float, default=1e-12)
    ap.add_argument("--weight-std", type=float, default=0.02,
                    help="std of linear/conv weights (HF init: 0.02; tests use ~0.2 so that "
                         "attention is far from uniform and mapping mistakes show in the logits)")
    ap.add_argument("--no-qkv-bias", dest="qkv_bias", action="store_false")
    ap.add_argument("--no-mean-pooling", dest="mean_pooling", action="store_false")
    ap.add_argument("--preprocessor", action="store_true", help="also write preprocessor_config.json")
    ap.add_argument("--encoder-only", action="store_true", help="a VideoMAEModel checkpoint (no head)")
    ap.add_argument("--zero-embedding", action="store_true",
                    help="zero the norm before the head, so that the embedding is all zeros")
    ap.add_argument("--shortest-edge", type=int, default=None)
    ap.add_argument("--crop-size", type=int, default=None)
    a = ap.parse_args(argv)

    preset = PRESETS[a.bench_size or "tiny"]
    for k, v in preset.items():
        if getattr(a, k) is None:
            setattr(a, k, v)
    if a.hidden % a.heads:
        ap.error("--hidden must be a multiple of --heads")
    if a.shortest_edge is None:
        a.shortest_edge = a.image_size
    if a.crop_size is None:
        a.crop_size = a.image_size
    a.name_tag = a.bench_size or "tiny"

    os.makedirs(a.out, exist_ok=True)
    specs = tensor_specs(a)
    rng = np.random.default_rng(a.seed)

    def produce(name, shape, init):
        if init == "w":
            return rng.standard_normal(shape, dtype=np.float32) * np.float32(a.weight_std)
        if init == "zero":
            return np.zeros(shape, dtype=np.float32)
        if init == "lnw":
            return np.float32(1) + np.float32(0.1) * rng.standard_normal(shape, dtype=np.float32)
        return rng.standard_normal(shape, dtype=np.float32) * np.float32(0.1)

    n_params = 0
    for _, shape, _ in specs:
        n_params += int(np.prod(shape))

    if a.format == "safetensors":
        st_dtype = {"float32": "F32", "float16": "F16", "bfloat16": "BF16"}[a.dtype]
        by_name = {n: (s, i) for n, s, i in specs}

        def produce_named(name):
            s, i = by_name[name]
            arr = produce(name, s, i)
            return arr.astype(np.float16) if st_dtype == "F16" else arr

        safetensors_lite.write_streaming(os.path.join(a.out, "model.safetensors"),
                                         [(n, st_dtype, s) for n, s, _ in specs], produce_named,
                                         metadata={"format": "pt"})
        wfile = "model.safetensors"
    else:
        import torch
        tdt = getattr(torch, a.dtype)
        sd = {}
        for n, s, i in specs:
            sd[n] = torch.from_numpy(produce(n, s, i)).to(tdt)
        torch.save(sd, os.path.join(a.out, "pytorch_model.bin"))
        del sd
        wfile = "pytorch_model.bin"

    with open(os.path.join(a.out, "config.json"), "w") as f:
        json.dump(make_config(a), f, indent=2)
        f.write("\n")
    if a.preprocessor:
        with open(os.path.join(a.out, "preprocessor_config.json"), "w") as f:
            json.dump(make_preprocessor(a), f, indent=2)
            f.write("\n")
    print("wrote %s: %s (%s, %s layout, %s), %s params, %s%s" % (
        a.out, wfile, a.format, a.layout, a.dtype, format(n_params, ","),
        "encoder only" if a.encoder_only else "%d labels" % a.labels,
        ", preprocessor_config.json" if a.preprocessor else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
