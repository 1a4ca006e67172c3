#!/usr/bin/env bash
# A sliced model computes exactly what the full model computes with the dropped experts' router
# logits set to -inf (group-limited routing: their choice scores): for every family the forward
# pass supports, by the PyTorch reference and by moeslice (check_sliced_logits.py). Includes an EMO slice with different expert counts per layer
# (num_experts_per_layer), and that slice's refusals.
source "$(dirname "$0")/lib.bash"
require_torch

$PY - "$SCRATCH/corpus.jsonl" <<'PYEOF'
import json, random, sys
random.seed(3)
with open(sys.argv[1], "w") as f:
    for n in (1, 7, 19, 33):
        f.write(json.dumps({"input_ids": [random.randrange(256) for _ in range(n)]}) + "\n")
PYEOF

check() {  # check NAME FULL PLAN [CORPUS]
  check_sliced_model "$1" "$2" "$3" "${4:-$SCRATCH/corpus.jsonl}"
}

for family in emo olmoe flex_olmo mixtral qwen2_moe qwen3_moe; do
  "$MOESLICE" make-random --family "$family" --layers 3 --seed 11 --out "$SCRATCH/$family" >/dev/null
  case $family in
    emo) write_plan "$SCRATCH/$family.plan" "[0,2,5,7]" "[1,3,4,7]" "[2,4,6,7]" ;;  # shared expert 7
    *) write_plan "$SCRATCH/$family.plan" "[0,2,5,6]" "[1,3,4,7]" "[0,1,2,3]" ;;
  esac
  check "$family" "$SCRATCH/$family" "$SCRATCH/$family.plan"
done

# deepseek_v3 (issue 18): group-limited sigmoid routing, 2 groups of 4 experts, each keeping 2 (the
# slice keeps n_group); layer 0 is dense; MLA attention and a shared expert around the experts.
"$MOESLICE" make-random --family deepseek_v3 --layers 3 --seed 11 --out "$SCRATCH/deepseek_v3" >/dev/null
write_plan "$SCRATCH/deepseek_v3.plan" null "[0,2,5,6]" "[1,3,4,7]"
check deepseek_v3 "$SCRATCH/deepseek_v3" "$SCRATCH/deepseek_v3.plan"

# glm4_moe: the same router in 2 groups of 4 (1 group kept per token, 3 experts per token), each
# keeping 2; standard attention with biases, per-head q/k norms and half rotary; layer 0 dense.
$PY "$REF/make_tiny.py" --variant glm4_moe --out "$SCRATCH/glm4_moe" \
  --corpus "$SCRATCH/glm4_moe-corpus.jsonl" >/dev/null  # vocabulary 128
write_plan "$SCRATCH/glm4_moe.plan" null "[0,2,5,6]" "[1,3,4,7]"
check glm4_moe "$SCRATCH/glm4_moe" "$SCRATCH/glm4_moe.plan" "$SCRATCH/glm4_moe-corpus.jsonl"
# glm4_moe with YaRN rope_scaling (partial rotary): the slice keeps rope_scaling as it was and
# computes the restricted full model.
$PY "$REF/make_tiny.py" --variant glm4_moe_yarn --out "$SCRATCH/glm4_moe_yarn" >/dev/null
check glm4_moe_yarn "$SCRATCH/glm4_moe_yarn" "$SCRATCH/glm4_moe.plan" "$SCRATCH/glm4_moe-corpus.jsonl"
expect_ok -- $PY -c '
import json, sys
a, b = (json.load(open(p + "/config.json")) for p in sys.argv[1:])
assert a["rope_scaling"] == b["rope_scaling"] and b["rope_scaling"]["rope_type"] == "yarn", b["rope_scaling"]
' "$SCRATCH/glm4_moe_yarn" "$SCRATCH/glm4_moe_yarn-sliced"

