#!/usr/bin/env bash
# Run locally (this machine has Node and node_modules) before scripts/gpu/run.sh on a GPU machine:
# fills .gpu/ (git-ignored) with what that machine lacks, then prints the device call to make.
#   .gpu/node.xz                     this machine's node, xz-compressed (../shared/gpu/pack-node.sh)
#   .gpu/node-api-headers/include    N-API C headers, for the plain-CMake build
#   .gpu/node_modules/node-addon-api napi.h
#   .gpu/node_modules/zod            the one runtime dependency lib/ needs to load a model
#   .gpu/lib                         lib/**/*.js, compiled here (git-ignored, so not in the copy)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
if [ -x ../shared/gpu/pack-node.sh ] || [ -f ../shared/gpu/pack-node.sh ]; then
  bash ../shared/gpu/pack-node.sh > /dev/null
else
  mkdir -p .gpu
  grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || echo '/.gpu/' >> .git/info/exclude
  [ -s .gpu/node.xz ] || xz -T2 -6 -c "$(command -v node)" > .gpu/node.xz
fi
rm -rf .gpu/node-api-headers .gpu/node_modules .gpu/lib
mkdir -p .gpu/node-api-headers .gpu/node_modules .gpu/lib
cp -r node_modules/node-api-headers/include .gpu/node-api-headers/
cp -r node_modules/node-addon-api node_modules/zod .gpu/node_modules/
npx tsc -p tsconfig.json
(cd lib && find . -name '*.js' -print0 | xargs -0 -I{} cp --parents {} ../.gpu/lib/)
du -sh .gpu
cat <<'TXT'
Now, with a GPU lent (status: can_start_another true), one device call per line:
  run  command: OUT=$OUT scripts/gpu/run.sh build check     carry: [".gpu"]   timeout_s: 600
  run  command: OUT=$OUT scripts/gpu/run.sh bench summary   carry: [".gpu"]   timeout_s: 600
Then copy the files it returns into bench/results/gpu-<date>/.
TXT
