'use strict';
// Synthetic motion clips in the style of the demo model's training data (scripts/gen_motion.py):
// 128x96 rgb24, a static background (solid colour + linear gradient), one ellipse of aspect 1.6 in
// a contrasting colour moving inside the central 96x96 square (what the centre crop keeps), drawn
// with 2x2 supersampling, plus mild Gaussian-like pixel noise.

/** mulberry32: deterministic uniform [0, 1). */
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Frames of an object whose centre x follows `xAt(frame)` (pixels), y fixed at the middle.
 * Returns { data: Buffer [n,96,128,3], width, height }.
 */
function renderMotion(count, xAt, { seed = 1, width = 128, height = 96 } = {}) {
  const rand = rng(seed);
  const bg = [40 + rand() * 60, 60 + rand() * 60, 120 + rand() * 80];
  const fg = [230, 210 - rand() * 40, 60];
  const grad = [rand() * 40 - 20, rand() * 40 - 20, rand() * 40 - 20];
  const rx = 11;
  const ry = 7;
  const cy = height / 2 + (rand() * 10 - 5);
  const frame = width * height * 3;
  const data = Buffer.alloc(count * frame);
  for (let f = 0; f < count; f++) {
    const cx = xAt(f);
    let p = f * frame;
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        let cover = 0;
        for (const dy of [0.25, 0.75]) {
          for (const dx of [0.25, 0.75]) {
            const u = (x + dx - cx) / rx;
            const v = (y + dy - cy) / ry;
            if (u * u + v * v <= 1) cover += 0.25;
          }
        }
        const t = (x - width / 2) / width;
        for (let c = 0; c < 3; c++) {
          const back = bg[c] + grad[c] * t;
          const noise = (rand() + rand() + rand() - 1.5) * 2; // about N(0, 1)
          data[p++] = Math.max(0, Math.min(255, Math.round(back * (1 - cover) + fg[c] * cover + noise)));
        }
      }
    }
  }
  return { data, width, height };
}

/**
 * An object that moves left for `seconds` then right for `seconds` at `fps`, `speed` pixels per
 * frame, turning at the left side of the visible square. Returns renderMotion's result.
 */
function leftThenRight({ fps = 16, seconds = 6, speed = 0.75, seed = 1 } = {}) {
  const half = Math.round(fps * seconds);
  const start = 64 + (half * speed) / 2; // centred on the frame's middle column
  const xAt = (f) => (f < half ? start - speed * f : start - speed * half + speed * (f - half));
  return { ...renderMotion(2 * half, xAt, { seed }), fps, switchSec: half / fps };
}

module.exports = { renderMotion, leftThenRight };
