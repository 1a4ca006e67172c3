#!/usr/bin/env bash
# `moeslice inspect` and `make-random` for every family, and the bad-input matrix at the command
# line: each defect gives exit code 2, a message naming the file or tensor, and writes nothing.
source "$(dirname "$0")/lib.bash"
PY=python3

FAMILIES="emo olmoe flex_olmo mixtral qwen2_moe qwen3_moe deepseek_v3 glm4_moe gpt_oss"
for family in $FAMILIES; do
  for dtype in f32 bf16; do
    dir="$SCRATCH/$family-$dtype"
    expect_ok -- "$MOESLICE" make-random --family "$family" --dtype "$dtype" --out "$dir" --seed 3
    expect_ok -- "$MOESLICE" inspect --model "$dir"
    json=$("$MOESLICE" inspect --model "$dir" --json)
    got=$($PY -c 'import json,sys; d=json.load(sys.stdin); print(d["family"], d["experts_per_layer"], d["layers"])' <<<"$json")
    [ "$got" = "$family 8 2" ] && pass || fail "inspect --json for $family: $got"
  done
done

# Same seed, same bytes; sharded output with an index that inspect reads.
"$MOESLICE" make-random --family olmoe --out "$SCRATCH/a" --seed 7 >/dev/null
"$MOESLICE" make-random --family olmoe --out "$SCRATCH/b" --seed 7 >/dev/null
cmp -s "$SCRATCH/a/model.safetensors" "$SCRATCH/b/model.safetensors" && pass || fail "make-random is not deterministic"
expect_ok -- "$MOESLICE" make-random --family mixtral --out "$SCRATCH/sharded" --max-shard-size 100KB
[ -f "$SCRATCH/sharded/model.safetensors.index.json" ] && pass || fail "no index for a sharded output"
shards=$("$MOESLICE" inspect --model "$SCRATCH/sharded" --json | $PY -c 'import json,sys; print(len(json.load(sys.stdin)["shards"]))')
[ "$shards" -gt 2 ] && pass || fail "expected several shards, found $shards"

# gpt_oss with MXFP4 experts (--dtype mxfp4: blocks and scales U8, the rest BF16, the released
# quantization_config): inspect reads it, logits computes from the blocks, and it slices.
expect_ok -- "$MOESLICE" make-random --family gpt_oss --dtype mxfp4 --out "$SCRATCH/gpt_oss-mxfp4" --seed 3
$PY - "$SCRATCH/gpt_oss-mxfp4" <<'PYEOF' && pass || fail "make-random --dtype mxfp4: unexpected tensors"
import json, struct, sys
d = sys.argv[1]
raw = open(f"{d}/model.safetensors", "rb").read()
header = json.loads(raw[8:8 + struct.unpack("<Q", raw[:8])[0]])
types = {n: t["dtype"] for n, t in header.items() if n != "__metadata__"}
assert types["model.layers.0.mlp.experts.gate_up_proj_blocks"] == "U8", types
assert types["model.layers.1.mlp.experts.down_proj_scales"] == "U8", types
assert not any(n.endswith(("experts.gate_up_proj", "experts.down_proj")) for n in types), types
assert types["model.layers.0.self_attn.sinks"] == "BF16", types
assert json.load(open(f"{d}/config.json"))["quantization_config"]["quant_method"] == "mxfp4"
PYEOF
expect_ok -- "$MOESLICE" inspect --model "$SCRATCH/gpt_oss-mxfp4"
echo '{"input_ids": [1, 2, 3, 4, 5]}' >"$SCRATCH/five.jsonl"
expect_ok -- "$MOESLICE" logits --model "$SCRATCH/gpt_oss-mxfp4" --corpus "$SCRATCH/five.jsonl" \
  --out "$SCRATCH/gpt_oss-mxfp4.safetensors"
write_plan "$SCRATCH/gpt_oss.plan" "[0,2,4,6]" "[1,3,5,7]"
expect_ok -- "$MOESLICE" slice --model "$SCRATCH/gpt_oss-mxfp4" --plan "$SCRATCH/gpt_oss.plan" \
  --out "$SCRATCH/gpt_oss-mxfp4-sliced"
expect_error 2 "the olmoe family's experts have no MXFP4 form" -- "$MOESLICE" make-random \
  --family olmoe --dtype mxfp4 --out "$SCRATCH/x"

# qwen2_moe dense layers through --set.
"$MOESLICE" make-random --family qwen2_moe --layers 3 --set 'mlp_only_layers=[1]' --out "$SCRATCH/qdense" >/dev/null
layers=$("$MOESLICE" inspect --model "$SCRATCH/qdense" --json | $PY -c 'import json,sys; print(json.load(sys.stdin)["expert_layers"])')
[ "$layers" = "[0, 2]" ] && pass || fail "qwen2_moe mlp_only_layers: expert layers $layers"

