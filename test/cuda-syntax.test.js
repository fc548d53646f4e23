'use strict';
// The CUDA path (native/core/cuda_path.cc and the VMAE_CUDA branches elsewhere) is only compiled
// when the libtorch found has CUDA, which CI's has not. This suite keeps it compiling anyway:
// g++ -fsyntax-only -DVMAE_CUDA against the CUDA headers of this machine's libtorch
// (/usr/include/c10/cuda, /usr/include/ATen/cuda) and the CUDA toolkit's (/usr/local/cuda/include).
// Branches for libtorch >= 2.1 (scaled_dot_product_attention, thread-local graph capture) are
// compiled on the GPU machine by scripts/gpu/run.sh, not here.
const assert = require('node:assert/strict');
const { execFile } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { test } = require('node:test');

const ROOT = path.join(__dirname, '..');
const CUDA_INCLUDE = process.env.CUDA_INCLUDE || '/usr/local/cuda/include';
const TORCH_INCLUDE = process.env.TORCH_INCLUDE || '/usr/include';
const SOURCES = [
  'native/core/cuda_path.cc',
  'native/core/classifier.cc',
  'native/core/attention.cc',
  'native/core/runtime_info.cc',
  'bench/native/vmae_bench.cc',
];

function missing() {
  if (!fs.existsSync(path.join(CUDA_INCLUDE, 'cuda_runtime_api.h'))) {
    return `${CUDA_INCLUDE}/cuda_runtime_api.h is absent (no CUDA toolkit headers on this machine; set CUDA_INCLUDE)`;
  }
  if (!fs.existsSync(path.join(TORCH_INCLUDE, 'c10', 'cuda', 'CUDAStream.h'))) {
    return `${TORCH_INCLUDE}/c10/cuda/CUDAStream.h is absent (this libtorch ships no CUDA headers; set TORCH_INCLUDE)`;
  }
  try {
    require('node:child_process').execFileSync('g++', ['--version'], { stdio: 'ignore' });
  } catch {
    return 'g++ is not installed';
  }
  return null;
}

const skip = missing();

test('the CUDA sources compile (g++ -fsyntax-only -DVMAE_CUDA)', { skip: skip ?? false, timeout: 300_000 }, async () => {
  // A CPU-only libtorch's c10/cuda headers lack the generated cuda_cmake_macros.h; supply it.
  const stub = fs.mkdtempSync(path.join(os.tmpdir(), 'vmae-cuda-syntax-'));
  try {
    const macros = path.join(TORCH_INCLUDE, 'c10', 'cuda', 'impl', 'cuda_cmake_macros.h');
    if (!fs.existsSync(macros)) {
      fs.mkdirSync(path.join(stub, 'c10', 'cuda', 'impl'), { recursive: true });
      fs.writeFileSync(path.join(stub, 'c10', 'cuda', 'impl', 'cuda_cmake_macros.h'),
        '#pragma once\n#define C10_CUDA_BUILD_SHARED_LIBS\n');
    }
    const flags = ['-fsyntax-only', '-std=c++17', '-DVMAE_CUDA=1', `-I${stub}`, `-I${path.join(ROOT, 'native')}`,
      `-I${TORCH_INCLUDE}`, `-I${path.join(TORCH_INCLUDE, 'torch', 'csrc', 'api', 'include')}`, `-I${CUDA_INCLUDE}`];
    const compile = (src) => new Promise((resolve) => {
      execFile('g++', [...flags, path.join(ROOT, src)], { maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
        resolve({ src, ok: !err, stderr });
      });
    });
    // Two at a time: each g++ parses most of libtorch's headers.
    const results = [];
    for (let i = 0; i < SOURCES.length; i += 2) results.push(...await Promise.all(SOURCES.slice(i, i + 2).map(compile)));
    for (const r of results) assert.ok(r.ok, `${r.src} does not compile with -DVMAE_CUDA:\n${r.stderr.slice(0, 4000)}`);
  } finally {
    fs.rmSync(stub, { recursive: true, force: true });
  }
});
