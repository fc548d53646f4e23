#!/usr/bin/env python3
"""Reference of Hugging Face VideoMAEImageProcessor's resize + center crop (+ normalize), PIL + numpy.

    python3 test/tools/pil_preprocess.py --input frames.u8 --shape T,H,W,3
        --shortest-edge S --crop-size S --output out.u8 [--crops C]
        [--normalize --rescale R --mean a,b,c --std a,b,c]

Per frame: PIL ``Image.fromarray(frame).resize((new_w, new_h), Image.BILINEAR)`` where the short
side becomes S and the long side int(S * long / short) (truncated, as HF's
get_resize_output_image_size), then a center crop top=(h-crop)//2, left=(w-crop)//2.

Outputs (raw, C order):
  default            uint8   [T, crop, crop, 3]        (before rescale/normalize)
  --crops C (C > 1)  uint8   [C, T, crop, crop, 3]     crop s starts at int(s*(long-crop)/(C-1))
                                                       along the long side, centered on the short
  --normalize        float32 [T, 3, crop, crop] (or [C, T, 3, crop, crop] with --crops) of
                     (x * R - mean) / std, computed in float64 then cast to float32
"""

import argparse
import sys

import numpy as np
from PIL import Image


def resize_shortest_edge(frame, size):
    h, w = frame.shape[:2]
    short, long = (w, h) if w <= h else (h, w)
    new_short, new_long = size, int(size * long / short)
    new_w, new_h = (new_short, new_long) if w <= h else (new_long, new_short)
    img = Image.fromarray(frame)
    return np.asarray(img.resize((new_w, new_h), Image.BILINEAR))


def center_crop(img, crop):
    h, w = img.shape[:2]
    top, left = (h - crop) // 2, (w - crop) // 2
    if top < 0 or left < 0:
        raise ValueError("crop %d is larger than the resized frame %dx%d" % (crop, w, h))
    return img[top:top + crop, left:left + crop]


def crop_at(img, crop, index, count):
    """Crop number `index` of `count` taken along the long side (centered on the short side)."""
    h, w = img.shape[:2]
    if count == 1:
        return center_crop(img, crop)
    if w >= h:
        top, left = (h - crop) // 2, int(index * (w - crop) / (count - 1))
    else:
        top, left = int(index * (h - crop) / (count - 1)), (w - crop) // 2
    if top < 0 or left < 0:
        raise ValueError("crop %d is larger than the resized frame %dx%d" % (crop, w, h))
    return img[top:top + crop, left:left + crop]


def preprocess(frames, shortest_edge, crop_size, crops=None):
    """frames: uint8 [T,H,W,3] -> uint8 [T,c,c,3], or [C,T,c,c,3] with crops."""
    resized = [resize_shortest_edge(np.ascontiguousarray(f), shortest_edge) for f in frames]
    if crops is None:
        return np.stack([center_crop(r, crop_size) for r in resized])
    return np.stack([np.stack([crop_at(r, crop_size, s, crops) for r in resized])
                     for s in range(crops)])


def normalize(u8, rescale, mean, std):
    """uint8 [..., T, c, c, 3] -> float32 [..., T, 3, c, c]."""
    x = u8.astype(np.float64) * rescale
    x = (x - np.asarray(mean, dtype=np.float64)) / np.asarray(std, dtype=np.float64)
    return np.moveaxis(x, -1, -3).astype(np.float32)


def _floats(s, n=3):
    v = [float(t) for t in s.split(",")]
    if len(v) != n:
        raise argparse.ArgumentTypeError("expected %d comma-separated numbers" % n)
    return v


def main(argv=None):
    ap = argparse.ArgumentParser(description="PIL reference of VideoMAEImageProcessor resize/crop")
    ap.add_argument("--input", required=True, help="raw uint8 frames [T,H,W,3]")
    ap.add_argument("--shape", required=True, help="T,H,W,3")
    ap.add_argument("--shortest-edge", type=int, required=True)
    ap.add_argument("--crop-size", type=int, required=True)
    ap.add_argument("--output", required=True)
    ap.add_argument("--crops", type=int, default=None, help="C crops along the long side")
    ap.add_argument("--normalize", action="store_true")
    ap.add_argument("--rescale", type=float, default=1 / 255)
    ap.add_argument("--mean", type=_floats, default=[0.485, 0.456, 0.406])
    ap.add_argument("--std", type=_floats, default=[0.229, 0.224, 0.225])
    a = ap.parse_args(argv)
    shape = tuple(int(s) for s in a.shape.split(","))
    if len(shape) != 4 or shape[3] != 3 or min(shape) <= 0:
        ap.error("--shape must be T,H,W,3")
    if a.crops is not None and a.crops < 1:
        ap.error("--crops must be >= 1")
    data = np.fromfile(a.input, dtype=np.uint8)
    if data.size != int(np.prod(shape)):
        ap.error("%s has %d bytes, shape %r needs %d" % (a.input, data.size, shape, int(np.prod(shape))))
    out = preprocess(data.reshape(shape), a.shortest_edge, a.crop_size, a.crops)
    if a.normalize:
        out = normalize(out, a.rescale, a.mean, a.std)
    np.ascontiguousarray(out).tofile(a.output)
    print("wrote %s: %s %s" % (a.output, out.dtype, list(out.shape)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
