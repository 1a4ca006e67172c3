#!/usr/bin/env bash
# Do plans profiled on a quantized model agree with plans profiled on the original? For each
# example model: profile the validation splits of every domain on the original BF16 weights and on
# the same weights quantized (examples/quantize_roundtrip.py: llama.cpp's quantizers, Q8_0, Q5_0
# -- what Q4_K_M stores rows of 128 as -- and Q4_0), rank the experts for one domain by router
# mass at 25% and 12.5%, and print the share of the original plan's experts each quantized plan
# keeps (per layer, averaged over layers). The README records the result.
#
# Usage: examples/quantized_plans.sh [DOMAIN]   (env: MOESLICE=binary, OUT=work dir,
#        MODELS="emo-style random-pools standard", TYPES="q8_0 q5_0 q4_0"); needs
#        tests/llama/node_modules (gguf-py from node-llama-cpp's llama.cpp source) and /usr/bin/python3
#        with torch.
set -euo pipefail
cd "$(dirname "$0")/.."
MOESLICE=${MOESLICE:-build/apps/moeslice}
OUT=${OUT:-build/quantized-plans}
DOMAIN=${1:-code}
MODELS=${MODELS:-emo-style random-pools standard}
TYPES=${TYPES:-q8_0 q5_0 q4_0}
mkdir -p "$OUT"
GGUF_PY=$(tests/llama/extract_gguf_py.sh "$OUT/llama.cpp")
cat examples/data/*/validation.jsonl >"$OUT/validation-all-domains.jsonl"

plans() {  # plans NAME MODEL_DIR: usage and the 25% / 12.5% plans of NAME
  "$MOESLICE" profile --model "$2" --corpus "$OUT/validation-all-domains.jsonl" \
    --out "$OUT/$1.usage.safetensors" --force >/dev/null 2>&1
  for keep in 25% 12.5%; do
    "$MOESLICE" rank --usage "$OUT/$1.usage.safetensors" --domain "$DOMAIN" --metric mass \
      --keep "$keep" --out "$OUT/$1.keep-${keep%\%}.json" --force >/dev/null
  done
}

printf '| model | weights | kept experts shared with the BF16 plan, 25%% | 12.5%% |\n|---|---|---|---|\n'
for model in $MODELS; do
  plans "$model-bf16" "examples/models/$model"
  for type in $TYPES; do
    /usr/bin/python3 examples/quantize_roundtrip.py --gguf-py "$GGUF_PY" --model "examples/models/$model" \
      --type "$type" --out "$OUT/$model-$type"
    plans "$model-$type" "$OUT/$model-$type"
    /usr/bin/python3 - "$OUT" "$model" "$type" <<'PY'
import json, sys
out, model, qtype = sys.argv[1:]
shares = []
for keep in ("25", "12.5"):
    a = json.load(open(f"{out}/{model}-bf16.keep-{keep}.json"))["experts_kept_per_layer"]
    b = json.load(open(f"{out}/{model}-{qtype}.keep-{keep}.json"))["experts_kept_per_layer"]
    layers = [(len(set(x) & set(y)) / len(x)) for x, y in zip(a, b) if x]
    shares.append(f"{100 * sum(layers) / len(layers):.1f}% (layers {min(layers) * 100:.0f}-{max(layers) * 100:.0f}%)")
print(f"| {model} | {qtype.upper()} | {shares[0]} | {shares[1]} |")
PY
  done
done
