"""The TorchScript-able VideoMAE module written into videomae-node model files.

``forward(pixel_values) -> (logits [B, numLabels], embedding [B, hidden])``, numerically equal to
transformers in eval mode: ``VideoMAEForVideoClassification`` (logits, and as embedding the pooled
features its classifier takes) or, for a checkpoint without a head, ``VideoMAEModel`` (no logits:
[B, 0]; embedding ``last_hidden_state.mean(1)``):

* ``pixel_values`` [B, T, C, H, W] -> permute to [B, C, T, H, W] -> Conv3d with kernel = stride =
  (tubelet, patch, patch) -> ``flatten(2).transpose(1, 2)``: tokens ordered (t, h, w), no CLS.
* plus the fixed sinusoid table (HF ``get_sinusoid_encoding_table``: float64, rounded to float32),
  stored as the persistent buffer ``pos_embed`` [1, N, hidden].
* pre-LN blocks: ``x = x + proj(attn(norm1(x)))``; ``x = x + fc2(gelu(fc1(norm2(x))))`` with
  LayerNorm eps = ``layer_norm_eps`` and exact (erf) GELU.
* attention: ``softmax(Q K^T / sqrt(d)) V``. Q/K/V are one fused linear ``qkv`` whose query rows
  (weight and bias) are pre-multiplied by 1/sqrt(head_dim) at export time.
* pooling (the embedding), by POOLING mode:
  classification, ``use_mean_pooling`` ("mean+fc_norm"): mean over tokens, then ``fc_norm``
  (LayerNorm eps 1e-5); otherwise ("layernorm+token0"): ``videomae.layernorm`` (config eps) on
  token 0 (LayerNorm is per token, so normalising only token 0 equals HF's normalise-all-then-
  take-token-0). Encoder only, ``use_mean_pooling`` ("mean"): VideoMAEModel has no final norm,
  so the plain token mean; otherwise ("layernorm+mean"): ``layernorm`` on every token, then the mean.
* head: the classifier on the embedding (classification only).

The graph contains no device or dtype constants: ``module.to(device, dtype)`` is enough to run it
on cpu/cuda in float32/float16/bfloat16.
"""

