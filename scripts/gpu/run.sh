#!/usr/bin/env bash
# videomae-node on a lent GPU machine: build with plain CMake against the machine's Python torch,
# check correctness against Hugging Face transformers, benchmark. See scripts/gpu/README.md.
# NOT RUN YET: no GPU was lent to the task that wrote it.
#
#   scripts/gpu/run.sh [STAGE ...]      STAGE: build | check | bench | summary | all (default)
#
# Needs (prepared locally by scripts/gpu/pack.sh, carried with carry: [".gpu"]):
#   .gpu/node.xz                          this project's Node binary, xz-compressed
#   .gpu/node-api-headers/include         N-API C headers
#   .gpu/node_modules/{node-addon-api,zod}
#   .gpu/lib                              the compiled TypeScript (lib/**/*.js)
# Writes everything it measures under $OUT (default ./gpu-out); keeps its build, checkpoint and
# model under bench/work/gpu (git-ignored, so it survives between calls on a warm machine).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
OUT=${OUT:-$ROOT/gpu-out}
WORK=${VMAE_GPU_WORK:-$ROOT/bench/work/gpu}
BUILD=$WORK/build
PY=${VIDEOMAE_PYTHON:-$(command -v python3)}
DTYPES=${VMAE_GPU_DTYPES:-"float16 bfloat16 float32"}
ITERS=${VMAE_GPU_ITERS:-20}
mkdir -p "$OUT" "$WORK/bin"
export VIDEOMAE_PYTHON=$PY
export PATH="$WORK/bin:/usr/local/cuda/bin:$PATH"

log() { echo "[gpu $(date +%H:%M:%S)] $*" | tee -a "$OUT/run.log" >&2; }

setup_node() {
  if ! command -v node > /dev/null; then
    [ -f .gpu/node.xz ] || { log "no node and no .gpu/node.xz: run scripts/gpu/pack.sh locally and carry .gpu"; exit 2; }
    xz -dc .gpu/node.xz > "$WORK/bin/node"
    chmod +x "$WORK/bin/node"
  fi
  export NODE_PATH="$ROOT/.gpu/node_modules"
  if [ ! -f lib/index.js ] && [ -d .gpu/lib ]; then cp -r .gpu/lib/. lib/; fi
  [ -f lib/index.js ] || { log "lib/index.js is missing: run scripts/gpu/pack.sh locally (it compiles the TypeScript)"; exit 2; }
}

stage_build() {
  log "build: plain CMake + Ninja against $($PY -c 'import torch; print(torch.__version__)')"
  local prefix
  prefix=$($PY -c 'import torch.utils; print(torch.utils.cmake_prefix_path)')
  cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DTorch_DIR="$prefix/Torch" \
    -DCMAKE_JS_INC="$ROOT/.gpu/node-api-headers/include" \
    -DVMAE_NODE_ADDON_API_DIR="$ROOT/.gpu/node_modules/node-addon-api" 2>&1 | tee "$OUT/cmake-configure.log" | tail -5
  grep -q "CUDA: ON" "$OUT/cmake-configure.log" || log "WARNING: CMake found no CUDA in this libtorch"
  cmake --build "$BUILD" 2>&1 | tee "$OUT/cmake-build.log" | tail -3
  cmake --build "$BUILD" --target vmae_bench 2>&1 | tail -2
  test -f "$BUILD/Release/videomae.node"
}

use_build() {
  export VIDEOMAE_NATIVE_PATH="$BUILD/Release/videomae.node"
  [ -f "$VIDEOMAE_NATIVE_PATH" ] || { log "no build at $VIDEOMAE_NATIVE_PATH: run the build stage"; exit 2; }
}

make_model() {
  # transformers 5.x layout (query/key/value.bias), so that HF loads every bias as it is.
  if [ ! -f "$WORK/ckpt-huge/config.json" ]; then
    log "model: random huge-config checkpoint (hidden 1280, 32 layers, 16 heads, 5120 MLP)"
    $PY test/tools/make_checkpoint.py --out "$WORK/ckpt-huge" --bench-size huge --layout v5 --preprocessor
  fi
  if [ ! -f "$WORK/huge.pt" ]; then
    log "model: exporting $WORK/huge.pt"
    $PY scripts/export_videomae.py --checkpoint "$WORK/ckpt-huge" --output "$WORK/huge.pt"
  fi
}