# EMO with per-layer counts: the slice's config lists them and still computes the restricted model.
write_plan "$SCRATCH/emo-nonuniform.plan" "[0,2,5,7]" "[1,3,4,5,6,7]" "[3,7]"
check emo-nonuniform "$SCRATCH/emo" "$SCRATCH/emo-nonuniform.plan"
counts=$($PY -c 'import json,sys; c=json.load(open(sys.argv[1])); print(c["num_experts_per_layer"], c["num_experts"], c["num_experts_per_tok"])' "$SCRATCH/emo-nonuniform-sliced/config.json")
[ "$counts" = "[4, 6, 2] 6 2" ] && pass || fail "nonuniform config: $counts"
grep -q "6 at most, per layer: 4,6,2" <("$MOESLICE" inspect --model "$SCRATCH/emo-nonuniform-sliced") &&
  pass || fail "inspect does not show the per-layer counts"
expect_ok -- "$MOESLICE" unslice --model "$SCRATCH/emo" --sliced "$SCRATCH/emo-nonuniform-sliced" --out "$SCRATCH/emo-unsliced"
expect_ok -- $PY -c '
import sys; sys.path.insert(0, sys.argv[1])
import torch; from safetensors_io import load_checkpoint
a, b = load_checkpoint(sys.argv[2]), load_checkpoint(sys.argv[3])
assert set(a) == set(b) and all(torch.equal(a[n], b[n]) for n in a), "unsliced != source"
' "$REF" "$SCRATCH/emo" "$SCRATCH/emo-unsliced"
# Its profile works; ranking it again or re-slicing it is refused, as is a layer below top-k.
expect_ok -- "$MOESLICE" profile --model "$SCRATCH/emo-nonuniform-sliced" --corpus "$SCRATCH/corpus.jsonl" --out "$SCRATCH/nonuniform-usage.safetensors"
expect_ok -- $PY -c '
import sys; sys.path.insert(0, sys.argv[1])
import json; from safetensors_io import load_file
tensors, meta = load_file(sys.argv[2])
info = json.loads(meta["moeslice_usage"])
assert info["experts_per_layer"] == [4, 6, 2], info
mass, tokens = tensors["mass"], tensors["tokens"].sum().item()
for layer, count in enumerate([4, 6, 2]):
    assert abs(mass[:, layer, :count].sum().item() - 2 * tokens) < 1e-3, layer  # routed + shared
    assert mass[:, layer, count:].abs().sum().item() == 0, layer
' "$REF" "$SCRATCH/nonuniform-usage.safetensors"
expect_error 2 "different expert counts per layer" -- "$MOESLICE" rank --usage "$SCRATCH/nonuniform-usage.safetensors" --keep 2 --out "$SCRATCH/x.json"
expect_error 2 "different expert counts per layer" -- "$MOESLICE" report --usage "$SCRATCH/nonuniform-usage.safetensors" --out "$SCRATCH/x.html"
write_plan "$SCRATCH/small.plan" "[0,3]" "[0,5]" "[0,1]"
expect_error 2 "already keeps different expert counts" -- "$MOESLICE" slice --model "$SCRATCH/emo-nonuniform-sliced" --plan "$SCRATCH/small.plan" --out "$SCRATCH/x"
write_plan "$SCRATCH/below-top-k.plan" "[0,2,5,7]" "[7]" "[3,7]"
expect_error 2 "layer 1 keeps 1 experts, fewer than the 2 experts per token" -- "$MOESLICE" slice --model "$SCRATCH/emo" --plan "$SCRATCH/below-top-k.plan" --out "$SCRATCH/x"
write_plan "$SCRATCH/olmoe-nonuniform.plan" "[0,2,5,7]" "[1,3,4,5,6,7]" "[3,7]"
expect_error 2 "only the emo family's config can list per-layer counts" -- "$MOESLICE" slice --model "$SCRATCH/olmoe" --plan "$SCRATCH/olmoe-nonuniform.plan" --out "$SCRATCH/x"
[ ! -e "$SCRATCH/x" ] && [ ! -e "$SCRATCH/x.json" ] && pass || fail "a refused command left output behind"

finish
