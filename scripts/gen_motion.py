#!/usr/bin/env python3
"""Procedural, seeded synthetic-motion video generator (the demo model's data set).

Every clip shows one object over a static background. The background (solid colour + linear
gradient + optional low-contrast texture), the object's shape, colour, size, aspect ratio, start
orientation and position, the speed of its motion and the pixel noise are all drawn at random for
*every* class from the same distributions, so that the classes can only be told apart by how the
object changes over time:

    moving_left  moving_right  moving_up  moving_down   translation at constant velocity
    growing      shrinking                               scale changes by x2 .. x3
    rotating                                             constant angular velocity (either sign)
    flashing                                             object blinks on/off (period 6..12 frames)
    static                                               nothing moves (sub-pixel jitter only)

Shapes (rectangle, ellipse, triangle, cross, L, arrow, T; aspect ratio 1.4..1.8 so that none is
rotation invariant) are placed, scaled and rotated about their centroid. Object colours keep a
minimum contrast to the background; per-frame Gaussian pixel noise (sigma 0..3) is added.

Clip geometry: 32 frames, 16 fps, 128x96 (W x H) rgb24 by default. All motion stays inside the
central 96x96 region (what a shortest-edge resize + centre crop keeps).

Reproducibility: clip ``i`` of class ``c`` rendered with base seed ``S`` uses
``np.random.default_rng([S, c, i])`` (``c`` = index in ``CLASSES``); no global random state is
used, and a frame's pixels do not depend on which other frames are rendered. Seed allocation used by this project:
    0 .. 999   evaluation / tests / examples (never used for training)
    1000       the demo model's training set (scripts/train_demo_model.py)

Python API:
    render_clip(cls, rng, frames=None, num_frames=32, width=128, height=96) -> uint8 [T, H, W, 3]
    clip_rng(seed, cls, i) -> np.random.Generator

CLI:
    /usr/bin/python3 scripts/gen_motion.py --out DIR --seed S --per-class N [--mp4] [--npy]
writes DIR/<class>_<i>.mp4 (H.264 yuv420p crf 18) and/or DIR/<class>_<i>.npy, and DIR/labels.json.
"""
import argparse
import json
import math
import os
import subprocess
import sys

import numpy as np

CLASSES = [
    "moving_left",
    "moving_right",
    "moving_up",
    "moving_down",
    "growing",
    "shrinking",
    "rotating",
    "flashing",
    "static",
]
SHAPES = ["rectangle", "ellipse", "triangle", "cross", "l_shape", "arrow", "t_shape"]

NUM_FRAMES = 32
FPS = 16
WIDTH = 128
HEIGHT = 96
SUPERSAMPLE = 2


def clip_rng(seed, cls, i):
    """The generator for clip ``i`` of class ``cls`` (name or index) under base seed ``seed``."""
    c = CLASSES.index(cls) if isinstance(cls, str) else int(cls)
    return np.random.default_rng([int(seed), c, int(i)])


# --------------------------------------------------------------------------------------------
# shapes: boolean masks in object coordinates (u, v), roughly inside [-1, 1]^2, none of them
# invariant under small rotations (the aspect ratio is >= 1.4 for every shape).
def _shape_mask(shape, u, v):
    au, av = np.abs(u), np.abs(v)
    if shape == "rectangle":
        return (au <= 1.0) & (av <= 1.0)
    if shape == "ellipse":
        return u * u + v * v <= 1.0
    if shape == "triangle":  # isosceles, apex at +u
        return (u >= -1.0) & (u <= 1.0) & (av <= 0.9 * (1.0 - u) / 2.0)
    if shape == "cross":  # off-centre bar -> no 90 degree symmetry
        return ((av <= 0.35) & (au <= 1.0)) | ((np.abs(u - 0.35) <= 0.3) & (av <= 1.0))
    if shape == "l_shape":
        return ((u >= -1.0) & (u <= 1.0) & (v >= 0.3) & (v <= 1.0)) | (
            (u >= -1.0) & (u <= -0.3) & (av <= 1.0))
    if shape == "arrow":  # shaft + head pointing to +u
        shaft = (u >= -1.0) & (u <= 0.2) & (av <= 0.35)
        head = (u >= 0.2) & (u <= 1.0) & (av <= (1.0 - u) * 1.2)
        return shaft | head
    if shape == "t_shape":
        return ((u >= 0.5) & (u <= 1.0) & (av <= 1.0)) | ((u >= -1.0) & (u <= 0.5) & (av <= 0.3))
    raise ValueError(shape)


