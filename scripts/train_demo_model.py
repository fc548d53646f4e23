#!/usr/bin/env python3
"""Train the small demo VideoMAE on synthetic motion clips (scripts/gen_motion.py).

The model has exactly the parameter layout of transformers' ``VideoMAEForVideoClassification``
(4.x state-dict keys), so the result is an ordinary Hugging Face checkpoint folder that
``scripts/export_videomae.py`` turns into a videomae-node model file:

    models/demo/checkpoint/config.json              VideoMAEConfig (model_type "videomae")
    models/demo/checkpoint/model.safetensors        float32 weights, HF key names
    models/demo/checkpoint/preprocessor_config.json VideoMAEImageProcessor settings

Training data are rendered in memory and preprocessed exactly like the runtime does at inference:
frames 0,4,...,28 of a 32-frame clip (stride 4, centre clip), PIL BILINEAR resize to shortest edge
64, centre crop 64x64, x/255, ImageNet mean/std. A codec-like augmentation (4:2:0 chroma
subsampling, slight blur) plus label-preserving flips / time reversal make the model robust to
H.264. The held-out accuracy is measured on real H.264 .mp4 files decoded with ffmpeg.

Seeds (see scripts/gen_motion.py): training clips use base seed 1000 only; the per-epoch
in-memory validation uses base seed 999; the final held-out .mp4 evaluation uses base seed 0
(seeds 0..999 are never used for training).

    /usr/bin/python3 scripts/train_demo_model.py [--out models/demo/checkpoint] [--per-class 500]
        [--epochs 14] [--eval-per-class 40]

Uses one CPU thread (torch.set_num_threads(1)); deterministic for a given torch build.
"""
import argparse
import json
import math
import os
import struct
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image, ImageFilter

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen_motion  # noqa: E402

CLASSES = gen_motion.CLASSES
MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]

TRAIN_SEED = 1000
VAL_SEED = 999
TEST_SEED = 0

CONFIG = dict(
    num_frames=8,
    tubelet_size=2,
    image_size=64,
    patch_size=16,
    num_channels=3,
    hidden_size=128,
    num_hidden_layers=4,
    num_attention_heads=4,
    intermediate_size=512,
    layer_norm_eps=1e-12,
    qkv_bias=True,
    use_mean_pooling=True,
)
SAMPLE_STRIDE = 4
SHORTEST_EDGE = 64
CROP = 64


