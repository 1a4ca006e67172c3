#!/usr/bin/env bash
# `moeslice slice` and `unslice` for every family: kept tensors byte-identical, router rows cut,
# config rewritten, the built-in verification passing, unslice restoring the source exactly;
# and the refusals (non-uniform plan, bad ids, EMO shared expert dropped, unbalanced DeepSeek
# groups, output inside the input, existing output).
source "$(dirname "$0")/lib.bash"
require_torch
CHECK="$(dirname "$0")/check_slice.py"


for family in emo olmoe flex_olmo mixtral qwen2_moe qwen3_moe deepseek_v3 glm4_moe gpt_oss; do
  for dtype in f32 bf16; do
    src="$SCRATCH/$family-$dtype"
    extra=()
    case $family in deepseek_v3 | glm4_moe) extra=(--layers 3) ;; esac  # layer 0 is dense
    "$MOESLICE" make-random --family "$family" --dtype "$dtype" --seed 5 --out "$src" "${extra[@]}" >/dev/null
    case $family in
      emo) write_plan "$SCRATCH/$family.plan" "[0,2,5,7]" "[1,3,4,7]" ;;  # shared expert 7 kept
      deepseek_v3 | glm4_moe) write_plan "$SCRATCH/$family.plan" null "[0,2,5,7]" "[1,3,4,6]" ;;  # 2 per group
      *) write_plan "$SCRATCH/$family.plan" "[0,2,5,6]" "[1,3,4,7]" ;;
    esac
    expect_ok -- "$MOESLICE" slice --model "$src" --plan "$SCRATCH/$family.plan" --out "$SCRATCH/$family-$dtype-sliced"
    expect_ok -- "$MOESLICE" inspect --model "$SCRATCH/$family-$dtype-sliced"
    expect_ok -- "$MOESLICE" unslice --model "$src" --sliced "$SCRATCH/$family-$dtype-sliced" --out "$SCRATCH/$family-$dtype-unsliced"
    expect_ok -- $PY "$CHECK" "$src" "$SCRATCH/$family-$dtype-sliced" "$SCRATCH/$family.plan" "$SCRATCH/$family-$dtype-unsliced"
  done
done

# Sharded in, sharded out, with a correct index.
"$MOESLICE" make-random --family olmoe --seed 2 --max-shard-size 100KB --out "$SCRATCH/sharded" >/dev/null
expect_ok -- "$MOESLICE" slice --model "$SCRATCH/sharded" --plan "$SCRATCH/olmoe.plan" --max-shard-size 100KB --out "$SCRATCH/sharded-sliced"
[ -f "$SCRATCH/sharded-sliced/model.safetensors.index.json" ] && pass || fail "sharded slice has no index"
expect_ok -- $PY "$CHECK" "$SCRATCH/sharded" "$SCRATCH/sharded-sliced" "$SCRATCH/olmoe.plan"

# Side files travel with the slice.
echo '{"bos_token_id": 1}' > "$SCRATCH/olmoe-f32/generation_config.json"
"$MOESLICE" slice --model "$SCRATCH/olmoe-f32" --plan "$SCRATCH/olmoe.plan" --out "$SCRATCH/side" >/dev/null
cmp -s "$SCRATCH/olmoe-f32/generation_config.json" "$SCRATCH/side/generation_config.json" && pass || fail "generation_config.json not copied"

# Refusals: exit 2, message, nothing written.
src="$SCRATCH/olmoe-f32"
write_plan "$SCRATCH/nonuniform.plan" "[0,1,2]" "[0,1,2,3]"
expect_error 2 "layer 1 keeps 4 experts but earlier layers keep 3" -- "$MOESLICE" slice --model "$src" --plan "$SCRATCH/nonuniform.plan" --out "$SCRATCH/x"
write_plan "$SCRATCH/short.plan" "[0,1]"
expect_error 2 "one entry per layer \(2\), found 1 entries" -- "$MOESLICE" slice --model "$src" --plan "$SCRATCH/short.plan" --out "$SCRATCH/x"
write_plan "$SCRATCH/range.plan" "[0,8]" "[0,1]"
expect_error 2 "layer 0: expert id 8 is out of range \[0, 8\)" -- "$MOESLICE" slice --model "$src" --plan "$SCRATCH/range.plan" --out "$SCRATCH/x"
write_plan "$SCRATCH/order.plan" "[1,0]" "[0,1]"
expect_error 2 "strictly ascending" -- "$MOESLICE" slice --model "$src" --plan "$SCRATCH/order.plan" --out "$SCRATCH/x"
echo '{"experts_kept_per_layer": ' > "$SCRATCH/broken.plan"
expect_error 2 "broken.plan: not valid JSON" -- "$MOESLICE" slice --model "$src" --plan "$SCRATCH/broken.plan" --out "$SCRATCH/x"
write_plan "$SCRATCH/emo-noshared.plan" "[0,1,2,3]" "[0,1,2,3]"
expect_error 2 "drops shared expert 7" -- "$MOESLICE" slice --model "$SCRATCH/emo-f32" --plan "$SCRATCH/emo-noshared.plan" --out "$SCRATCH/x"
write_plan "$SCRATCH/ds-unbalanced.plan" null "[0,1,2,4]" "[0,1,2,4]"
expect_error 2 "needs the same number in every group" -- "$MOESLICE" slice --model "$SCRATCH/deepseek_v3-f32" --plan "$SCRATCH/ds-unbalanced.plan" --out "$SCRATCH/x"
expect_error 2 "overlaps the input" -- "$MOESLICE" slice --model "$src" --plan "$SCRATCH/olmoe.plan" --out "$src/inside"
expect_error 2 "already exists" -- "$MOESLICE" slice --model "$src" --plan "$SCRATCH/olmoe.plan" --out "$SCRATCH/olmoe-f32-sliced"
expect_error 2 "pruning_metadata.json does not exist" -- "$MOESLICE" unslice --model "$src" --sliced "$src" --out "$SCRATCH/x"
[ ! -e "$SCRATCH/x" ] && pass || fail "a refused command left output behind"
[ ! -e "$src/inside" ] && pass || fail "wrote inside the input"

finish
