#!/usr/bin/env bash
# The whole test suite: installs packages, builds, runs ctest. This is README command #2 and
# what .ci/run calls first.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh build
ctest --test-dir build --output-on-failure -j"$(nproc)"