# --- make-random refusals ---
expect_error 2 "already exists" -- "$MOESLICE" make-random --family olmoe --out "$SCRATCH/a"
expect_error 2 "unknown family 'nope'.*known: deepseek_v3, emo" -- "$MOESLICE" make-random --family nope --out "$SCRATCH/x"
expect_error 2 "does not exist" -- "$MOESLICE" make-random --family olmoe --out "$SCRATCH/missing/parent"
expect_error 2 "experts per token" -- "$MOESLICE" make-random --family olmoe --experts 4 --top-k 5 --out "$SCRATCH/x"
expect_error 2 "must be a multiple of key/value heads" -- "$MOESLICE" make-random --family olmoe --heads 4 --kv-heads 3 --out "$SCRATCH/x"
expect_error 2 "cannot read size" -- "$MOESLICE" make-random --family olmoe --max-shard-size 5XB --out "$SCRATCH/x"
[ ! -e "$SCRATCH/x" ] && pass || fail "a refused make-random left output behind"
[ -z "$(ls -A "$SCRATCH" | grep '\.tmp-' || true)" ] && pass || fail "temporary directories left behind"

# --- inspect refusals: one broken checkpoint per defect ---
good="$SCRATCH/olmoe-f32"
broken() {  # copy the good checkpoint into $SCRATCH/broken-$1 and echo its path
  local dir="$SCRATCH/broken-$1"
  rm -rf "$dir"; cp -r "$good" "$dir"; echo "$dir"
}
expect_error 2 "model directory .*does-not-exist does not exist" -- "$MOESLICE" inspect --model "$SCRATCH/does-not-exist"

d=$(broken noconfig); rm "$d/config.json"
expect_error 2 "config.json does not exist" -- "$MOESLICE" inspect --model "$d"

d=$(broken badjson); echo '{"model_type": "olmoe",' > "$d/config.json"
expect_error 2 "config.json: not valid JSON" -- "$MOESLICE" inspect --model "$d"

d=$(broken family); $PY - "$d/config.json" <<'PYEOF'
import json, sys; p = sys.argv[1]; c = json.load(open(p)); c["model_type"] = "llama"; json.dump(c, open(p, "w"))
PYEOF
expect_error 2 "config.json: unknown model family \"llama\" \(known: deepseek_v3, emo" -- "$MOESLICE" inspect --model "$d"

d=$(broken missingkey); $PY - "$d/config.json" <<'PYEOF'
import json, sys; p = sys.argv[1]; c = json.load(open(p)); del c["num_experts"]; json.dump(c, open(p, "w"))
PYEOF
expect_error 2 "config.json: missing key 'num_experts'" -- "$MOESLICE" inspect --model "$d"

d=$(broken badkey); $PY - "$d/config.json" <<'PYEOF'
import json, sys; p = sys.argv[1]; c = json.load(open(p)); c["hidden_size"] = "big"; json.dump(c, open(p, "w"))
PYEOF
expect_error 2 "'hidden_size' must be a non-negative integer, found \"big\"" -- "$MOESLICE" inspect --model "$d"

d=$(broken shape); $PY - "$d/config.json" <<'PYEOF'
import json, sys; p = sys.argv[1]; c = json.load(open(p)); c["intermediate_size"] = 48; json.dump(c, open(p, "w"))
PYEOF
expect_error 2 "tensor 'model.layers.0.mlp.experts.0.gate_proj.weight' has shape \[32, 64\], expected \[48, 64\]" -- "$MOESLICE" inspect --model "$d"

d=$(broken missingtensor); $PY - "$d/config.json" <<'PYEOF'
import json, sys; p = sys.argv[1]; c = json.load(open(p)); c["num_experts"] = 9; json.dump(c, open(p, "w"))
PYEOF
expect_error 2 "tensor 'model.layers.0.mlp.gate.weight' has shape \[8, 64\], expected \[9, 64\]" -- "$MOESLICE" inspect --model "$d"

d=$(broken nonested); $PY - "$d/config.json" <<'PYEOF'
import json, sys; p = sys.argv[1]; c = json.load(open(p)); json.dump({"model_type": "some_vlm", "text_config": c}, open(p, "w"))
PYEOF
expect_ok -- "$MOESLICE" inspect --model "$d"

size=$(stat -c %s "$good/model.safetensors")
for cut in 0 4 8 100 $((size / 2)) $((size - 1)); do
  d=$(broken "cut$cut"); truncate -s "$cut" "$d/model.safetensors"
  expect_error 2 "model.safetensors: invalid safetensors file" -- "$MOESLICE" inspect --model "$d"
done
d=$(broken trailing); printf 'x' >> "$d/model.safetensors"
expect_error 2 "trailing bytes" -- "$MOESLICE" inspect --model "$d"
d=$(broken nosafetensors); rm "$d/model.safetensors"
expect_error 2 "holds neither model.safetensors nor model.safetensors.index.json" -- "$MOESLICE" inspect --model "$d"

d="$SCRATCH/broken-shard"; rm -rf "$d"; cp -r "$SCRATCH/sharded" "$d"; rm "$d/model-00002-of-"*.safetensors
expect_error 2 "shard .*model-00002-of-.* is missing" -- "$MOESLICE" inspect --model "$d"

# Inputs are never changed by a refused or successful run.
before=$(cd "$good" && sha256sum * | sha256sum)
"$MOESLICE" inspect --model "$good" >/dev/null
after=$(cd "$good" && sha256sum * | sha256sum)
[ "$before" = "$after" ] && pass || fail "inspect changed its input"

finish