import math
from typing import Tuple

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def sinusoid_table(n_position, d_hid):
    """HF get_sinusoid_encoding_table: float64 numpy, then float32. Shape [1, n, d]."""
    # literally HF's expression (python floats, then numpy sin/cos on column slices)
    def angles(position):
        return [position / np.power(10000, 2 * (hid_j // 2) / d_hid) for hid_j in range(d_hid)]

    table = np.array([angles(pos_i) for pos_i in range(n_position)], dtype=np.float64)
    table[:, 0::2] = np.sin(table[:, 0::2])
    table[:, 1::2] = np.cos(table[:, 1::2])
    return torch.from_numpy(table.astype(np.float32)).unsqueeze(0)


class VideoMAEBlock(nn.Module):
    __constants__ = ["num_heads", "head_dim"]

    def __init__(self, hidden, heads, intermediate, eps, qkv_bias):
        super().__init__()
        self.num_heads = heads
        self.head_dim = hidden // heads
        self.norm1 = nn.LayerNorm(hidden, eps=eps)
        self.qkv = nn.Linear(hidden, 3 * hidden, bias=qkv_bias)
        self.proj = nn.Linear(hidden, hidden)
        self.norm2 = nn.LayerNorm(hidden, eps=eps)
        self.fc1 = nn.Linear(hidden, intermediate)
        self.fc2 = nn.Linear(intermediate, hidden)

    def forward(self, x):
        b = x.size(0)
        n = x.size(1)
        c = x.size(2)
        qkv = self.qkv(self.norm1(x)).reshape(b, n, 3, self.num_heads, self.head_dim)
        qkv = qkv.permute(2, 0, 3, 1, 4)  # [3, B, heads, N, head_dim]
        q = qkv[0]
        k = qkv[1]
        v = qkv[2]
        attn = torch.softmax(torch.matmul(q, k.transpose(-2, -1)), dim=-1)  # scale folded into q
        o = torch.matmul(attn, v).transpose(1, 2).reshape(b, n, c)
        x = x + self.proj(o)
        x = x + self.fc2(F.gelu(self.fc1(self.norm2(x))))
        return x


# How the embedding is pooled from the last hidden states; see the module docstring.
POOLING = ("mean+fc_norm", "layernorm+token0", "mean", "layernorm+mean")


def pooling_mode(has_head, mean_pooling):
    if has_head:
        return "mean+fc_norm" if mean_pooling else "layernorm+token0"
    return "mean" if mean_pooling else "layernorm+mean"


class VideoMAEClassifier(nn.Module):
    __constants__ = ["num_frames", "num_channels", "image_size", "pool", "has_head"]

    def __init__(self, num_frames, image_size, patch_size, tubelet_size, num_channels, hidden,
                 layers, heads, intermediate, eps, qkv_bias, mean_pooling, num_labels):
        """num_labels 0: encoder only (VideoMAEModel), no classifier."""
        super().__init__()
        self.num_frames = num_frames
        self.num_channels = num_channels
        self.image_size = image_size
        self.has_head = num_labels > 0
        self.pool = POOLING.index(pooling_mode(self.has_head, mean_pooling))
        k = (tubelet_size, patch_size, patch_size)
        self.patch_embed = nn.Conv3d(num_channels, hidden, kernel_size=k, stride=k)
        n_tokens = (image_size // patch_size) ** 2 * (num_frames // tubelet_size)
        self.register_buffer("pos_embed", sinusoid_table(n_tokens, hidden), persistent=True)
        self.blocks = nn.ModuleList(
            [VideoMAEBlock(hidden, heads, intermediate, eps, qkv_bias) for _ in range(layers)])
        # fc_norm (eps 1e-5, HF uses nn.LayerNorm's default), videomae.layernorm (config eps), or
        # nothing (VideoMAEModel with use_mean_pooling)
        if self.pool == 2:
            self.norm = nn.Identity()
        else:
            self.norm = nn.LayerNorm(hidden, eps=1e-5 if self.pool == 0 else eps)
        self.head = nn.Linear(hidden, num_labels) if self.has_head else nn.Identity()

    def forward(self, pixel_values: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        if (pixel_values.dim() != 5 or pixel_values.size(1) != self.num_frames
                or pixel_values.size(2) != self.num_channels
                or pixel_values.size(3) != self.image_size
                or pixel_values.size(4) != self.image_size):
            raise RuntimeError(
                "videomae: expected input [B, " + str(self.num_frames) + ", "
                + str(self.num_channels) + ", " + str(self.image_size) + ", "
                + str(self.image_size) + "], got " + str(pixel_values.size()))
        x = self.patch_embed(pixel_values.permute(0, 2, 1, 3, 4))
        x = x.flatten(2).transpose(1, 2)
        x = x + self.pos_embed
        for blk in self.blocks:
            x = blk(x)
        if self.pool == 0:
            z = self.norm(x.mean(1))
        elif self.pool == 1:
            z = self.norm(x[:, 0])
        else:
            z = self.norm(x).mean(1)
        if self.has_head:
            logits = self.head(z)
        else:
            logits = z[:, :0]
        return logits, z


def final_norm_prefix(cfg):
    """The HF key prefix of the norm before pooling/the head, or None (VideoMAEModel with mean pooling)."""
    if cfg["use_mean_pooling"]:
        return "fc_norm." if cfg["num_labels"] else None
    return "videomae.layernorm."


def build_from_hf(cfg, sd):
    """Build the module from a normalised config (see export_videomae.read_config) and a state
    dict in HF layout (float32 torch tensors, key layout already resolved: the q/k/v biases are
    given as ``...attention.attention.{query,key,value}.bias`` or absent when qkv_bias is False;
    every key under ``videomae.``). cfg["num_labels"] 0: encoder only, no ``classifier.*``.
    """
    hidden = cfg["hidden_size"]
    heads = cfg["num_attention_heads"]
    m = VideoMAEClassifier(
        num_frames=cfg["num_frames"], image_size=cfg["image_size"], patch_size=cfg["patch_size"],
        tubelet_size=cfg["tubelet_size"], num_channels=cfg["num_channels"], hidden=hidden,
        layers=cfg["num_hidden_layers"], heads=heads, intermediate=cfg["intermediate_size"],
        eps=cfg["layer_norm_eps"], qkv_bias=cfg["qkv_bias"], mean_pooling=cfg["use_mean_pooling"],
        num_labels=cfg["num_labels"])
    scale = 1.0 / math.sqrt(hidden // heads)

    def cp(dst, src):
        if tuple(dst.shape) != tuple(src.shape):
            raise ValueError("internal shape mismatch %r vs %r" % (tuple(dst.shape), tuple(src.shape)))
        with torch.no_grad():
            dst.copy_(src)

    cp(m.patch_embed.weight, sd["videomae.embeddings.patch_embeddings.projection.weight"])
    cp(m.patch_embed.bias, sd["videomae.embeddings.patch_embeddings.projection.bias"])
    for i, blk in enumerate(m.blocks):
        p = "videomae.encoder.layer.%d." % i
        a = p + "attention.attention."
        qw = sd[a + "query.weight"].double() * scale
        w = torch.cat([qw.float(), sd[a + "key.weight"], sd[a + "value.weight"]], 0)
        cp(blk.qkv.weight, w)
        if cfg["qkv_bias"]:
            qb = sd[a + "query.bias"].double() * scale
            cp(blk.qkv.bias, torch.cat([qb.float(), sd[a + "key.bias"], sd[a + "value.bias"]], 0))
        cp(blk.proj.weight, sd[p + "attention.output.dense.weight"])
        cp(blk.proj.bias, sd[p + "attention.output.dense.bias"])
        cp(blk.norm1.weight, sd[p + "layernorm_before.weight"])
        cp(blk.norm1.bias, sd[p + "layernorm_before.bias"])
        cp(blk.norm2.weight, sd[p + "layernorm_after.weight"])
        cp(blk.norm2.bias, sd[p + "layernorm_after.bias"])
        cp(blk.fc1.weight, sd[p + "intermediate.dense.weight"])
        cp(blk.fc1.bias, sd[p + "intermediate.dense.bias"])
        cp(blk.fc2.weight, sd[p + "output.dense.weight"])
        cp(blk.fc2.bias, sd[p + "output.dense.bias"])
    norm = final_norm_prefix(cfg)
    if norm:
        cp(m.norm.weight, sd[norm + "weight"])
        cp(m.norm.bias, sd[norm + "bias"])
    if cfg["num_labels"]:
        cp(m.head.weight, sd["classifier.weight"])
        cp(m.head.bias, sd["classifier.bias"])
    for prm in m.parameters():
        prm.requires_grad_(False)
    return m.eval()
