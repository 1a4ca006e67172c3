#!/usr/bin/env bash
# The forward pass on GGUF files (issue 17, part 2): `moeslice logits --model FILE.gguf` equals
# `moeslice logits` on the safetensors checkpoint holding the GGUF's weights (hf_to_gguf.py's
# --dequantized-out: gguf-py's dequantization, mapped back to Hugging Face names and llama's Q/K
# rows unpermuted) bit for bit, logits and routing, for olmoe at F32, F16, Q8_0, Q4_K, Q6_K and
# MXFP4 experts and for qwen3moe, qwen2moe and llama (Mixtral) at F32 and a quantized type; at F32
# that checkpoint is the original one. Also profile on a GGUF, the Q/K permutation's teeth (llama
# without the unpermutation differs) and refusals by name.
# Usage: gguf_forward.sh MOESLICE_BINARY SCRATCH_DIR. Exit 77 (skip) without torch or
# tests/llama/node_modules (gguf-py comes from node-llama-cpp's llama.cpp source).
source "$(dirname "$0")/lib.bash"
require_torch
require_llama_tools
S=$SCRATCH
printf '{"input_ids":[1,5,9,200,33,7,8,100,3,3,41]}\n{"input_ids":[3,4,250,12]}\n{"input_ids":[77]}\n' >"$S/ids.jsonl"

# same_logits NAME HF_DIR GGUF: both runs' outputs (logits and routing) are the same bytes.
same_logits() {
  local name=$1 hf=$2 gguf=$3
  "$MOESLICE" logits --model "$hf" --corpus "$S/ids.jsonl" --out "$S/$name-hf.st" --router --threads 2 >/dev/null ||
    { fail "logits $hf"; return; }
  "$MOESLICE" logits --model "$gguf" --corpus "$S/ids.jsonl" --out "$S/$name-gguf.st" --router --threads 2 >/dev/null 2>"$S/err" ||
    { fail "logits $gguf: $(cat "$S/err")"; return; }
  if cmp -s "$S/$name-hf.st" "$S/$name-gguf.st"; then pass; else fail "$name: the GGUF's logits differ"; fi
}

# convert FAMILY TYPE SOURCE: $S/FAMILY-TYPE.gguf and its dequantized weights $S/FAMILY-TYPE-deq.
convert() {
  $PY "$REF/hf_to_gguf.py" --gguf-py "$GGUF_PY" --model "$3" --out "$S/$1-$2.gguf" --type "$2" \
    --dequantized-out "$S/$1-$2-deq" >/dev/null || fail "hf_to_gguf $1 $2"
}

seed=0
for f in olmoe qwen3_moe qwen2_moe mixtral; do
  seed=$((seed + 1))
  kv=2
  [ "$f" = olmoe ] && kv=4  # llama.cpp's olmoe has no grouped-query attention
  common=(--family "$f" --layers 2 --vocab 272 --kv-heads $kv --seed $seed)
  "$MOESLICE" make-random "${common[@]}" --out "$S/$f" >/dev/null || fail "make-random $f"
  # Rows of 256, so that Q4_K and Q6_K apply to the attention and expert weights.
  "$MOESLICE" make-random "${common[@]}" --hidden 256 --expert-width 256 --out "$S/$f-wide" >/dev/null ||
    fail "make-random $f wide"
  convert "$f" f32 "$S/$f"
  same_logits "$f-f32-original" "$S/$f" "$S/$f-f32.gguf"
  case $f in
    olmoe) types="f16 q8_0 q4_k q6_k mxfp4" ;;
    qwen3_moe) types="q8_0" ;;
    qwen2_moe) types="q4_k" ;;
    mixtral) types="q4_k mxfp4" ;;
  esac
  for t in $types; do
    src=$S/$f
    case $t in q4_k | q6_k) src=$S/$f-wide ;; esac
    convert "$f" "$t" "$src"
    same_logits "$f-$t" "$S/$f-$t-deq" "$S/$f-$t.gguf"
  done
done

