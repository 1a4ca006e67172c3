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
# glm4moe with YaRN (rope.scaling.*, no mscale: YaRN's default attention factor, as llama.cpp's
# glm4moe computes) reads back as the checkpoint's rope_scaling: the same logits.
"$MOESLICE" make-random --family glm4_moe --layers 2 --vocab 272 --kv-heads 2 --seed 11 \
  --set 'rope_scaling={"type":"yarn","factor":4.0,"original_max_position_embeddings":16,"beta_fast":8,"beta_slow":1}' \
  --out "$S/glm-yarn" >/dev/null || fail "make-random glm-yarn"
convert glm-yarn f32 "$S/glm-yarn"
same_logits glm-yarn-f32-original "$S/glm-yarn" "$S/glm-yarn-f32.gguf"

# The released configs of DeepSeek-V3 (YaRN, 8 routing groups of 4, 4 per token), Kimi K2
# (YaRN) and GLM-4.5-Air (with its multi-token-prediction layer: the GGUF's block_count counts
# it, its tensors, blk.3.nextn.* and a whole layer, are not computed), vocabularies widened to the
# byte vocabulary: logits on the GGUF equal logits on the checkpoint (Kimi K2's GGUF reads back as
# deepseek_v3, so the outputs' recorded model_type differs), and the GGUF sliced by `moeslice
# slice` with the plans of real_configs.sh computes what `logits --keep` computes on the full
# GGUF. GLM's plan, made on the checkpoint, lists its 3 decoder layers: the MTP block holds experts
# too, and llama.cpp has one expert_count, so that plan is refused by name and the slice cuts the
# MTP block's experts like the last layer's (a 4-entry plan), which does not change the logits.
write_plan "$S/deepseek-v3.plan" null null null \
  "[0,3,5,6,8,9,13,14,16,19,21,22,24,27,29,30]" "[1,2,4,7,9,10,12,15,17,18,20,23,25,26,28,31]"
write_plan "$S/kimi-k2.plan" null "[0,1,3,5,8,9,12,14,17,19,20,23]" "[2,4,5,6,7,10,11,13,16,18,21,22]"
write_plan "$S/glm-4.5-air.plan" null "[0,1,2,4,6,7,9,11,12,15]" "[1,3,5,6,8,10,11,13,14,15]"
for name in deepseek-v3 kimi-k2 glm-4.5-air; do
  $PY - "$SRC/tests/data/configs/$name.json" "$S/$name.json" <<'PY'
import json, sys
cfg = json.load(open(sys.argv[1]))
cfg["vocab_size"] = 272
json.dump(cfg, open(sys.argv[2], "w"), indent=2)
PY
  mtp=()
  [ "$name" = glm-4.5-air ] && mtp=(--mtp)
  $PY "$REF/make_tiny.py" --config "$S/$name.json" --out "$S/$name" "${mtp[@]}" >/dev/null || fail "make_tiny $name"
  convert "$name" f32 "$S/$name"
  for m in "$S/$name" "$S/$name-f32.gguf"; do
    "$MOESLICE" logits --model "$m" --corpus "$S/ids.jsonl" --router --threads 2 --out "$m.logits.st" \
      >/dev/null 2>"$S/err" || fail "logits $m: $(cat "$S/err")"
  done
  $PY - "$REF" "$S/$name.logits.st" "$S/$name-f32.gguf.logits.st" <<'PY' && pass || fail "$name: the GGUF's logits differ"
import sys
import torch
sys.path.insert(0, sys.argv[1])
from safetensors_io import load_file
(a, meta_a), (b, meta_b) = load_file(sys.argv[2]), load_file(sys.argv[3])
assert set(a) == set(b) and all(torch.equal(a[n], b[n]) for n in a), "tensors differ"
meta_a.pop("model_type"), meta_b.pop("model_type")
assert meta_a == meta_b, (meta_a, meta_b)
PY
done
expect_error 2 "glm-4.5-air.plan: block 3 keeps 16 experts but block 1 keeps 10" -- \
  "$MOESLICE" slice --model "$S/glm-4.5-air-f32.gguf" --plan "$S/glm-4.5-air.plan" --out "$S/refused.gguf"
