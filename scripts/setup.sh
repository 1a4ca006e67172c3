#!/usr/bin/env bash
# Installs everything moeslice needs to build and test on Debian 12, as root (or with sudo).
# The C++ product needs the -dev packages; python3-torch/numpy run the PyTorch reference checks;
# OpenBLAS makes that reference (and the benchmark baseline) fast; oneDNN is the bf16 GEMM of
# `--compute bf16` (optional at build time); clang-14 and its runtime libraries build the
# libFuzzer targets of scripts/fuzz.sh; Open MPI runs profile/select/eval/compare on several
# ranks (optional at build time, docs/scaling.md).
set -euo pipefail
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends \
  build-essential cmake ninja-build pkg-config git chromium \
  libeigen3-dev nlohmann-json3-dev libcli11-dev libfmt-dev doctest-dev libpcre2-dev libicu-dev libopenblas-openmp-dev libdnnl-dev \
  python3 python3-torch python3-numpy libopenblas0-openmp clang-14 libclang-rt-14-dev \
  libopenmpi-dev openmpi-bin >/dev/null
echo "setup: packages installed"

# Test-only tool (never part of the product): llama.cpp itself, as the prebuilt CPU binaries of the
# npm package node-llama-cpp, for the tests that check GGUF files in llama.cpp (tests/llama,
# tests/cli/llama_parity.sh). Installed from the lock file into tests/llama/node_modules
# (gitignored); node-llama-cpp needs Node.js 20 or later (Debian 12's own nodejs is 18).
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  $SUDO apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi
LLAMA_TOOLS="$(cd "$(dirname "$0")/.." && pwd)/tests/llama"
if ! (cd "$LLAMA_TOOLS" && node -e '
    const want = require("./package.json").dependencies;
    for (const [name, version] of Object.entries(want))
      if (require(`./node_modules/${name}/package.json`).version !== version) process.exit(1);' 2>/dev/null); then
  (cd "$LLAMA_TOOLS" && npm ci --omit=optional --no-audit --no-fund --loglevel=error >/dev/null)
fi
echo "setup: llama.cpp test tools installed (node-llama-cpp, tests/llama)"