# glm4moe and deepseek2 (issue 18's families): sigmoid group routers with exp_probs_b, shared
# experts and a leading dense layer; glm4moe with partial rotary, attention biases and q/k norms,
# deepseek2 with MLA (kv_b_proj split into attn_k_b, each head transposed, and attn_v_b).
for f in glm4_moe deepseek_v3; do
  seed=$((seed + 1))
  common=(--family "$f" --layers 2 --vocab 272 --seed $seed)
  [ "$f" = glm4_moe ] && common+=(--kv-heads 2 --set use_qk_norm=true)
  [ "$f" = deepseek_v3 ] && common+=(--kv-heads 4 --experts 16 --set n_group=4 --set topk_group=2)
  "$MOESLICE" make-random "${common[@]}" --out "$S/$f" >/dev/null || fail "make-random $f"
  "$MOESLICE" make-random "${common[@]}" --hidden 256 --expert-width 256 --out "$S/$f-wide" >/dev/null ||
    fail "make-random $f wide"
  convert "$f" f32 "$S/$f"
  same_logits "$f-f32-original" "$S/$f" "$S/$f-f32.gguf"
  convert "$f" f16 "$S/$f"
  same_logits "$f-f16" "$S/$f-f16-deq" "$S/$f-f16.gguf"
  convert "$f" q4_k "$S/$f-wide"
  same_logits "$f-q4_k" "$S/$f-q4_k-deq" "$S/$f-q4_k.gguf"
done
# GLM-4.5-Air's released config (vocabulary widened to the byte vocabulary) with its
# multi-token-prediction layer: the GGUF's block_count counts it, its tensors (blk.3.nextn.*
# and a whole layer) are not computed, as in the checkpoint.
$PY - "$SRC/tests/data/configs/glm-4.5-air.json" "$S/glm-air.json" <<'PY'
import json, sys
cfg = json.load(open(sys.argv[1]))
cfg["vocab_size"] = 272
json.dump(cfg, open(sys.argv[2], "w"), indent=2)
PY
$PY "$REF/make_tiny.py" --config "$S/glm-air.json" --out "$S/glm-air" --mtp >/dev/null || fail "make_tiny glm-air"
convert glm-air q8_0 "$S/glm-air"
same_logits glm-air-q8_0 "$S/glm-air-q8_0-deq" "$S/glm-air-q8_0.gguf"
convert glm-air f32 "$S/glm-air"
same_logits glm-air-f32 "$S/glm-air" "$S/glm-air-f32.gguf"
# What llama.cpp's graph cannot compute is refused by key, nothing written: its expert groups
# need topk_group < n_group.
"$MOESLICE" make-random --family deepseek_v3 --layers 2 --vocab 272 --kv-heads 4 --set topk_group=2 \
  --out "$S/ds-allgroups" >/dev/null || fail "make-random ds-allgroups"
expect_error 2 "ds-allgroups/config.json: 'topk_group' is 2, expected between 1 and n_group - 1 = 1" -- \
  $PY "$REF/hf_to_gguf.py" --gguf-py "$GGUF_PY" --model "$S/ds-allgroups" --out "$S/ds-allgroups.gguf"
[ ! -e "$S/ds-allgroups.gguf" ] && pass || fail "a refused conversion left its output"

# profile reads a GGUF like its checkpoint: the same usage counts.
for m in "$S/olmoe-q8_0-deq" "$S/olmoe-q8_0.gguf"; do
  "$MOESLICE" profile --model "$m" --corpus "$S/ids.jsonl" --out "$S/usage-$(basename "$m").safetensors" \
    --threads 2 >/dev/null 2>&1 || fail "profile $m"
done
$PY "$SRC/tests/cli/same_usage.py" --ignore sources --ignore model \
  "$S/usage-olmoe-q8_0-deq.safetensors" "$S/usage-olmoe-q8_0.gguf.safetensors" &&
  pass || fail "profile on the Q8_0 GGUF differs from profile on its weights"

# Refusals by name, nothing written: an architecture without a mapping, metadata the spec needs.
$PY - "$S/olmoe-f32.gguf" "$S/bloom.gguf" <<'PY'
import sys
data = open(sys.argv[1], "rb").read()
name = (5).to_bytes(8, "little") + b"olmoe"
open(sys.argv[2], "wb").write(data.replace(name, (5).to_bytes(8, "little") + b"bloom", 1))
PY
expect_error 2 "bloom.gguf: GGUF architecture 'bloom'; moeslice computes GGUF models of the architectures olmoe, qwen2moe, qwen3moe and llama" -- \
  "$MOESLICE" logits --model "$S/bloom.gguf" --corpus "$S/ids.jsonl" --out "$S/refused.st"
$PY "$SRC/tests/cli/make_gguf.py" "$S/bare.gguf" >/dev/null || fail "make_gguf.py"
expect_error 2 "bare.gguf: key 'olmoe.attention.head_count' is missing \(the olmoe forward pass needs it\)" -- \
  "$MOESLICE" logits --model "$S/bare.gguf" --corpus "$S/ids.jsonl" --out "$S/refused.st"
[ ! -e "$S/refused.st" ] && pass || fail "a refused command wrote output"

finish
