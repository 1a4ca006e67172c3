#!/usr/bin/env bash
# Proof in llama.cpp itself: llama.cpp (node-llama-cpp's prebuilt CPU build, tests/llama) computes
# the same next-token distributions from a GGUF as moeslice's forward pass from the safetensors
# checkpoint it was converted from (tests/reference/hf_to_gguf.py, which follows llama.cpp's
# convert_hf_to_gguf.py), for olmoe, qwen3moe, qwen2moe and mixtral (`llama` with experts):
#   - F32 GGUF against `moeslice logits` on the F32 checkpoint;
#   - F16 GGUF against `moeslice logits` on an F16 checkpoint (the same weights);
#   - keep plans of 25% and 50% of the experts: llama.cpp on the GGUF of `moeslice slice`'s output
#     against `moeslice logits --keep PLAN` on the full checkpoint;
#   - Q8_0 and Q6_K GGUFs against `moeslice logits` on their dequantized weights;
#   - and that the comparison has teeth: the full model against a 50% plan is far apart.
# Tolerances are max |log-probability difference| over every position and token (docs/llama-proof.md).
#
# Usage: llama_parity.sh MOESLICE_BINARY SCRATCH_DIR. Exit 77 (skip) without Node.js, the
# node-llama-cpp install of scripts/setup.sh, or torch.
source "$(dirname "$0")/lib.bash"
set +e  # every check reports through fail() and the run goes on to the end
require_torch
TOOLS=$SRC/tests/llama
if ! command -v node >/dev/null || [ ! -d "$TOOLS/node_modules/node-llama-cpp" ]; then
  echo "SKIP: llama.cpp test tools missing (node, $TOOLS/node_modules/node-llama-cpp): run scripts/setup.sh"
  exit 77
fi
if [ "$(node -p 'process.versions.node.split(".")[0]')" -lt 20 ]; then
  echo "SKIP: node-llama-cpp 3.21.1 needs Node.js 20 or later, found $(node --version)"
  exit 77
fi
S=$SCRATCH
# Measured on this machine (2 cores, node-llama-cpp 3.21.1's CPU build): see docs/llama-proof.md.
TOL_F32=2e-5   # max |dlogp|; measured 2.2e-6 .. 3.8e-6
TOL_F16=1e-2   # max |dlogp|; measured 2.0e-3 .. 3.1e-3 (llama.cpp rounds activations to F16)
KL_QUANT=2e-3  # mean KL; measured Q8_0 6e-5 .. 1.3e-4, Q6_K 1.0e-4 .. 7.2e-4 (plans: 0.11 .. 0.25)

GGUF_PY=$("$TOOLS/extract_gguf_py.sh" "$S/llama.cpp") || { echo "extracting gguf-py failed"; exit 1; }

# ---- checkpoints, plans, corpus -------------------------------------------------------------
FAMILIES="olmoe qwen3_moe qwen2_moe mixtral"
VOCAB=272  # the byte vocabulary (259 tokens) and some unused ids
seed=0
for f in $FAMILIES; do
  seed=$((seed + 1))
  kv=2
  [ "$f" = olmoe ] && kv=4  # llama.cpp's olmoe has no grouped-query attention
  common=(--family "$f" --layers 2 --vocab $VOCAB --kv-heads $kv --seed $seed)
  "$MOESLICE" make-random "${common[@]}" --out "$S/$f" >/dev/null || fail "make-random $f"
  "$MOESLICE" make-random "${common[@]}" --dtype f16 --out "$S/$f-f16" >/dev/null || fail "make-random $f f16"
  # Rows of 256 so that Q6_K applies to the attention and expert weights.
  "$MOESLICE" make-random "${common[@]}" --hidden 256 --expert-width 256 --out "$S/$f-wide" >/dev/null ||
    fail "make-random $f wide"
  write_plan "$S/$f-keep25.json" "[1,6]" "[0,3]"
  write_plan "$S/$f-keep50.json" "[0,2,5,7]" "[1,3,4,6]"
  for keep in keep25 keep50; do
    "$MOESLICE" slice --model "$S/$f" --plan "$S/$f-$keep.json" --out "$S/$f-$keep" >/dev/null 2>&1 ||
      fail "moeslice slice $f $keep"
  done
done
$PY - "$S/corpus.jsonl" $VOCAB <<'EOF'
import json, random, sys
rng = random.Random(16)
with open(sys.argv[1], "w") as f:
    for n in (1, 9, 30, 64):
        f.write(json.dumps({"input_ids": [rng.randrange(int(sys.argv[2])) for _ in range(n)]}) + "\n")
EOF

# ---- conversions (one Python process) -------------------------------------------------------
: >"$S/convert_jobs"
convert() {  # convert NAME MODEL_DIR TYPE [--dequantized-out DIR]
  echo "--gguf-py $GGUF_PY --model $2 --out $S/$1.gguf --type $3 ${4:-} ${5:-}" >>"$S/convert_jobs"
}
for f in $FAMILIES; do
  convert "$f-f32" "$S/$f" f32
  convert "$f-f16" "$S/$f-f16" f16
  convert "$f-keep25" "$S/$f-keep25" f32
  convert "$f-keep50" "$S/$f-keep50" f32
  convert "$f-q8_0" "$S/$f" q8_0 --dequantized-out "$S/$f-q8_0-weights"
  convert "$f-q6_k" "$S/$f-wide" q6_k --dequantized-out "$S/$f-q6_k-weights"
