#!/usr/bin/env bash
# The README's results table: for every domain of examples/data and each of the three example
# models, rank that domain's experts (router mass on its validation documents) at 25% and 12.5%
# plus a random 25% baseline, and compare them with the full model on the domain's test split and
# multiple-choice tasks. Plans are evaluated by restricted routing, which computes exactly what
# the sliced checkpoint computes (tests/cli/slice_unslice.sh), so nothing is written to disk
# but JSON. Prints Markdown tables (examples/summarize.py).
#
# Usage: examples/all_domains.sh   (env: MOESLICE, MOESLICE_EXAMPLE_DIR, MODELS, MODELS_DIR)
set -euo pipefail
cd "$(dirname "$0")/.."
MOESLICE=${MOESLICE:-build/apps/moeslice}
OUT=${MOESLICE_EXAMPLE_DIR:-build/example}/all-domains
MODELS=${MODELS:-emo-style random-pools standard}
MODELS_DIR=${MODELS_DIR:-examples/models}
DATA=examples/data
mkdir -p "$OUT"
cat "$DATA"/*/validation.jsonl >"$OUT/validation-all-domains.jsonl"
domains=$(cd "$DATA" && ls -d */ | tr -d /)
for model in $MODELS; do
  full="$MODELS_DIR/$model"
  mkdir -p "$OUT/$model"
  "$MOESLICE" profile --model "$full" --corpus "$OUT/validation-all-domains.jsonl" --quiet \
    --out "$OUT/$model/usage.safetensors" --force >/dev/null
  for domain in $domains; do
    w="$OUT/$model/$domain"
    mkdir -p "$w"
    for keep in 25 12.5; do
      "$MOESLICE" rank --usage "$OUT/$model/usage.safetensors" --domain "$domain" --metric mass \
        --keep "$keep%" --out "$w/mass-$keep.json" --force >/dev/null
    done
    "$MOESLICE" rank --usage "$OUT/$model/usage.safetensors" --domain "$domain" --metric random \
      --seed 1 --keep 25% --out "$w/random-25.json" --force >/dev/null
    "$MOESLICE" compare --model "$full" --plan "$w/mass-25.json" --plan "$w/mass-12.5.json" \
      --plan "$w/random-25.json" --corpus "$DATA/$domain/test.jsonl" \
      --tasks "$DATA/$domain/mc.jsonl" --json "$w/compare.json" --force >/dev/null
    echo "done: $model $domain" >&2
  done
done
/usr/bin/env python3 examples/summarize.py "$OUT"
