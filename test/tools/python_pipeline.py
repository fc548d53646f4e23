#!/usr/bin/env python3
"""Independent Python reference pipeline: video files -> predictions of a videomae-node model.

    /usr/bin/python3 test/tools/python_pipeline.py --model model.pt a.mp4 b.mp4 ...

prints JSON ``[{"file", "index", "label", "logits"}, ...]`` (one entry per video, in argument
order) on stdout. The Node tests compare the addon's results against this.

Pipeline (the runtime's documented behaviour, implemented here without sharing any code):
  1. decode every frame with the ffmpeg CLI to rgb24 (size from ffprobe);
  2. sample ``numFrames`` frames at stride 4: candidates 0, 4, 8, ... (n = ceil(N / 4) of them),
     take the centre clip ``start = max(n - numFrames, 0) // 2``, pad with the last frame;
  3. per frame: PIL BILINEAR resize so the shortest edge is ``shortestEdge`` (long side
     ``int(shortestEdge * long / short)``), centre crop ``cropSize`` (top = (h - crop) // 2,
     left = (w - crop) // 2), ``x * rescaleFactor``, ``(x - mean) / std``;
  4. ``[1, T, C, H, W]`` float32 through ``torch.jit.load(model)`` on CPU.
Preprocessing values come from the model's embedded ``videomae.json``.
"""
import argparse
import json
import math
import subprocess
import sys

import numpy as np
import torch
from PIL import Image

STRIDE = 4


def probe_size(path):
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                          "stream=width,height", "-of", "json", path],
                         capture_output=True, check=True).stdout
    st = json.loads(out)["streams"][0]
    return int(st["width"]), int(st["height"])


def decode(path):
    w, h = probe_size(path)
    raw = subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-i", path, "-map", "0:v:0",
                          "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
                         capture_output=True, check=True).stdout
    n = len(raw) // (w * h * 3)
    if n == 0:
        raise RuntimeError("%s: no frames decoded" % path)
    return np.frombuffer(raw[:n * w * h * 3], np.uint8).reshape(n, h, w, 3)


def sample(num_decoded, num_frames):
    n = int(math.ceil(num_decoded / STRIDE))
    start = max(n - num_frames, 0) // 2
    idx = [i * STRIDE for i in range(start, min(start + num_frames, n))]
    while len(idx) < num_frames:
        idx.append(idx[-1])
    return idx


def preprocess(frame, pp):
    short, crop = int(pp["shortestEdge"]), int(pp["cropSize"])
    img = Image.fromarray(frame)
    w, h = img.size
    if w <= h:
        nw, nh = short, int(short * h / w)
    else:
        nw, nh = int(short * w / h), short
    img = img.resize((nw, nh), Image.BILINEAR)
    top, left = (nh - crop) // 2, (nw - crop) // 2
    img = img.crop((left, top, left + crop, top + crop))
    x = np.asarray(img, dtype=np.float32) * np.float32(pp["rescaleFactor"])
    x = (x - np.asarray(pp["mean"], np.float32)) / np.asarray(pp["std"], np.float32)
    return x.transpose(2, 0, 1)  # [C, H, W]


def main(argv=None):
    ap = argparse.ArgumentParser(description="reference VideoMAE pipeline (ffmpeg + PIL + torch)")
    ap.add_argument("--model", required=True)
    ap.add_argument("videos", nargs="+")
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    extra = {"videomae.json": ""}
    model = torch.jit.load(a.model, map_location="cpu", _extra_files=extra)
    model.eval()
    meta = json.loads(extra["videomae.json"])
    cfg, pp, labels = meta["config"], meta["preprocessing"], meta["labels"]
    T = int(cfg["numFrames"])
    out = []
    for i, path in enumerate(a.videos):
        frames = decode(path)
        x = np.stack([preprocess(frames[k], pp) for k in sample(len(frames), T)])
        with torch.no_grad():
            y = model(torch.from_numpy(x).unsqueeze(0))
            logits = (y[0] if isinstance(y, tuple) else y)[0].float()  # (logits, embedding) since format /2
        idx = int(logits.argmax())
        out.append({"file": path, "index": idx, "label": labels[idx],
                    "logits": [float(v) for v in logits]})
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