# ----------------------------------------------------------------------------------------------
# Model: transformers 4.x VideoMAEForVideoClassification layout and numerics
def get_sinusoid_encoding_table(n_position, d_hid):
    """transformers' get_sinusoid_encoding_table (float64 numpy -> float32), [1, n, d]."""
    def get_position_angle_vec(position):
        return [position / np.power(10000, 2 * (hid_j // 2) / d_hid) for hid_j in range(d_hid)]

    table = np.array([get_position_angle_vec(pos_i) for pos_i in range(n_position)])
    table[:, 0::2] = np.sin(table[:, 0::2])
    table[:, 1::2] = np.cos(table[:, 1::2])
    return torch.FloatTensor(table).unsqueeze(0)


class PatchEmbeddings(nn.Module):
    def __init__(self, c):
        super().__init__()
        k = (c["tubelet_size"], c["patch_size"], c["patch_size"])
        self.projection = nn.Conv3d(c["num_channels"], c["hidden_size"], kernel_size=k, stride=k)

    def forward(self, pixel_values):  # [B, T, C, H, W]
        x = self.projection(pixel_values.permute(0, 2, 1, 3, 4))
        return x.flatten(2).transpose(1, 2)


class Embeddings(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.patch_embeddings = PatchEmbeddings(c)
        n = (c["image_size"] // c["patch_size"]) ** 2 * (c["num_frames"] // c["tubelet_size"])
        self.register_buffer("position_embeddings",
                             get_sinusoid_encoding_table(n, c["hidden_size"]), persistent=False)

    def forward(self, pixel_values):
        x = self.patch_embeddings(pixel_values)
        return x + self.position_embeddings.type_as(x)


class SelfAttention(nn.Module):
    def __init__(self, c):
        super().__init__()
        h = c["hidden_size"]
        self.num_heads = c["num_attention_heads"]
        self.head_dim = h // self.num_heads
        self.query = nn.Linear(h, h, bias=False)
        self.key = nn.Linear(h, h, bias=False)
        self.value = nn.Linear(h, h, bias=False)
        self.q_bias = nn.Parameter(torch.zeros(h))
        self.v_bias = nn.Parameter(torch.zeros(h))

    def forward(self, x):
        b, n, h = x.shape
        q = F.linear(x, self.query.weight, self.q_bias)
        k = F.linear(x, self.key.weight, torch.zeros_like(self.v_bias))
        v = F.linear(x, self.value.weight, self.v_bias)

        def heads(t):
            return t.view(b, n, self.num_heads, self.head_dim).permute(0, 2, 1, 3)

        q, k, v = heads(q), heads(k), heads(v)
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.head_dim)
        ctx = torch.matmul(scores.softmax(dim=-1), v)
        return ctx.permute(0, 2, 1, 3).reshape(b, n, h)


class SelfOutput(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.dense = nn.Linear(c["hidden_size"], c["hidden_size"])

    def forward(self, x):
        return self.dense(x)


class Attention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.attention = SelfAttention(c)
        self.output = SelfOutput(c)

    def forward(self, x):
        return self.output(self.attention(x))


class Dense(nn.Module):
    def __init__(self, i, o):
        super().__init__()
        self.dense = nn.Linear(i, o)


class Layer(nn.Module):
    def __init__(self, c):
        super().__init__()
        h, eps = c["hidden_size"], c["layer_norm_eps"]
        self.attention = Attention(c)
        self.intermediate = Dense(h, c["intermediate_size"])
        self.output = Dense(c["intermediate_size"], h)
        self.layernorm_before = nn.LayerNorm(h, eps=eps)
        self.layernorm_after = nn.LayerNorm(h, eps=eps)

    def forward(self, x):
        x = x + self.attention(self.layernorm_before(x))
        y = F.gelu(self.intermediate.dense(self.layernorm_after(x)))
        return x + self.output.dense(y)


class Encoder(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.layer = nn.ModuleList([Layer(c) for _ in range(c["num_hidden_layers"])])

    def forward(self, x):
        for blk in self.layer:
            x = blk(x)
        return x


class VideoMAEModel(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.embeddings = Embeddings(c)
        self.encoder = Encoder(c)

    def forward(self, pixel_values):
        return self.encoder(self.embeddings(pixel_values))


class VideoMAEForVideoClassification(nn.Module):
    def __init__(self, c, num_labels):
        super().__init__()
        self.videomae = VideoMAEModel(c)
        self.fc_norm = nn.LayerNorm(c["hidden_size"])  # eps 1e-5 as in transformers
        self.classifier = nn.Linear(c["hidden_size"], num_labels)
        self.apply(self._init)

    @staticmethod
    def _init(m):  # transformers' _init_weights: normal(0, 0.02), zero bias, LN = (1, 0)
        if isinstance(m, (nn.Linear, nn.Conv3d)):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)

    def forward(self, pixel_values):
        x = self.videomae(pixel_values)
        return self.classifier(self.fc_norm(x.mean(1)))


def motion_init(model, gain=20.0):
    """Structured initialisation of the patch embedding (Conv3d over 2 frames x 16 x 16 pixels).

    A ViT trained from scratch on a few thousand clips does not find the (small) moving object
    under the much larger background-appearance variance on its own. So some output channels
    start as explicit, strong motion detectors; all channels stay trainable:
      * 16 channels: luminance difference (frame 2 - frame 1 of the tubelet) of each 4x4 sub-block
      * 12 channels: per colour channel difference of each 8x8 sub-block
      * 16 channels: mean luminance of each 4x4 sub-block over both frames (appearance)
    the remaining channels keep the random (truncated normal, std 0.02) initialisation.
    """
    w = model.videomae.embeddings.patch_embeddings.projection.weight  # [D, C, 2, p, p]
    d, ch, tub, p, _ = w.shape
    assert tub == 2 and p % 4 == 0
    q, h = p // 4, p // 2
    with torch.no_grad():
        c = 0
        for by in range(4):
            for bx in range(4):
                w[c].zero_()
                w[c, :, 1, by * q:(by + 1) * q, bx * q:(bx + 1) * q] = gain / (q * q * ch)
                w[c, :, 0, by * q:(by + 1) * q, bx * q:(bx + 1) * q] = -gain / (q * q * ch)
                c += 1
        for k in range(ch):
            for by in range(2):
                for bx in range(2):
                    w[c].zero_()
                    w[c, k, 1, by * h:(by + 1) * h, bx * h:(bx + 1) * h] = gain / (h * h)
                    w[c, k, 0, by * h:(by + 1) * h, bx * h:(bx + 1) * h] = -gain / (h * h)
                    c += 1
        for by in range(4):
            for bx in range(4):
                w[c].zero_()
                w[c, :, :, by * q:(by + 1) * q, bx * q:(bx + 1) * q] = 1.0 / (q * q * ch * 2)
                c += 1
        assert c <= d


# ----------------------------------------------------------------------------------------------
# Preprocessing (identical to the runtime / test/tools/python_pipeline.py)
def sample_indices(num_decoded, num_frames=CONFIG["num_frames"], stride=SAMPLE_STRIDE):
    """Centre clip at a fixed stride; pads with the last frame when the video is short."""
    cand = list(range(0, num_decoded, stride))
    start = max(len(cand) - num_frames, 0) // 2
    idx = cand[start:start + num_frames]
    while len(idx) < num_frames:
        idx.append(idx[-1])
    return idx


def resize_crop(frame, short=SHORTEST_EDGE, crop=CROP):
    """uint8 [H, W, 3] -> uint8 [crop, crop, 3]: PIL BILINEAR shortest-edge resize, centre crop."""
    img = Image.fromarray(frame)
    w, h = img.size
    if w <= h:
        nw, nh = short, int(short * h / w)
    else:
        nw, nh = int(short * w / h), short
    img = img.resize((nw, nh), Image.BILINEAR)
    top, left = (nh - crop) // 2, (nw - crop) // 2
    return np.asarray(img.crop((left, top, left + crop, top + crop)))


_MEAN_T = torch.tensor(MEAN).view(1, 1, 3, 1, 1)
_STD_T = torch.tensor(STD).view(1, 1, 3, 1, 1)


def to_pixel_values(u8):
    """uint8 [B, T, H, W, 3] (numpy or tensor) -> float32 [B, T, 3, H, W] normalised."""
    x = torch.as_tensor(u8).permute(0, 1, 4, 2, 3).float() / 255.0
    return (x - _MEAN_T) / _STD_T


def codec_like(frame, rng):
    """Mild H.264-like degradation of a uint8 [H, W, 3] frame (training augmentation)."""
    img = Image.fromarray(frame)
    if rng.random() < 0.7:  # 4:2:0 chroma subsampling
        y, cb, cr = img.convert("YCbCr").split()
        w, h = img.size
        cb = cb.resize((w // 2, h // 2), Image.BOX).resize((w, h), Image.BILINEAR)
        cr = cr.resize((w // 2, h // 2), Image.BOX).resize((w, h), Image.BILINEAR)
        img = Image.merge("YCbCr", (y, cb, cr)).convert("RGB")
    if rng.random() < 0.5:
        img = img.filter(ImageFilter.GaussianBlur(radius=float(rng.uniform(0.2, 0.8))))
    return np.asarray(img)


def make_dataset(seed, per_class, augment, log_every=0):
    """Render per_class clips of every class -> (uint8 [N, T, 64, 64, 3], int64 [N])."""
    frames = sample_indices(gen_motion.NUM_FRAMES)
    xs = np.empty((per_class * len(CLASSES), len(frames), CROP, CROP, 3), dtype=np.uint8)
    ys = np.empty(per_class * len(CLASSES), dtype=np.int64)
    n = 0
    t0 = time.time()
    for i in range(per_class):
        for c, cls in enumerate(CLASSES):
            rng = gen_motion.clip_rng(seed, c, i)
            clip = gen_motion.render_clip(cls, rng, frames=frames)
            arng = np.random.default_rng([seed, c, i, 7])
            do_aug = augment and arng.random() < 0.8
            for k in range(len(frames)):
                f = codec_like(clip[k], arng) if do_aug else clip[k]
                xs[n, k] = resize_crop(f)
            ys[n] = c
            n += 1
        if log_every and (i + 1) % log_every == 0:
            print("  rendered %d/%d clips (%.0fs)" % (n, len(ys), time.time() - t0), flush=True)
    return xs, ys


# label maps for label-changing augmentations
def _perm(pairs):
    p = list(range(len(CLASSES)))
    for a, b in pairs:
        ia, ib = CLASSES.index(a), CLASSES.index(b)
        p[ia], p[ib] = ib, ia
    return torch.tensor(p)


HFLIP = _perm([("moving_left", "moving_right")])
VFLIP = _perm([("moving_up", "moving_down")])
TREV = _perm([("moving_left", "moving_right"), ("moving_up", "moving_down"),
              ("growing", "shrinking")])


def augment_batch(x, y, gen):
    """x uint8 [B, T, H, W, 3] tensor; random h/v flips and time reversal, labels remapped."""
    b = x.shape[0]
    x = x.clone()
    y = y.clone()
    for flag, dim, perm in ((torch.rand(b, generator=gen) < 0.5, 3, HFLIP),
                            (torch.rand(b, generator=gen) < 0.5, 2, VFLIP),
                            (torch.rand(b, generator=gen) < 0.5, 1, TREV)):
        if flag.any():
            x[flag] = x[flag].flip(dim)
            y[flag] = perm[y[flag]]
    return x, y


def evaluate(model, xs, ys, batch=64):
    model.eval()
    preds = []
    with torch.no_grad():
        for i in range(0, len(ys), batch):
            p = model(to_pixel_values(xs[i:i + batch])).argmax(1)
            preds.append(p)
    preds = torch.cat(preds).numpy()
    correct = int((preds == ys).sum())
    return correct / len(ys), preds


# ----------------------------------------------------------------------------------------------
# Real .mp4 evaluation
def decode_mp4(path):
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                          "stream=width,height", "-of", "json", path],
                         capture_output=True, check=True).stdout
    st = json.loads(out)["streams"][0]
    w, h = st["width"], st["height"]
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", path, "-f", "rawvideo", "-pix_fmt", "rgb24",
                          "-threads", "1", "-"], capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, h, w, 3)


def mp4_dataset(folder):
    with open(os.path.join(folder, "labels.json")) as f:
        labels = json.load(f)
    names = sorted(k for k in labels if k.endswith(".mp4"))
    xs = np.empty((len(names), CONFIG["num_frames"], CROP, CROP, 3), np.uint8)
    ys = np.empty(len(names), np.int64)
    for n, name in enumerate(names):
        v = decode_mp4(os.path.join(folder, name))
        for k, fi in enumerate(sample_indices(len(v))):
            xs[n, k] = resize_crop(v[fi])
        ys[n] = CLASSES.index(labels[name])
    return xs, ys, names


# ----------------------------------------------------------------------------------------------
# Checkpoint writing
def write_safetensors(path, tensors, metadata=None):
    header = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    blobs = []
    off = 0
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name].detach().cpu().numpy().astype("<f4"))
        b = a.tobytes()
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    hb = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hb += b" " * ((8 - len(hb) % 8) % 8)  # align the data section to 8 bytes
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hb)))
        f.write(hb)
        for b in blobs:
            f.write(b)


def write_checkpoint(model, out):
    os.makedirs(out, exist_ok=True)
    id2label = {str(i): c for i, c in enumerate(CLASSES)}
    cfg = {
        "_name_or_path": "videomae-demo-synthetic-motion",
        "architectures": ["VideoMAEForVideoClassification"],
        "model_type": "videomae",
        "attention_probs_dropout_prob": 0.0,
        "decoder_hidden_size": 384,
        "decoder_intermediate_size": 1536,
        "decoder_num_attention_heads": 6,
        "decoder_num_hidden_layers": 4,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.0,
        "hidden_size": CONFIG["hidden_size"],
        "id2label": id2label,
        "image_size": CONFIG["image_size"],
        "initializer_range": 0.02,
        "intermediate_size": CONFIG["intermediate_size"],
        "label2id": {c: i for i, c in enumerate(CLASSES)},
        "layer_norm_eps": CONFIG["layer_norm_eps"],
        "norm_pix_loss": True,
        "num_attention_heads": CONFIG["num_attention_heads"],
        "num_channels": CONFIG["num_channels"],
        "num_frames": CONFIG["num_frames"],
        "num_hidden_layers": CONFIG["num_hidden_layers"],
        "patch_size": CONFIG["patch_size"],
        "problem_type": "single_label_classification",
        "qkv_bias": CONFIG["qkv_bias"],
        "torch_dtype": "float32",
        "transformers_version": "4.40.0",
        "tubelet_size": CONFIG["tubelet_size"],
        "use_mean_pooling": CONFIG["use_mean_pooling"],
    }
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)
        f.write("\n")
    pre = {
        "crop_size": {"height": CROP, "width": CROP},
        "do_center_crop": True,
        "do_normalize": True,
        "do_rescale": True,
        "do_resize": True,
        "image_mean": MEAN,
        "image_processor_type": "VideoMAEImageProcessor",
        "image_std": STD,
        "resample": 2,
        "rescale_factor": 1 / 255,
        "size": {"shortest_edge": SHORTEST_EDGE},
    }
    with open(os.path.join(out, "preprocessor_config.json"), "w") as f:
        json.dump(pre, f, indent=2, sort_keys=True)
        f.write("\n")
    sd = model.state_dict()
    assert not any("position_embeddings" in k for k in sd)
    write_safetensors(os.path.join(out, "model.safetensors"), sd, {"format": "pt"})
    return cfg


