#!/usr/bin/env bash
# The main job on the bundled example (README command #1 runs it after setup and build): profile,
# rank, slice, compare and report for the three tiny models in examples/models on the code domain
# of examples/data. See examples/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
exec examples/run_example.sh "$@"