def _shape_geometry(n=401):
    """Per shape: centroid (cu, cv) and half-extents (eu, ev) around it, in object units."""
    g = np.linspace(-1.2, 1.2, n)
    v, u = np.meshgrid(g, g, indexing="ij")
    out = {}
    for shape in SHAPES:
        m = _shape_mask(shape, u, v)
        cu, cv = float(u[m].mean()), float(v[m].mean())
        out[shape] = (cu, cv, float(np.abs(u[m] - cu).max()), float(np.abs(v[m] - cv).max()))
    return out


# objects are placed, scaled and rotated about their centroid
SHAPE_GEOMETRY = _shape_geometry()


# --------------------------------------------------------------------------------------------
def _random_color(rng):
    return rng.uniform(0, 255, size=3)


def _luma(c):
    return 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2]


def _contrasting_color(rng, bg):
    """An object colour clearly distinct from the background colour ``bg``."""
    for _ in range(100):
        c = _random_color(rng)
        if np.linalg.norm(c - bg) >= 130 and abs(_luma(c) - _luma(bg)) >= 45:
            return c
    # fallback: invert the background's luma
    return np.where(bg > 127, rng.uniform(0, 60, 3), rng.uniform(195, 255, 3))


def _background(rng, width, height):
    """Static background: solid colour + linear gradient + optional low-contrast texture."""
    base = _random_color(rng)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    ang = rng.uniform(0, 2 * math.pi)
    t = ((xx - width / 2) * math.cos(ang) + (yy - height / 2) * math.sin(ang)) / max(width, height)
    grad_amp = rng.uniform(0, 50, size=3) * rng.choice([-1, 1], size=3)
    bg = base[None, None, :] + t[..., None] * grad_amp[None, None, :]
    kind = rng.choice(["none", "checker", "stripes", "blobs"])
    amp = rng.uniform(4, 16)
    if kind == "checker":
        cell = rng.integers(6, 20)
        tex = ((xx // cell + yy // cell) % 2) * 2 - 1
    elif kind == "stripes":
        period = rng.uniform(6, 24)
        a2 = rng.uniform(0, math.pi)
        tex = np.sin(2 * math.pi * (xx * math.cos(a2) + yy * math.sin(a2)) / period)
    elif kind == "blobs":
        gh, gw = rng.integers(3, 8), rng.integers(3, 10)
        g = rng.uniform(-1, 1, size=(gh, gw))
        # bilinear upsampling of a coarse random grid
        gy = yy / (height - 1) * (gh - 1)
        gx = xx / (width - 1) * (gw - 1)
        y0 = np.clip(np.floor(gy).astype(int), 0, gh - 2) if gh > 1 else np.zeros_like(gy, int)
        x0 = np.clip(np.floor(gx).astype(int), 0, gw - 2)
        fy, fx = gy - y0, gx - x0
        tex = (g[y0, x0] * (1 - fy) * (1 - fx) + g[y0 + 1, x0] * fy * (1 - fx)
               + g[y0, x0 + 1] * (1 - fy) * fx + g[y0 + 1, x0 + 1] * fy * fx)
    else:
        tex = np.zeros_like(xx)
    bg = bg + amp * tex[..., None] * rng.uniform(0.5, 1.0, size=3)[None, None, :]
    return np.clip(bg, 0, 255), base


def _plan(cls, rng, num_frames, width, height):
    """Draw every random parameter of a clip; returns per-frame (cx, cy, scale, angle, on)."""
    T = num_frames
    t = np.arange(T, dtype=np.float64)
    shape = SHAPES[rng.integers(len(SHAPES))]
    size = rng.uniform(8.0, 13.0)                 # half-height of the object in pixels
    aspect = rng.uniform(1.4, 1.8)                # half-width = size * aspect
    angle0 = rng.uniform(0, 2 * math.pi)
    # the visible window after shortest-edge resize + centre crop is the central min(W,H) square
    side = min(width, height)
    x_lo, x_hi = (width - side) / 2.0, (width + side) / 2.0
    y_lo, y_hi = (height - side) / 2.0, (height + side) / 2.0
    margin = 3.0

    scale = np.ones(T)
    angle = np.full(T, angle0)
    on = np.ones(T)
    _, _, eu, ev = SHAPE_GEOMETRY[shape]
    radius = size * max(aspect * eu, ev)          # extent from the centroid at scale 1

    if cls in ("growing", "shrinking"):
        k = rng.uniform(2.0, 3.0)
        s_small = rng.uniform(0.4, 0.55)
        # keep the largest extent inside the window
        s_big = min(s_small * k, (side / 2 - margin) / radius)
        s_small = s_big / k
        ramp = t / (T - 1)
        scale = s_small * (s_big / s_small) ** ramp
        if cls == "shrinking":
            scale = scale[::-1].copy()
    else:
        scale = np.full(T, rng.uniform(0.75, 1.0))

    r = radius * scale.max()
    cx0 = rng.uniform(x_lo + r + margin, x_hi - r - margin)
    cy0 = rng.uniform(y_lo + r + margin, y_hi - r - margin)
    cx = np.full(T, cx0)
    cy = np.full(T, cy0)

    if cls.startswith("moving_"):
        span = max(side - 2 * (r + margin), 1.0)  # room along the motion axis
        speed = rng.uniform(0.6, 1.0) * span / (T - 1)
        sign = 1.0 if cls in ("moving_right", "moving_down") else -1.0
        lo_axis = (x_lo if cls in ("moving_left", "moving_right") else y_lo) + r + margin
        slack = span - speed * (T - 1)
        first = lo_axis + rng.uniform(0, max(slack, 0.0))
        path = first + speed * t                  # increasing coordinate
        if sign < 0:
            path = path[::-1].copy()
        drift = rng.uniform(-0.08, 0.08) * t      # slight perpendicular drift
        if cls in ("moving_left", "moving_right"):
            cx = path
            cy = np.clip(cy0 + drift, y_lo + r, y_hi - r)
        else:
            cy = path
            cx = np.clip(cx0 + drift, x_lo + r, x_hi - r)
    elif cls == "rotating":
        omega = rng.uniform(6.0, 12.0) * rng.choice([-1, 1])  # degrees per frame
        angle = angle0 + np.deg2rad(omega) * t
    elif cls == "flashing":
        period = int(rng.choice([6, 8, 10, 12]))
        duty = period // 2
        phase = int(rng.integers(period))
        on = (((t.astype(int) + phase) % period) < duty).astype(np.float64)
        if on[::4].min() == on[::4].max():        # never let stride-4 sampling hide the blinking
            on = 1.0 - (((t.astype(int) // 4) + phase) % 2).astype(np.float64)

    if cls in ("static", "growing", "shrinking", "rotating", "flashing"):
        # sub-pixel jitter so that "static" is not pixel-identical frames
        cx = cx + rng.normal(0, 0.25, size=T)
        cy = cy + rng.normal(0, 0.25, size=T)

    return dict(shape=shape, size=size, aspect=aspect, cx=cx, cy=cy, scale=scale,
                angle=angle, on=on)


def render_clip(cls, rng, frames=None, num_frames=NUM_FRAMES, width=WIDTH, height=HEIGHT):
    """Render one clip of class ``cls`` with generator ``rng``.

    Returns ``np.uint8 [len(frames), height, width, 3]``; ``frames`` (default: all) selects which
    frame indices to render -- the result for a given index does not depend on that choice.
    """
    if cls not in CLASSES:
        raise ValueError("unknown class %r" % (cls,))
    bg, bg_base = _background(rng, width, height)
    color = _contrasting_color(rng, bg_base)
    p = _plan(cls, rng, num_frames, width, height)
    noise_sigma = rng.uniform(0.0, 3.0)
    noise_seed = int(rng.integers(0, 2 ** 62))
    if frames is None:
        frames = range(num_frames)

    cu, cv = SHAPE_GEOMETRY[p["shape"]][:2]
    ss = SUPERSAMPLE
    ys = (np.arange(height * ss) + 0.5) / ss
    xs = (np.arange(width * ss) + 0.5) / ss
    gy, gx = np.meshgrid(ys, xs, indexing="ij")
    out = np.empty((len(frames), height, width, 3), dtype=np.uint8)
    for k, f in enumerate(frames):
        s = p["size"] * p["scale"][f]
        ca, sa = math.cos(p["angle"][f]), math.sin(p["angle"][f])
        dx, dy = gx - p["cx"][f], gy - p["cy"][f]
        u = (dx * ca + dy * sa) / (s * p["aspect"])
        v = (-dx * sa + dy * ca) / s
        m = _shape_mask(p["shape"], u + cu, v + cv).astype(np.float64)
        m = m.reshape(height, ss, width, ss).mean(axis=(1, 3)) * p["on"][f]
        img = bg * (1.0 - m[..., None]) + color[None, None, :] * m[..., None]
        if noise_sigma > 0:
            nrng = np.random.default_rng([noise_seed, int(f)])
            img = img + nrng.normal(0.0, noise_sigma, size=img.shape)
        out[k] = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    return out


def write_mp4(path, frames, fps=FPS, crf=18):
    """Encode ``uint8 [T, H, W, 3]`` frames as H.264/yuv420p through the ffmpeg CLI."""
    T, H, W, _ = frames.shape
    cmd = ["ffmpeg", "-y", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "rgb24",
           "-s", "%dx%d" % (W, H), "-r", str(fps), "-i", "-", "-c:v", "libx264",
           "-pix_fmt", "yuv420p", "-crf", str(crf), "-threads", "1", path]
    subprocess.run(cmd, input=np.ascontiguousarray(frames).tobytes(), check=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, help="output folder")
    ap.add_argument("--seed", type=int, required=True, help="base seed (0..999 = evaluation)")
    ap.add_argument("--per-class", type=int, required=True, help="clips per class")
    ap.add_argument("--mp4", action="store_true", help="write H.264 .mp4 files")
    ap.add_argument("--npy", action="store_true", help="write .npy frame arrays")
    ap.add_argument("--classes", default=",".join(CLASSES), help="comma separated subset")
    ap.add_argument("--frames", type=int, default=NUM_FRAMES)
    ap.add_argument("--width", type=int, default=WIDTH)
    ap.add_argument("--height", type=int, default=HEIGHT)
    a = ap.parse_args(argv)
    if not (a.mp4 or a.npy):
        a.mp4 = True
    classes = [c for c in a.classes.split(",") if c]
    os.makedirs(a.out, exist_ok=True)
    labels = {}
    for cls in classes:
        for i in range(a.per_class):
            clip = render_clip(cls, clip_rng(a.seed, cls, i), num_frames=a.frames,
                               width=a.width, height=a.height)
            stem = "%s_%d" % (cls, i)
            if a.mp4:
                write_mp4(os.path.join(a.out, stem + ".mp4"), clip)
                labels[stem + ".mp4"] = cls
            if a.npy:
                np.save(os.path.join(a.out, stem + ".npy"), clip)
                labels[stem + ".npy"] = cls
    with open(os.path.join(a.out, "labels.json"), "w") as f:
        json.dump(labels, f, indent=1, sort_keys=True)
        f.write("\n")
    print("wrote %d files to %s" % (len(labels), a.out), file=sys.stderr)


if __name__ == "__main__":
    main()
