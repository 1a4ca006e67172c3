#!/usr/bin/env bash
# Block-scaled FP8 safetensors in the forward pass (issues 17 and 18): make-random --dtype fp8
# writes the Linear weights as F8_E4M3 with `_scale_inv` block scales (amax / 448, the rest BF16,
# quantization_config as DeepSeek-V3's), for deepseek_v3 (128x128 blocks and 16x16 blocks, so that
# a matrix has several blocks and partial ones) and glm4_moe. logits --router equals the float64
# reference run on the dequantized weights (e4m3 x scale) to 1e-5 with the same experts; profile
# runs; a slice keeps every kept weight's `_scale_inv`, passes its own check and computes the
# masked full model exactly. Refusals: another quant_method, F8 weights without
# quantization_config, scales of the wrong shape.
#
# Usage: fp8_forward.sh MOESLICE_BINARY SCRATCH_DIR. Exit 77 (skip) without torch.
source "$(dirname "$0")/lib.bash"
require_torch

$PY - "$SCRATCH/corpus.jsonl" <<'PYEOF'
import json, random, sys
random.seed(5)
with open(sys.argv[1], "w") as f:
    for n in (1, 9, 30):
        f.write(json.dumps({"input_ids": [random.randrange(256) for _ in range(n)]}) + "\n")
PYEOF
C=$SCRATCH/corpus.jsonl
BLOCK16='quantization_config={"quant_method": "fp8", "fmt": "e4m3", "weight_block_size": [16, 16]}'

"$MOESLICE" make-random --family deepseek_v3 --dtype fp8 --layers 3 --seed 3 --out "$SCRATCH/ds" >/dev/null
"$MOESLICE" make-random --family deepseek_v3 --dtype fp8 --layers 3 --seed 4 --set "$BLOCK16" \
  --set 'q_lora_rank=null' --out "$SCRATCH/ds16" >/dev/null
"$MOESLICE" make-random --family glm4_moe --dtype fp8 --layers 3 --seed 5 --set "$BLOCK16" \
  --out "$SCRATCH/glm" >/dev/null