done
REF_DIR=$REF $PY - "$S/convert_jobs" <<'EOF' || fail "conversion to GGUF"
import os, sys
sys.path.insert(0, os.environ["REF_DIR"])
import hf_to_gguf
sys.exit(max(hf_to_gguf.main(line.split()) for line in open(sys.argv[1])))
EOF
[ $? -eq 0 ] && pass
# What llama.cpp's graph cannot compute is refused by key: its olmoe has no grouped-query attention.
"$MOESLICE" make-random --family olmoe --layers 1 --vocab $VOCAB --out "$S/olmoe-gqa" >/dev/null
expect_error 2 "olmoe-gqa/config.json: 'num_key_value_heads' is 2, expected 4" -- \
  $PY "$REF/hf_to_gguf.py" --gguf-py "$GGUF_PY" --model "$S/olmoe-gqa" --out "$S/olmoe-gqa.gguf"
[ ! -e "$S/olmoe-gqa.gguf" ] && pass || fail "a refused conversion left its output"

# ---- llama.cpp (one node process) and moeslice ----------------------------------------------
jobs=()
for f in $FAMILIES; do
  for v in f32 f16 keep25 keep50 q8_0 q6_k; do
    jobs+=(--model "$S/$f-$v.gguf" --out "$S/$f-$v.llama.json")
  done
done
node "$TOOLS/next_token.mjs" --corpus "$S/corpus.jsonl" --threads 2 "${jobs[@]}" && pass || fail "llama.cpp run"
# A file llama.cpp refuses: next_token.mjs exits 1 and shows llama.cpp's reason, not only
# node-llama-cpp's bare "Failed to load model".
head -c 100000 "$S/olmoe-f32.gguf" >"$S/truncated.gguf"
expect_error 1 "llama.cpp \[error\].*data is not within the file bounds" -- \
  node "$TOOLS/next_token.mjs" --corpus "$S/corpus.jsonl" --model "$S/truncated.gguf" --out "$S/truncated.json"

logits() {  # logits NAME MODEL_DIR [flags]
  local name=$1 model=$2
  shift 2
  "$MOESLICE" logits --model "$model" --corpus "$S/corpus.jsonl" --threads 2 \
    --out "$S/$name.moeslice.safetensors" "$@" >"$S/$name.log" 2>&1 ||
    fail "moeslice logits $name: $(cat "$S/$name.log")"
}
for f in $FAMILIES; do
  logits "$f-f32" "$S/$f"
  logits "$f-f16" "$S/$f-f16"
  logits "$f-keep25" "$S/$f" --keep "$S/$f-keep25.json"
  logits "$f-keep50" "$S/$f" --keep "$S/$f-keep50.json"
  logits "$f-q8_0" "$S/$f-q8_0-weights"
  logits "$f-q6_k" "$S/$f-q6_k-weights"
done

# ---- comparisons (one Python process) -------------------------------------------------------
: >"$S/compare_jobs"
for f in $FAMILIES; do
  for v in f32:--tolerance=$TOL_F32 f16:--tolerance=$TOL_F16 keep25:--tolerance=$TOL_F32 \
           keep50:--tolerance=$TOL_F32 q8_0:--max-kl=$KL_QUANT q6_k:--max-kl=$KL_QUANT; do
    name=$f-${v%%:*}
    echo "--llama $S/$name.llama.json --moeslice $S/$name.moeslice.safetensors ${v#*:} --label $name" \
      >>"$S/compare_jobs"
  done
done
TOOLS=$TOOLS TOL_F16=$TOL_F16 KL_QUANT=$KL_QUANT $PY - "$S" <<'EOF' || fail "llama.cpp and moeslice disagree (FAIL lines above)"
import os, sys
sys.path.insert(0, os.environ["TOOLS"])
import compare_logprobs
S = sys.argv[1]
bad = sum(compare_logprobs.main(line.split()) != 0 for line in open(os.path.join(S, "compare_jobs")))
# Teeth: llama.cpp on each full model against moeslice with half the experts dropped is far
# beyond every tolerance above.
for family in ("olmoe", "qwen3_moe", "qwen2_moe", "mixtral"):
    worst, _, kl = compare_logprobs.measure(os.path.join(S, f"{family}-f32.llama.json"),
                                            os.path.join(S, f"{family}-keep50.moeslice.safetensors"))
    mean_kl = sum(kl) / len(kl)
    print(f"control {family} (full model against a 50% plan): max |dlogp| {worst:.3g}, mean KL {mean_kl:.3g}")
    if worst < 10 * float(os.environ["TOL_F16"]) or mean_kl < 10 * float(os.environ["KL_QUANT"]):
        print(f"FAIL control {family}: the comparison does not tell a 50% plan from the full model")
        bad += 1
sys.exit(1 if bad else 0)
EOF
[ $? -eq 0 ] && pass

finish
