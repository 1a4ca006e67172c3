#!/usr/bin/env bash
# Installs everything moeslice needs to build and test on Debian 12, as root (or with sudo).
# The C++ product needs the -dev packages; python3-torch/numpy run the PyTorch reference checks;
# OpenBLAS makes that reference (and the benchmark baseline) fast; oneDNN is the bf16 GEMM of
# `--compute bf16` (optional at build time).
set -euo pipefail
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends \
  build-essential cmake ninja-build pkg-config git chromium \
  libeigen3-dev nlohmann-json3-dev libcli11-dev libfmt-dev doctest-dev libpcre2-dev libicu-dev libopenblas-openmp-dev libdnnl-dev \
  python3 python3-torch python3-numpy libopenblas0-openmp >/dev/null
echo "setup: packages installed"