stage_check() {
  use_build
  make_model
  local shape=2,16,3,224,224 x="$WORK/check-x.f32"
  $PY -c "import numpy as np; np.random.default_rng(0).standard_normal((2,16,3,224,224)).astype('<f4').tofile('$x')"
  log "check: HF eager float32 (no TF32) on the GPU"
  $PY scripts/gpu/hf_bench.py --checkpoint "$WORK/ckpt-huge" --impl eager --dtype float32 --batch 1 --iters 1 --warmup 0 \
    --logits-input "$x" --logits-shape $shape --logits-out "$WORK/check-hf.f32" > "$OUT/check-hf.json"
  log "check: Python torch.jit on the same .pt, float32"
  $PY - "$WORK/huge.pt" "$x" "$WORK/check-jit.f32" <<'PYEOF'
import sys, numpy as np, torch
torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
m = torch.jit.load(sys.argv[1], map_location="cuda").eval()
x = torch.from_numpy(np.fromfile(sys.argv[2], dtype="<f4").reshape(2, 16, 3, 224, 224).copy()).cuda()
with torch.inference_mode():
    m(x).float().cpu().numpy().astype("<f4").tofile(sys.argv[3])
PYEOF
  for dtype in float32 float16 bfloat16; do
    log "check: the addon on cuda, $dtype"
    VIDEOMAE_CUDA_TF32=0 node scripts/gpu/addon_logits.js "$WORK/huge.pt" "$x" $shape "$WORK/check-addon-$dtype.f32" \
      --device cuda --dtype $dtype > "$OUT/check-addon-$dtype.json"
  done
  log "check: the addon on the CPU (fused kernels, float32)"
  node scripts/gpu/addon_logits.js "$WORK/huge.pt" "$x" $shape "$WORK/check-addon-cpu.f32" --device cpu --dtype float32 \
    > "$OUT/check-addon-cpu.json"
  $PY - "$WORK" "$OUT/check.json" <<'PYEOF'
import json, sys, numpy as np
w, out = sys.argv[1], sys.argv[2]
ld = lambda n: np.fromfile("%s/check-%s.f32" % (w, n), dtype="<f4").reshape(2, -1).astype(np.float64)
hf, jit = ld("hf"), ld("jit")
res = {"logit_range": float(hf.max() - hf.min())}
for name, ref, tol in [("addon-float32", hf, 1e-3), ("addon-float32", jit, 1e-4), ("addon-cpu", hf, 1e-3),
                       ("jit", hf, 1e-3), ("addon-float16", hf, None), ("addon-bfloat16", hf, None)]:
    a = ld(name)
    key = "%s_vs_%s" % (name, "hf_eager_fp32" if ref is hf else "python_jit_fp32")
    d = float(np.abs(a - ref).max())
    res[key] = {"max_abs_diff": d, "top1_agrees": bool((a.argmax(1) == ref.argmax(1)).all())}
    if tol is not None:
        res[key]["tolerance"] = tol
        res[key]["ok"] = d <= tol
res["ok"] = all(v.get("ok", True) for v in res.values() if isinstance(v, dict))
json.dump(res, open(out, "w"), indent=2)
print(json.dumps(res, indent=2))
sys.exit(0 if res["ok"] else 1)
PYEOF
}

stage_bench() {
  use_build
  make_model
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv > "$OUT/nvidia-smi.csv" 2>&1 || true
  for dtype in $DTYPES; do
    local tf32=() cpp_tf32=0
    if [ "$dtype" = float32 ]; then tf32=(--tf32); cpp_tf32=1; fi
    log "bench $dtype: the addon, Python torch.jit, dynamic batching, CUDA graphs (bench/run.js)"
    node bench/run.js --device cuda --dtype $dtype --models huge --work "$WORK" --out "$OUT" --label "gpu-huge-$dtype" \
      --iters "$ITERS" --conc-clips 32 --batch 8 --runtimes python,addon,addon-graphs,addon-b8 > /dev/null \
      || log "bench/run.js failed for $dtype"
    for impl in eager sdpa; do
      log "bench $dtype: HF transformers $impl"
      $PY scripts/gpu/hf_bench.py --checkpoint "$WORK/ckpt-huge" --impl $impl --dtype $dtype --batch 1,8 \
        --iters "$ITERS" "${tf32[@]}" > "$OUT/hf-$impl-$dtype.json" || log "hf_bench $impl $dtype failed"
    done
    for fused in 0 1; do
      for b in 1 8; do
        log "bench $dtype: plain C++ libtorch loop, batch $b, addon rewrites $fused"
        "$BUILD/vmae_bench" model "$WORK/huge.pt" --device cuda --dtype $dtype --batch $b --iters "$ITERS" \
          --warmup 3 --fused $fused --tf32 $cpp_tf32 > "$OUT/cpp-$dtype-fused$fused-b$b.json" || log "vmae_bench failed"
      done
    done
  done
}

stage_summary() {
  $PY scripts/gpu/summarize.py "$OUT"
}

setup_node
stages=("$@")
[ ${#stages[@]} -eq 0 ] && stages=(all)
for s in "${stages[@]}"; do
  case $s in
    build) stage_build ;;
    check) stage_check ;;
    bench) stage_bench ;;
    summary) stage_summary ;;
    all) stage_build; stage_check || log "check FAILED (see $OUT/check.json); benchmarking anyway"; stage_bench; stage_summary ;;
    *) echo "unknown stage $s (build | check | bench | summary | all)" >&2; exit 2 ;;
  esac
done
