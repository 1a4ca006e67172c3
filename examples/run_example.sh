#!/usr/bin/env bash
# The bundled example's main job, README command #1's last step: for each of the three tiny MoEs
# in examples/models (EMO-style, random-pool ablation, standard), profile the validation splits of
# every domain in examples/data, rank the experts for one domain (default: code) by router mass at
# 25% and 12.5%, at 25% with the budget spread unevenly over layers (--nonuniform; the models are
# EMO-family, whose config can list per-layer counts), plus a random 25% baseline; slice the mass
# plans into standalone checkpoints, compare them with the full model on that domain's test split
# and multiple-choice tasks, and write an HTML report per model. Prints the comparison tables and where the reports are.
#
# Usage: examples/run_example.sh [DOMAIN]   (env: MOESLICE=binary, MOESLICE_EXAMPLE_DIR=output dir,
#                                             MODELS="emo-style random-pools standard",
#                                             MODELS_DIR=examples/models)
set -euo pipefail
cd "$(dirname "$0")/.."
MOESLICE=${MOESLICE:-build/apps/moeslice}
OUT=${MOESLICE_EXAMPLE_DIR:-build/example}
DOMAIN=${1:-code}
MODELS=${MODELS:-emo-style random-pools standard}
MODELS_DIR=${MODELS_DIR:-examples/models}
DATA=examples/data

[[ -x "$MOESLICE" ]] || { echo "run_example: $MOESLICE not built (run scripts/build.sh)" >&2; exit 1; }
[[ -f "$DATA/$DOMAIN/test.jsonl" ]] || { echo "run_example: no domain '$DOMAIN' in $DATA" >&2; exit 1; }
mkdir -p "$OUT"
# Every domain's validation split in one corpus, so the reports can show how domains differ.
cat "$DATA"/*/validation.jsonl >"$OUT/validation-all-domains.jsonl"

step() { printf '\n== %s\n' "$*"; }
for model in $MODELS; do
  full="$MODELS_DIR/$model"
  work="$OUT/$model"
  mkdir -p "$work"
  step "$model: profile the validation splits of every domain"
  "$MOESLICE" profile --model "$full" --corpus "$OUT/validation-all-domains.jsonl" \
    --out "$work/usage.safetensors" --force
  step "$model: rank experts for '$DOMAIN' (router mass) and slice"
  "$MOESLICE" rank --usage "$work/usage.safetensors" --domain "$DOMAIN" --metric mass --keep 25% \
    --out "$work/keep-25.json" --force
  "$MOESLICE" rank --usage "$work/usage.safetensors" --domain "$DOMAIN" --metric mass \
    --keep 12.5% --out "$work/keep-12.5.json" --force
  "$MOESLICE" rank --usage "$work/usage.safetensors" --domain "$DOMAIN" --metric mass --keep 25% \
    --nonuniform --out "$work/keep-25-nonuniform.json" --force 2>/dev/null  # (the loader warning)
  "$MOESLICE" rank --usage "$work/usage.safetensors" --domain "$DOMAIN" --metric random --seed 1 \
    --keep 25% --out "$work/random-25.json" --force
  "$MOESLICE" slice --model "$full" --plan "$work/keep-25.json" --out "$work/sliced-25" --force
  "$MOESLICE" slice --model "$full" --plan "$work/keep-12.5.json" --out "$work/sliced-12.5" --force
  "$MOESLICE" slice --model "$full" --plan "$work/keep-25-nonuniform.json" \
    --out "$work/sliced-25-nonuniform" --force
  step "$model: compare on the '$DOMAIN' test split and multiple-choice tasks"
  "$MOESLICE" compare --model "$full" --sliced "$work/sliced-25" --sliced "$work/sliced-12.5" \
    --sliced "$work/sliced-25-nonuniform" --plan "$work/random-25.json" --corpus "$DATA/$DOMAIN/test.jsonl" \
    --tasks "$DATA/$DOMAIN/mc.jsonl" --json "$work/compare.json" --force | tee "$work/compare.txt"
  "$MOESLICE" report --usage "$work/usage.safetensors" --plan "$work/keep-25.json" \
    --plan "$work/keep-12.5.json" --plan "$work/keep-25-nonuniform.json" \
    --plan "$work/random-25.json" --compare "$work/compare.json" \
    --title "moeslice example: $model, sliced for '$DOMAIN'" --out "$work/report.html" --force
done

step "Summary: '$DOMAIN' test split, sliced by router mass on its validation split"
for model in $MODELS; do
  printf '\n%s (%s/%s)\n' "$model" "$MODELS_DIR" "$model"
  cat "$OUT/$model/compare.txt"
done
printf '\nReports:\n'
for model in $MODELS; do printf '  %s\n' "$(realpath "$OUT/$model/report.html")"; done
