#!/usr/bin/env python3
"""Random-weight VideoMAE checkpoints saved by the real transformers, with its own outputs.

    $VIDEOMAE_HF_PYTHON test/tools/make_hf_checkpoint.py --out DIR VARIANT...

Needs torch and transformers 5.x (a venv; see VIDEOMAE_HF_PYTHON in README.md). A VARIANT is
KIND-LAYOUT-POOLING:
  KIND     cls  VideoMAEForVideoClassification (5 labels)
           enc  VideoMAEModel (no head)
  LAYOUT   v5   save_pretrained as is (query/key/value.bias)
           v4   the same weights with the key bias zeroed, then the saved attention biases renamed to
                transformers 4.x's q_bias/v_bias (no key bias), as a 4.x save_pretrained writes them
  POOLING  mean use_mean_pooling true; token: use_mean_pooling false (final layernorm, token 0 / all
                tokens)

For each variant it writes DIR/VARIANT/ (config.json, model.safetensors, preprocessor_config.json)
and DIR/VARIANT.json with, for the float32 pixel values in DIR/VARIANT.input.f32 ([2,4,3,32,32]):
  "embedding": cls: the pooled features transformers feeds its classifier (captured with a forward
               hook on model.classifier); enc: last_hidden_state.mean(1)
  "logits":    cls only
  computed by transformers in float64 (model.double()). For v4 variants also "fromPretrained":
  the same outputs from transformers' own VideoMAE*.from_pretrained(DIR/VARIANT), and
  "fromPretrainedQBiasAbsMax": the largest |query.bias| that loading left in the model.
Weights: HF init, then every weight ~ N(0, 0.2), every bias 0.1 * N(0, 1), LayerNorm weights
1 + 0.1 * N(0, 1), so that a wrong mapping (a dropped bias, a wrong norm) moves the outputs.
"""

import argparse
import json
import os
import sys
import warnings

import numpy as np
import torch

SHAPE = (2, 4, 3, 32, 32)
SMALL = dict(image_size=32, patch_size=16, num_channels=3, num_frames=4, tubelet_size=2, hidden_size=32,
             num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, layer_norm_eps=1e-6,
             hidden_act="gelu", qkv_bias=True, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)


def parse_variant(name):
    parts = name.split("-")
    if len(parts) != 3 or parts[0] not in ("cls", "enc") or parts[1] not in ("v4", "v5") \
            or parts[2] not in ("mean", "token"):
        raise SystemExit("bad variant %r: expected (cls|enc)-(v4|v5)-(mean|token)" % name)
    return parts[0], parts[1], parts[2] == "mean"


def randomize(model, seed):
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in sorted(model.named_parameters()):
            noise = torch.randn(p.shape, generator=gen, dtype=torch.float32)
            is_norm = "norm" in name  # layernorm_before/after, layernorm, fc_norm
            if name.endswith("bias"):
                p.copy_(0.1 * noise)
            elif is_norm:
                p.copy_(1 + 0.1 * noise)
            else:
                p.copy_(0.2 * noise)


def outputs(model, kind, x):
    """(embedding, logits or None) from a transformers model, in its own dtype."""
    with torch.no_grad():
        if kind == "enc":
            return model(pixel_values=x).last_hidden_state.mean(1), None
        seen = []
        hook = model.classifier.register_forward_hook(lambda mod, inp, out: seen.append(inp[0]))
        try:
            logits = model(pixel_values=x).logits
        finally:
            hook.remove()
        return seen[0], logits


def to_v4(folder):
    """Renames the saved attention biases to transformers 4.x's q_bias/v_bias; drops key.bias."""
    from safetensors.torch import load_file, save_file
    path = os.path.join(folder, "model.safetensors")
    sd = load_file(path)
    out = {}
    for k, v in sd.items():
        if k.endswith("attention.attention.key.bias"):
            assert float(v.abs().max()) == 0.0, "key bias must be zero for a 4.x layout"
            continue
        k = k.replace("attention.attention.query.bias", "attention.attention.q_bias")
        k = k.replace("attention.attention.value.bias", "attention.attention.v_bias")
        out[k] = v
    save_file(out, path, metadata={"format": "pt"})
    cfg_path = os.path.join(folder, "config.json")
    with open(cfg_path) as f:
        cfg = json.load(f)
    cfg["transformers_version"] = "4.46.0"
    with open(cfg_path, "w") as f:
        json.dump(cfg, f, indent=2)


def make(out_root, name, seed):
    import transformers
    from transformers import VideoMAEConfig, VideoMAEForVideoClassification, VideoMAEModel
    kind, layout, mean = parse_variant(name)
    labels = {"id2label": {str(i): "class_%d" % i for i in range(5)},
              "label2id": {"class_%d" % i: i for i in range(5)}} if kind == "cls" else {}
    config = VideoMAEConfig(use_mean_pooling=mean, **SMALL, **labels)
    cls = VideoMAEForVideoClassification if kind == "cls" else VideoMAEModel
    model = cls(config).eval()
    randomize(model, seed)
    if layout == "v4":
        with torch.no_grad():
            for n, p in model.named_parameters():
                if n.endswith("attention.attention.key.bias"):
                    p.zero_()
    folder = os.path.join(out_root, name)
    model.save_pretrained(folder, safe_serialization=True)
    with open(os.path.join(folder, "preprocessor_config.json"), "w") as f:
        json.dump({"size": {"shortest_edge": 32}, "crop_size": {"height": 32, "width": 32},
                   "rescale_factor": 1 / 255, "image_mean": [0.45] * 3, "image_std": [0.225] * 3}, f)
    if layout == "v4":
        to_v4(folder)

    x = torch.randn(SHAPE, generator=torch.Generator().manual_seed(seed + 1000), dtype=torch.float32)
    x.numpy().astype("<f4").tofile(os.path.join(out_root, name + ".input.f32"))
    emb, logits = outputs(model.double(), kind, x.double())
    result = {"variant": name, "transformers": transformers.__version__, "torch": torch.__version__,
              "shape": list(SHAPE), "embedding": emb.tolist(),
              "logits": None if logits is None else logits.tolist()}
    if layout == "v4":
        # what transformers' own loading makes of the 4.x layout
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            loaded = cls.from_pretrained(folder).eval()
        qb = [p for n, p in loaded.named_parameters() if n.endswith("attention.attention.query.bias")]
        femb, flog = outputs(loaded.double(), kind, x.double())
        result["fromPretrained"] = {"embedding": femb.tolist(),
                                    "logits": None if flog is None else flog.tolist()}
        result["fromPretrainedQBiasAbsMax"] = max(float(p.detach().abs().max()) for p in qb)
    with open(os.path.join(out_root, name + ".json"), "w") as f:
        json.dump(result, f)
    print("wrote %s (%s, transformers %s)" % (folder, cls.__name__, transformers.__version__))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("variants", nargs="+")
    a = ap.parse_args(argv)
    for v in a.variants:
        parse_variant(v)
    os.makedirs(a.out, exist_ok=True)
    torch.set_num_threads(1)
    for i, v in enumerate(a.variants):
        make(a.out, v, a.seed + 17 * i)
    return 0


if __name__ == "__main__":
    sys.exit(main())