# The files: F8_E4M3 weights beside F32 scales of the block grid; routers, norms, embeddings BF16.
expect_ok -- $PY - "$SCRATCH/ds" "$SCRATCH/ds16" "$SCRATCH/glm" <<'PYEOF'
import json, struct, sys
for d in sys.argv[1:]:
    cfg = json.load(open(f"{d}/config.json"))
    br, bc = cfg["quantization_config"]["weight_block_size"]
    raw = open(f"{d}/model.safetensors", "rb").read()
    header = json.loads(raw[8:8 + struct.unpack("<Q", raw[:8])[0]])
    header.pop("__metadata__", None)
    fp8 = [n for n, t in header.items() if t["dtype"] == "F8_E4M3"]
    assert fp8 and any(".experts." in n for n in fp8), d
    for n in fp8:
        rows, cols = header[n]["shape"]
        s = header[n + "_scale_inv"]
        assert s["dtype"] == "F32" and s["shape"] == [-(-rows // br), -(-cols // bc)], (n, s)
    for n, t in header.items():
        if n not in fp8 and not n.endswith("_scale_inv"):
            assert t["dtype"] == "BF16", (n, t["dtype"])
    assert header["model.layers.1.mlp.gate.weight"]["dtype"] == "BF16"
PYEOF

# Parity with the float64 reference on the dequantized weights.
for m in ds ds16 glm; do
  expect_ok -- "$MOESLICE" logits --model "$SCRATCH/$m" --corpus "$C" --router --threads 2 \
    --out "$SCRATCH/got_$m.safetensors"
  expect_ok -- $PY "$REF/reference_forward.py" --model "$SCRATCH/$m" --corpus "$C" \
    --out "$SCRATCH/ref_$m.safetensors" --dtype float64
  expect_ok -- $PY "$REF/compare_outputs.py" --ref "$SCRATCH/ref_$m.safetensors" \
    --got "$SCRATCH/got_$m.safetensors" --label "fp8 $m"
done
expect_ok -- "$MOESLICE" logits --model "$SCRATCH/ds16" --corpus "$C" --compute bf16 \
  --out "$SCRATCH/bf16.safetensors"
expect_ok -- "$MOESLICE" profile --model "$SCRATCH/ds16" --corpus "$C" --out "$SCRATCH/usage.safetensors"

# Slices keep the scales of what they keep and compute the masked full model.
write_plan "$SCRATCH/ds.plan" null "[0,2,5,6]" "[1,3,4,7]"
check_sliced_model ds16 "$SCRATCH/ds16" "$SCRATCH/ds.plan" "$C"
check_sliced_model glm "$SCRATCH/glm" "$SCRATCH/ds.plan" "$C"
expect_ok -- $PY - "$SCRATCH/ds16-sliced" <<'PYEOF'
import json, struct, sys
raw = open(f"{sys.argv[1]}/model.safetensors", "rb").read()
header = json.loads(raw[8:8 + struct.unpack("<Q", raw[:8])[0]])
for layer in (1, 2):
    for e in range(4):
        assert f"model.layers.{layer}.mlp.experts.{e}.up_proj.weight_scale_inv" in header
    assert f"model.layers.{layer}.mlp.experts.4.up_proj.weight" not in header
    assert f"model.layers.{layer}.mlp.experts.4.up_proj.weight_scale_inv" not in header
assert "model.layers.0.self_attn.kv_a_proj_with_mqa.weight_scale_inv" in header
PYEOF

# Refusals name config.json, the key and the value, or the tensor.
with_quantization() {  # with_quantization NAME JSON: a copy of ds16 whose quantization_config is JSON
  cp -r "$SCRATCH/ds16" "$SCRATCH/$1"
  $PY - "$SCRATCH/$1/config.json" "$2" <<'PYEOF'
import json, sys
c = json.load(open(sys.argv[1]))
c["quantization_config"] = json.loads(sys.argv[2])
if c["quantization_config"] is None:
    del c["quantization_config"]
json.dump(c, open(sys.argv[1], "w"))
PYEOF
}
with_quantization awq '{"quant_method": "awq", "bits": 4}'
expect_error 2 "awq/config.json: 'quantization_config.quant_method' is \"awq\"; the forward pass computes unquantized weights, block-scaled FP8" -- \
  "$MOESLICE" logits --model "$SCRATCH/awq" --corpus "$C" --out "$SCRATCH/x.safetensors"
with_quantization noconfig null
expect_error 2 "tensor 'model.layers.0.self_attn.q_proj.weight' is F8_E4M3 but config.json has no quantization_config" -- \
  "$MOESLICE" logits --model "$SCRATCH/noconfig" --corpus "$C" --out "$SCRATCH/x.safetensors"
with_quantization block32 '{"quant_method": "fp8", "weight_block_size": [32, 32]}'
expect_error 2 "tensor 'model.layers.0.self_attn.q_proj.weight_scale_inv' has shape \[6, 4\]; the block scales of 'model.layers.0.self_attn.q_proj.weight' \[96, 64\] in blocks of 32x32 \(quantization_config.weight_block_size\) are \[3, 2\]" -- \
  "$MOESLICE" logits --model "$SCRATCH/block32" --corpus "$C" --out "$SCRATCH/x.safetensors"
expect_error 2 "--dtype fp8 writes block-scaled FP8 weights, but the config's quantization_config is" -- \
  "$MOESLICE" make-random --family olmoe --dtype fp8 --set 'quantization_config={"quant_method": "gptq"}' --out "$SCRATCH/x"
[ ! -e "$SCRATCH/x" ] && [ ! -e "$SCRATCH/x.safetensors" ] && pass || fail "a refused command left output behind"

finish
