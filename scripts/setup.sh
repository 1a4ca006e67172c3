#!/usr/bin/env bash
# Installs everything moeslice needs to build and test on Debian 12, as root (or with sudo).
# The C++ product needs the -dev packages; python3-torch/numpy run the PyTorch reference checks;
# OpenBLAS makes that reference (and the benchmark baseline) fast; oneDNN is the bf16 GEMM of
# `--compute bf16` (optional at build time); clang-14 and its runtime libraries build the
# libFuzzer targets of scripts/fuzz.sh.
set -euo pipefail
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends \
  build-essential cmake ninja-build pkg-config git chromium \
  libeigen3-dev nlohmann-json3-dev libcli11-dev libfmt-dev doctest-dev libpcre2-dev libicu-dev libopenblas-openmp-dev libdnnl-dev \
  python3 python3-torch python3-numpy libopenblas0-openmp clang-14 libclang-rt-14-dev >/dev/null
echo "setup: packages installed"
