#!/usr/bin/env bash
# Builds llama.cpp's llama-bench, llama-perplexity and llama-quantize, natively (-march=native: AVX-512 where the
# CPU has it), from the llama.cpp source that the node-llama-cpp npm package bundles as a git
# bundle (tests/llama/node_modules, installed by scripts/setup.sh): offline, for the benchmarks
# that compare moeslice with llama.cpp (docs/benchmarks.md). Never used by the tests. Idempotent:
# a build of the same bundle commit is reused. Prints the directory holding the binaries.
#
# Usage: bench/build_llama_cpp.sh DEST   (env: JOBS, default nproc)
set -euo pipefail
HERE="$(cd "$(dirname "$0")/.." && pwd)"
BUNDLE="$HERE/tests/llama/node_modules/node-llama-cpp/llama/gitRelease.bundle"
DEST="${1:?usage: build_llama_cpp.sh DEST}"
JOBS=${JOBS:-$(nproc)}
[ -f "$BUNDLE" ] || { echo "build_llama_cpp: $BUNDLE not found (run scripts/setup.sh)" >&2; exit 1; }
COMMIT=$(git bundle list-heads "$BUNDLE" | awk '$2 == "HEAD" {print $1}')
if [ -x "$DEST/build/bin/llama-bench" ] && [ -x "$DEST/build/bin/llama-quantize" ] && [ "$(cat "$DEST/.bundle-commit" 2>/dev/null)" = "$COMMIT" ]; then
  echo "$DEST/build/bin"
  exit 0
fi
mkdir -p "$DEST"
if [ ! -d "$DEST/src/.git" ]; then
  git clone -q --no-checkout "$BUNDLE" "$DEST/src"
fi
git -C "$DEST/src" -c advice.detachedHead=false checkout -q "$COMMIT"
cmake -S "$DEST/src" -B "$DEST/build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON \
  -DLLAMA_CURL=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_TESTS=OFF -DGGML_CCACHE=OFF >&2
ninja -C "$DEST/build" -j"$JOBS" llama-bench llama-perplexity llama-quantize >&2
echo "$COMMIT" >"$DEST/.bundle-commit"
echo "$DEST/build/bin"
