#!/usr/bin/env bash
# Multi-token-prediction layers (issue 18): DeepSeek-V3's and GLM-4.5-Air's released configs
# (tests/data/configs, num_nextn_predict_layers 1) with the MTP layer their checkpoints ship
# (make_tiny.py --mtp: layer num_hidden_layers, a decoder layer plus enorm, hnorm, eh_proj,
# shared_head, embed_tokens). The checkpoint opens; inspect reports the layer; logits ignore it as
# transformers does (parity with the reference, which drops those weights); slice drops it, says
# so and writes num_nextn_predict_layers 0, and the slice computes the masked full model; unslice
# gives the source back byte for byte; a tensor past the MTP layers is still refused.
#
# Usage: mtp_layer.sh MOESLICE_BINARY SCRATCH_DIR. Exit 77 (skip) without torch.
source "$(dirname "$0")/lib.bash"
export REF
require_torch

for case in "deepseek_v3 deepseek-v3 5 32 4" "glm4_moe glm-4.5-air 3 8 8"; do
  read -r name config layers experts per_group <<<"$case"
  m="$SCRATCH/$name"
  $PY "$REF/make_tiny.py" --config "$SRC/tests/data/configs/$config.json" --mtp --out "$m" \
    --corpus "$SCRATCH/corpus.jsonl" >/dev/null
  # Keep the first half of every group (group-balanced) in each MoE layer.
  $PY - "$m" "$SCRATCH/$name.plan" <<'PYEOF'
import json, sys
c = json.load(open(f"{sys.argv[1]}/config.json"))
E, groups = c["n_routed_experts"], c.get("n_group") or 1
per = E // groups
plan = [None if i < c.get("first_k_dense_replace", 0) else
        [e for e in range(E) if e % per < per // 2] for i in range(c["num_hidden_layers"])]
json.dump({"experts_kept_per_layer": plan}, open(sys.argv[2], "w"))
PYEOF
  grep -Eq "MTP layers +1 \(layer $layers: [0-9]+ tensors" <("$MOESLICE" inspect --model "$m") &&
    pass || fail "$name: inspect does not report the MTP layer"
  [ "$("$MOESLICE" inspect --model "$m" --json | $PY -c 'import json,sys; print(json.load(sys.stdin)["mtp_layers"])')" = 1 ] &&
    pass || fail "$name: inspect --json mtp_layers"

  expect_ok -- "$MOESLICE" logits --model "$m" --corpus "$SCRATCH/corpus.jsonl" --router \
    --out "$SCRATCH/got_$name.safetensors"
  expect_ok -- $PY "$REF/reference_forward.py" --model "$m" --corpus "$SCRATCH/corpus.jsonl" \
    --out "$SCRATCH/ref_$name.safetensors" --dtype float64
  expect_ok -- $PY "$REF/compare_outputs.py" --ref "$SCRATCH/ref_$name.safetensors" \
    --got "$SCRATCH/got_$name.safetensors" --label "$name with an MTP layer"

  out=$("$MOESLICE" slice --model "$m" --plan "$SCRATCH/$name.plan" --out "$m-sliced")
  grep -q "dropped the multi-token-prediction layer(s) (1 layer(s), [0-9]* tensors): the slice says num_nextn_predict_layers 0" <<<"$out" &&
    pass || fail "$name: slice summary: $out"
  expect_ok -- $PY - "$m-sliced" "$layers" <<'PYEOF'
import json, sys
d, layers = sys.argv[1], int(sys.argv[2])
assert json.load(open(f"{d}/config.json"))["num_nextn_predict_layers"] == 0
index = json.load(open(f"{d}/model.safetensors.index.json"))["weight_map"] if \
    __import__("os").path.exists(f"{d}/model.safetensors.index.json") else None
sys.path.insert(0, __import__("os").environ["REF"])
import safetensors_io
names = index or safetensors_io.load_checkpoint(d)
assert not [n for n in names if n.startswith(f"model.layers.{layers}.")], "MTP tensors in the slice"
PYEOF
  rm -rf "$m-sliced"
  check_sliced_model "$name" "$m" "$SCRATCH/$name.plan" "$SCRATCH/corpus.jsonl"
  expect_ok -- "$MOESLICE" unslice --model "$m" --sliced "$m-sliced" --out "$m-unsliced"
  expect_ok -- $PY -c '
import sys; sys.path.insert(0, sys.argv[1])
import torch; from safetensors_io import load_checkpoint
a, b = load_checkpoint(sys.argv[2]), load_checkpoint(sys.argv[3])
assert set(a) == set(b) and all(torch.equal(a[n], b[n]) for n in a), "unsliced != source"
' "$REF" "$m" "$m-unsliced"
done

# A layer past the MTP layers is still refused, and so is the MTP layer when the config says 0.
with_config() {  # with_config NAME KEY VALUE: a copy of the deepseek_v3 model with KEY set to VALUE
  cp -r "$SCRATCH/deepseek_v3" "$SCRATCH/$1"
  $PY -c 'import json, sys; c = json.load(open(sys.argv[1])); c[sys.argv[2]] = int(sys.argv[3]); json.dump(c, open(sys.argv[1], "w"))' \
    "$SCRATCH/$1/config.json" "$2" "$3"
}
with_config no-mtp num_nextn_predict_layers 0
expect_error 2 "tensor 'model.layers.5\..*' belongs to layer 5, but .*config.json describes 5 layers \(0 to 4\); tensors the config does not describe are refused" -- \
  "$MOESLICE" inspect --model "$SCRATCH/no-mtp"
with_config short num_hidden_layers 4
expect_error 2 "belongs to layer 5, but .*config.json describes 4 layers \(0 to 3\) and 1 multi-token-prediction layer\(s\)" -- \
  "$MOESLICE" inspect --model "$SCRATCH/short"

finish
