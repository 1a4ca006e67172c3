#!/usr/bin/env bash
# The main job on the example model. Until the bundled trained example lands (issue 8) this
# generates a small random EMO-style checkpoint and inspects it.
set -euo pipefail
cd "$(dirname "$0")/.."
MOESLICE=build/apps/moeslice
OUT="${MOESLICE_EXAMPLE_DIR:-build/example}"
mkdir -p "$OUT"
"$MOESLICE" make-random --family emo --layers 4 --hidden 256 --heads 4 --experts 32 --top-k 4 \
  --expert-width 128 --vocab 1024 --dtype bf16 --seed 1 --out "$OUT/emo-random" --force
"$MOESLICE" inspect --model "$OUT/emo-random"
