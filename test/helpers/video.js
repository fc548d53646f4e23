'use strict';
// Fixtures for the video suites: small models (through test/helpers/fixtures.js), synthetic frames,
// videos made with the ffmpeg CLI, an independent ffmpeg decode, and a check for leftover
// ffmpeg/ffprobe children of this process.
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const { makeModel, python, ROOT, maxAbsDiff } = require('./fixtures');

const FFMPEG = process.env.FFMPEG_PATH || 'ffmpeg';
const FFPROBE = process.env.FFPROBE_PATH || 'ffprobe';

/** A temp folder removed when the process exits. */
function tmpDir(prefix = 'vmae-video-') {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const TINY = ['--hidden', '32', '--layers', '1', '--heads', '2', '--intermediate', '64', '--patch', '16', '--tubelet', '2'];

/** 16 frames of 32x32 (shortest edge 40, so crops differ), 7 labels, weights far from uniform. */
function videoModel() {
  return makeModel(['--seed', '3', '--frames', '16', '--image-size', '32', '--labels', '7', '--weight-std', '0.2',
    '--preprocessor', '--shortest-edge', '40', '--crop-size', '32', ...TINY]);
}

/** A 224 model (shortest edge 224, crop 224) with a tiny transformer, for preprocessing parity. */
function model224() {
  return makeModel(['--seed', '4', '--frames', '2', '--image-size', '224', '--labels', '3', '--preprocessor', ...TINY]);
}

function ffmpeg(args, input) {
  return execFileSync(FFMPEG, ['-nostdin', '-v', 'error', '-y', ...args],
    { input, maxBuffer: 1 << 30, stdio: [input ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
}

/** Encodes raw rgb24 frames [n,h,w,3] to `out` with codec args (lossless ffv1 by default). */
function encodeFrames(data, width, height, out, codecArgs = ['-c:v', 'ffv1', '-pix_fmt', 'bgr0'], fps = 25) {
  ffmpeg(['-f', 'rawvideo', '-pix_fmt', 'rgb24', '-s', `${width}x${height}`, '-r', String(fps), '-i', 'pipe:0',
    ...codecArgs, out], data);
  return out;
}

/** Frame i is one flat color that encodes i: R = i % 256, G = floor(i / 256), B = 200. */
function indexFrames(count, width, height) {
  const frame = width * height * 3;
  const data = Buffer.alloc(count * frame);
  for (let i = 0; i < count; i++) {
    for (let p = 0; p < width * height; p++) {
      data[i * frame + p * 3] = i % 256;
      data[i * frame + p * 3 + 1] = Math.floor(i / 256);
      data[i * frame + p * 3 + 2] = 200;
    }
  }
  return data;
}

/** The index encoded by indexFrames, read from the middle pixel of frame f of `data`. */
function frameIndex(data, width, height, f = 0) {
  const p = (f * width * height + Math.floor(height / 2) * width + Math.floor(width / 2)) * 3;
  return data[p] + 256 * data[p + 1];
}

/** Deterministic uint8 frames: noise over smooth gradients (mulberry32). */
function syntheticFrames(count, height, width, seed = 1) {
  let a = seed >>> 0;
  const rand = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const data = new Uint8Array(count * height * width * 3);
  let i = 0;
  for (let f = 0; f < count; f++) {
    const noisy = f % 2 === 0; // even frames: random; odd frames: smooth gradients with mild noise
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        for (let c = 0; c < 3; c++) {
          const smooth = c === 0 ? (255 * x) / width : c === 1 ? (255 * y) / height : 128 + 127 * Math.sin((x + y + f * 7) / 9);
          data[i++] = noisy ? Math.floor(rand() * 256) : Math.max(0, Math.min(255, Math.round(smooth + (rand() - 0.5) * 6)));
        }
      }
    }
  }
  return data;
}

/**
 * Independent decode: every frame of `file` as rgb24, with the ffmpeg CLI. `-vsync passthrough`
 * because the CLI's default for rawvideo output is constant frame rate, which may duplicate frames
 * (e.g. the last one, to fill the container's duration).
 */
function decodeAll(file, width, height) {
  const data = ffmpeg(['-i', file, '-vsync', 'passthrough', '-f', 'rawvideo', '-pix_fmt', 'rgb24', 'pipe:1']);
  const frame = width * height * 3;
  if (data.length % frame !== 0) throw new Error(`decoded ${data.length} bytes, not a multiple of ${frame}`);
  return { data, count: data.length / frame, frame };
}

/** The frames at `indices` of a decodeAll() result, as a RawVideo. */
function pick(decoded, indices, width, height) {
  const data = new Uint8Array(indices.length * decoded.frame);
  indices.forEach((index, f) => data.set(decoded.data.subarray(index * decoded.frame, (index + 1) * decoded.frame), f * decoded.frame));
  return { data, frames: indices.length, height, width };
}

/** ffprobe's packet count of the first video stream. */
function packetCount(file) {
  const out = execFileSync(FFPROBE, ['-v', 'error', '-select_streams', 'v:0', '-count_packets', '-show_entries',
    'stream=nb_read_packets', '-of', 'csv=p=0', file], { encoding: 'utf8' });
  return Number(out.trim());
}

/** Live ffmpeg/ffprobe processes whose parent is this process (zombies included). */
function ffmpegChildren() {
  const found = [];
  for (const pid of fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    let stat;
    try {
      stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    } catch {
      continue;
    }
    // pid (comm) state ppid …; comm may contain spaces, so split after the last ')'.
    const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    if (ppid === process.pid && /^ff(mpeg|probe)/.test(comm)) found.push(`${pid} ${comm}`);
  }
  return found;
}

/** Resolves once `predicate()` is true (polling), or rejects after `ms`. */
async function waitFor(predicate, ms = 5000, what = 'condition') {
  const end = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Mean of per-view softmax and of logits over rows of `labels` (the averaging classifyVideo does). */
function averageRows(rows) {
  const n = rows[0].length;
  const probs = new Float64Array(n);
  const logits = new Float64Array(n);
  for (const row of rows) {
    const max = Math.max(...row);
    const e = Array.from(row, (v) => Math.exp(v - max));
    const sum = e.reduce((x, y) => x + y, 0);
    for (let i = 0; i < n; i++) {
      probs[i] += e[i] / sum / rows.length;
      logits[i] += row[i] / rows.length;
    }
  }
  return { probs, logits };
}

module.exports = {
  ROOT, FFMPEG, FFPROBE, python, maxAbsDiff, tmpDir, videoModel, model224, ffmpeg, encodeFrames, indexFrames,
  frameIndex, syntheticFrames, decodeAll, pick, packetCount, ffmpegChildren, waitFor, averageRows,
};
