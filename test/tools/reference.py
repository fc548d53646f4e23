#!/usr/bin/env python3
"""Independent float64 reference of transformers' VideoMAEForVideoClassification and
VideoMAEModel (eval mode).

    python3 test/tools/reference.py --checkpoint DIR --input x.f32 --shape B,T,C,H,W
        [--output logits.f64] [--embedding emb.f64] [--json] [--trust-pickle]

Reads raw little-endian float32 pixel values [B, T, C, H, W] and writes the logits [B, numLabels]
(--output) and the embedding [B, hidden] (--embedding) as raw little-endian float64, and/or prints
{"logits": [[...]] or null, "embedding": [[...]]} (--json). The embedding is, with a classifier, the
pooled features it takes; without one (a VideoMAEModel checkpoint, keys with or without the
"videomae." prefix), last_hidden_state.mean(1).

Written from the Hugging Face definition, deliberately unoptimised and separate from the
exporter (only the safetensors reader is shared):
  embeddings: permute to [B,C,T,H,W]; tubelet Conv3d (kernel = stride) done as patchify + matmul,
      tokens ordered (t, h, w); + sinusoid table (float64 angles, rounded to float32 like HF).
  layer: h = h + Wo(attn(LN_before(h))) ; h = h + W2(gelu(W1(LN_after(h)))), LN eps = config eps
      attn: separate q/k/v linears; q/k/v biases: 4.x q_bias, zero key bias, v_bias; 5.x
      query/key/value.bias; none when qkv_bias is false; softmax(q k^T / sqrt(head_dim)) v.
  head: use_mean_pooling -> fc_norm(mean over tokens) with eps 1e-5; else
      videomae.layernorm (config eps) then token 0; then the classifier.
  no head: last_hidden_state (after videomae.layernorm when use_mean_pooling is false), mean
      over tokens.
Computation is torch float64 using only matmul/exp/erf/elementwise ops, one thread.
"""

import argparse
import json
import math
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPTS = os.path.join(os.path.dirname(os.path.dirname(HERE)), "scripts")
if SCRIPTS not in sys.path:
    sys.path.insert(0, SCRIPTS)

import safetensors_lite  # noqa: E402  (the only code shared with the exporter)

DEFAULTS = {
    "image_size": 224, "patch_size": 16, "num_channels": 3, "num_frames": 16, "tubelet_size": 2,
    "hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
    "intermediate_size": 3072, "hidden_act": "gelu", "layer_norm_eps": 1e-12,
    "qkv_bias": True, "use_mean_pooling": True,
}


def _read_state_dict(folder, trust_pickle=False):
    def st(path):
        return {k: torch.from_numpy(v) for k, v in safetensors_lite.load_file(path).items()}

    def pt(path):
        obj = torch.load(path, map_location="cpu", weights_only=not trust_pickle)
        if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict) and not any(torch.is_tensor(v) for v in obj.values()):
            obj = obj["state_dict"]  # {"state_dict": ..., other bookkeeping}
        return obj

    for single, index, loader in (("model.safetensors", "model.safetensors.index.json", st),
                                  ("pytorch_model.bin", "pytorch_model.bin.index.json", pt)):
        if os.path.isfile(os.path.join(folder, single)):
            return loader(os.path.join(folder, single))
        if os.path.isfile(os.path.join(folder, index)):
            with open(os.path.join(folder, index)) as f:
                wmap = json.load(f)["weight_map"]
            sd = {}
            for fn in sorted(set(wmap.values())):
                if os.path.basename(fn) != fn:
                    raise ValueError("bad shard name %r" % fn)
                sd.update(loader(os.path.join(folder, fn)))
            return sd
    raise FileNotFoundError("no model.safetensors or pytorch_model.bin in %s" % folder)


def load_reference(folder, trust_pickle=False):
    """Returns a dict: cfg (with defaults) and float64 tensors under their HF names."""
    with open(os.path.join(folder, "config.json")) as f:
        raw = json.load(f)
    cfg = dict(DEFAULTS)
    cfg.update({k: raw[k] for k in DEFAULTS if raw.get(k) is not None})
    assert cfg["hidden_act"] == "gelu", cfg["hidden_act"]
    sd = _read_state_dict(folder, trust_pickle)
    if all(k.startswith("module.") for k in sd):
        sd = {k[7:]: v for k, v in sd.items()}
    if not any(k.startswith("videomae.") for k in sd):  # as VideoMAEModel saves it
        sd = {("videomae." + k if k.split(".")[0] in ("embeddings", "encoder", "layernorm") else k): v
              for k, v in sd.items()}
    w = {k: v.to(torch.float64) for k, v in sd.items() if torch.is_tensor(v) and v.is_floating_point()}
    return {"cfg": cfg, "w": w}


def _layer_norm(x, weight, bias, eps):
    mu = x.mean(dim=-1, keepdim=True)
    var = ((x - mu) ** 2).mean(dim=-1, keepdim=True)
    return (x - mu) / torch.sqrt(var + eps) * weight + bias


def _linear(x, weight, bias=None):
    y = torch.matmul(x, weight.t())
    return y if bias is None else y + bias


def _gelu(x):
    return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))


def _softmax(x):
    e = torch.exp(x - x.max(dim=-1, keepdim=True).values)
    return e / e.sum(dim=-1, keepdim=True)