[ ! -e "$S/refused.gguf" ] && pass || fail "a refused slice wrote output"
write_plan "$S/glm-4.5-air-blocks.plan" null "[0,1,2,4,6,7,9,11,12,15]" "[1,3,5,6,8,10,11,13,14,15]" \
  "[1,3,5,6,8,10,11,13,14,15]"
for name in deepseek-v3 kimi-k2 glm-4.5-air; do
  gguf=$S/$name-f32.gguf
  blocks_plan=$S/$name.plan
  [ "$name" = glm-4.5-air ] && blocks_plan=$S/glm-4.5-air-blocks.plan
  "$MOESLICE" slice --model "$gguf" --plan "$blocks_plan" --out "$S/$name-sliced.gguf" >/dev/null 2>"$S/err" ||
    fail "slice $gguf: $(cat "$S/err")"
  "$MOESLICE" logits --model "$gguf" --keep "$S/$name.plan" --corpus "$S/ids.jsonl" --threads 2 \
    --out "$S/$name-keep.st" >/dev/null 2>"$S/err" || fail "logits --keep $gguf: $(cat "$S/err")"
  "$MOESLICE" logits --model "$S/$name-sliced.gguf" --corpus "$S/ids.jsonl" --threads 2 \
    --out "$S/$name-sliced.st" >/dev/null 2>"$S/err" || fail "logits $name-sliced.gguf: $(cat "$S/err")"
  $PY - "$REF" "$S/$name-keep.st" "$S/$name-sliced.st" <<'PY' && pass || fail "$name: the sliced GGUF differs from the masked one"
import sys
sys.path.insert(0, sys.argv[1])
from safetensors_io import load_file
keep, sliced = load_file(sys.argv[2])[0], load_file(sys.argv[3])[0]
assert set(keep) == set(sliced), (sorted(keep), sorted(sliced))
for name in keep:
    scale = keep[name].abs().max().item()
    diff = (keep[name].double() - sliced[name].double()).abs().max().item()
    assert diff <= 1e-6 * scale, f"{name}: {diff} (scale {scale})"
PY
done
# What llama.cpp's graph cannot compute is refused by key, nothing written: its expert groups
# need topk_group < n_group.
"$MOESLICE" make-random --family deepseek_v3 --layers 2 --vocab 272 --kv-heads 4 --set topk_group=2 \
  --out "$S/ds-allgroups" >/dev/null || fail "make-random ds-allgroups"
expect_error 2 "ds-allgroups/config.json: 'topk_group' is 2, expected between 1 and n_group - 1 = 1" -- \
  $PY "$REF/hf_to_gguf.py" --gguf-py "$GGUF_PY" --model "$S/ds-allgroups" --out "$S/ds-allgroups.gguf"
[ ! -e "$S/ds-allgroups.gguf" ] && pass || fail "a refused conversion left its output"
# A quantized attn_k_b (rows of qk_nope_head_dim 32: Q8_0) is refused by name: its blocks run
# along the axis kv_b_proj's rows need transposed.
"$MOESLICE" make-random --family deepseek_v3 --layers 2 --vocab 272 --kv-heads 4 --set qk_nope_head_dim=32 \
  --out "$S/ds-nope32" >/dev/null || fail "make-random ds-nope32"
convert ds-nope32 q8_0 "$S/ds-nope32"
expect_error 2 "ds-nope32-q8_0.gguf: tensor 'blk.0.attn_k_b.weight' is Q8_0; moeslice rebuilds kv_b_proj from attn_k_b and attn_v_b stored as F32, F16 or BF16 only" -- \
  "$MOESLICE" logits --model "$S/ds-nope32-q8_0.gguf" --corpus "$S/ids.jsonl" --out "$S/refused-ds.st"
[ ! -e "$S/refused-ds.st" ] && pass || fail "a refused command wrote output"

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