# ----------------------------------------------------------------------------------------------
def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="models/demo/checkpoint")
    ap.add_argument("--per-class", type=int, default=500, help="training clips per class")
    ap.add_argument("--val-per-class", type=int, default=20, help="in-memory validation clips")
    ap.add_argument("--eval-per-class", type=int, default=40, help="held-out .mp4 clips per class")
    ap.add_argument("--epochs", type=int, default=14)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--weight-decay", type=float, default=0.05)
    ap.add_argument("--motion-gain", type=float, default=20.0, help="see motion_init")
    ap.add_argument("--seed", type=int, default=0, help="torch seed (init, shuffling, flips)")
    a = ap.parse_args()

    torch.set_num_threads(1)
    torch.manual_seed(a.seed)
    t_start = time.time()

    print("rendering %d training clips (seed %d) ..." % (a.per_class * len(CLASSES), TRAIN_SEED),
          flush=True)
    xs, ys = make_dataset(TRAIN_SEED, a.per_class, augment=True, log_every=max(a.per_class // 5, 1))
    vx, vy = make_dataset(VAL_SEED, a.val_per_class, augment=False)
    xs_t, ys_t = torch.from_numpy(xs), torch.from_numpy(ys)
    t_data = time.time() - t_start
    print("data ready in %.0fs" % t_data, flush=True)

    model = VideoMAEForVideoClassification(CONFIG, len(CLASSES))
    motion_init(model, a.motion_gain)
    nparam = sum(p.numel() for p in model.parameters())
    print("model: %d parameters" % nparam, flush=True)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": a.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=a.lr)
    steps_per_epoch = len(ys) // a.batch
    total = steps_per_epoch * a.epochs
    warmup = max(total // 20, 1)

    def lr_at(s):
        if s < warmup:
            return a.lr * (s + 1) / warmup
        return a.lr * 0.5 * (1 + math.cos(math.pi * (s - warmup) / max(total - warmup, 1)))

    gen = torch.Generator().manual_seed(a.seed)
    step = 0
    t_train = time.time()
    for ep in range(a.epochs):
        model.train()
        perm = torch.randperm(len(ys), generator=gen)
        run_loss, run_ok, run_n = 0.0, 0, 0
        for bi in range(steps_per_epoch):
            idx = perm[bi * a.batch:(bi + 1) * a.batch]
            xb, yb = augment_batch(xs_t[idx], ys_t[idx], gen)
            for g in opt.param_groups:
                g["lr"] = lr_at(step)
            logits = model(to_pixel_values(xb))
            loss = F.cross_entropy(logits, yb, label_smoothing=0.05)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            step += 1
            run_loss += loss.item() * len(yb)
            run_ok += int((logits.argmax(1) == yb).sum())
            run_n += len(yb)
        acc, _ = evaluate(model, vx, vy)
        print("epoch %2d/%d  loss %.4f  train acc %.3f  val acc (in-memory, seed %d) %.3f  "
              "lr %.2e  %.0fs" % (ep + 1, a.epochs, run_loss / run_n, run_ok / run_n, VAL_SEED, acc,
                                  lr_at(step - 1), time.time() - t_train), flush=True)
    train_time = time.time() - t_train
    model.eval()

    write_checkpoint(model, a.out)
    print("wrote checkpoint to %s" % a.out, flush=True)

    # held-out accuracy on real H.264 .mp4 files
    with tempfile.TemporaryDirectory() as tmp:
        gen_motion.main(["--out", tmp, "--seed", str(TEST_SEED), "--per-class",
                         str(a.eval_per_class), "--mp4"])
        tx, ty, names = mp4_dataset(tmp)
    acc, preds = evaluate(model, tx, ty)
    print("held-out accuracy on %d H.264 .mp4 clips (seed %d): %.4f" % (len(ty), TEST_SEED, acc))
    conf = np.zeros((len(CLASSES), len(CLASSES)), int)
    for t, p in zip(ty, preds):
        conf[t, p] += 1
    for c, cls in enumerate(CLASSES):
        print("  %-13s %s" % (cls, " ".join("%3d" % v for v in conf[c])))
    for n, t, p in zip(names, ty, preds):
        if t != p:
            print("  wrong: %s -> %s" % (n, CLASSES[p]))
    print("training time %.0fs (data %.0fs), total %.0fs" % (train_time, t_data,
                                                            time.time() - t_start))


if __name__ == "__main__":
    main()