def _position_table(n, d):
    pos = np.arange(n, dtype=np.float64)[:, None]
    i = np.arange(d, dtype=np.int64)[None, :]
    ang = pos / np.power(10000.0, (2 * (i // 2)) / float(d))
    table = np.where(i % 2 == 0, np.sin(ang), np.cos(ang))
    return torch.from_numpy(table.astype(np.float32).astype(np.float64))  # HF keeps it in float32


def forward(model, pixel_values):
    """pixel_values: numpy or torch [B,T,C,H,W]; returns numpy float64 logits [B, numLabels]."""
    return forward_all(model, pixel_values)[0]


def forward_all(model, pixel_values):
    """Returns numpy float64 (logits [B, numLabels] or None without a classifier, embedding [B, hidden])."""
    cfg, w = model["cfg"], model["w"]
    x = torch.as_tensor(np.asarray(pixel_values, dtype=np.float64))
    B, T, C, H, W = x.shape
    t, p = cfg["tubelet_size"], cfg["patch_size"]
    assert (T, C, H, W) == (cfg["num_frames"], cfg["num_channels"], cfg["image_size"],
                            cfg["image_size"]), "input shape %r does not match the config" % (tuple(x.shape),)
    hidden = cfg["hidden_size"]
    nh = cfg["num_attention_heads"]
    hd = hidden // nh
    eps = cfg["layer_norm_eps"]

    # tubelet embedding: Conv3d with kernel == stride is a matmul over non-overlapping patches
    x = x.permute(0, 2, 1, 3, 4)  # [B, C, T, H, W]
    nt, nhp, nwp = T // t, H // p, W // p
    x = x[:, :, :nt * t, :nhp * p, :nwp * p]
    x = x.reshape(B, C, nt, t, nhp, p, nwp, p).permute(0, 2, 4, 6, 1, 3, 5, 7)
    patches = x.reshape(B, nt * nhp * nwp, C * t * p * p)
    pw = w["videomae.embeddings.patch_embeddings.projection.weight"].reshape(hidden, C * t * p * p)
    h = _linear(patches, pw, w["videomae.embeddings.patch_embeddings.projection.bias"])
    N = h.shape[1]
    h = h + _position_table(N, hidden)[None]

    def heads(z):
        return z.reshape(B, N, nh, hd).permute(0, 2, 1, 3)

    for i in range(cfg["num_hidden_layers"]):
        pre = "videomae.encoder.layer.%d." % i
        a = pre + "attention.attention."
        if not cfg["qkv_bias"]:
            qb = kb = vb = None
        elif (a + "q_bias") in w:  # transformers 4.x
            qb, kb, vb = w[a + "q_bias"], None, w[a + "v_bias"]
        else:  # transformers 5.x
            qb, kb, vb = w[a + "query.bias"], w[a + "key.bias"], w[a + "value.bias"]
        y = _layer_norm(h, w[pre + "layernorm_before.weight"], w[pre + "layernorm_before.bias"], eps)
        q = heads(_linear(y, w[a + "query.weight"], qb))
        k = heads(_linear(y, w[a + "key.weight"], kb))
        v = heads(_linear(y, w[a + "value.weight"], vb))
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(hd)
        ctx = torch.matmul(_softmax(scores), v).permute(0, 2, 1, 3).reshape(B, N, hidden)
        h = h + _linear(ctx, w[pre + "attention.output.dense.weight"], w[pre + "attention.output.dense.bias"])
        y = _layer_norm(h, w[pre + "layernorm_after.weight"], w[pre + "layernorm_after.bias"], eps)
        y = _gelu(_linear(y, w[pre + "intermediate.dense.weight"], w[pre + "intermediate.dense.bias"]))
        h = h + _linear(y, w[pre + "output.dense.weight"], w[pre + "output.dense.bias"])

    if "classifier.weight" not in w:  # VideoMAEModel: last_hidden_state.mean(1)
        if not cfg["use_mean_pooling"]:
            h = _layer_norm(h, w["videomae.layernorm.weight"], w["videomae.layernorm.bias"], eps)
        return None, h.mean(dim=1).numpy()
    if cfg["use_mean_pooling"]:
        z = _layer_norm(h.mean(dim=1), w["fc_norm.weight"], w["fc_norm.bias"], 1e-5)
    else:
        z = _layer_norm(h, w["videomae.layernorm.weight"], w["videomae.layernorm.bias"], eps)[:, 0]
    return _linear(z, w["classifier.weight"], w["classifier.bias"]).numpy(), z.numpy()


def main(argv=None):
    ap = argparse.ArgumentParser(description="float64 reference VideoMAE classifier forward")
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--input", required=True, help="raw little-endian float32 [B,T,C,H,W]")
    ap.add_argument("--shape", required=True, help="B,T,C,H,W")
    ap.add_argument("--output", help="raw little-endian float64 logits [B, numLabels]")
    ap.add_argument("--embedding", help="raw little-endian float64 embedding [B, hidden]")
    ap.add_argument("--json", action="store_true", help='print {"logits": [[...]], "embedding": [[...]]}')
    ap.add_argument("--trust-pickle", action="store_true")
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    shape = tuple(int(s) for s in a.shape.split(","))
    if len(shape) != 5 or min(shape) <= 0:
        ap.error("--shape must be 5 positive integers B,T,C,H,W")
    data = np.fromfile(a.input, dtype="<f4")
    if data.size != int(np.prod(shape)):
        ap.error("%s has %d float32 values, shape %r needs %d" % (a.input, data.size, shape, int(np.prod(shape))))
    with torch.no_grad():
        logits, emb = forward_all(load_reference(a.checkpoint, a.trust_pickle), data.reshape(shape))
    if a.output:
        if logits is None:
            ap.error("--output: %s has no classifier (use --embedding)" % a.checkpoint)
        logits.astype("<f8").tofile(a.output)
    if a.embedding:
        emb.astype("<f8").tofile(a.embedding)
    if a.json or not (a.output or a.embedding):
        print(json.dumps({"logits": None if logits is None else logits.tolist(), "embedding": emb.tolist()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
