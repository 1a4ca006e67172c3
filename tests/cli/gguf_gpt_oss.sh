#!/usr/bin/env bash
# gpt-oss in GGUF (issue 19): tests/reference/hf_to_gguf.py converts gpt_oss checkpoints the way
# llama.cpp's converter does (gate/up de-interleaved into ffn_gate_exps / ffn_up_exps and their
# biases, MXFP4 experts repacked into ggml's blocks, attn_sinks, the sliding-window and YaRN
# keys), and `moeslice logits --router` on the GGUF equals, byte for byte:
#   - the F32 checkpoint it came from (plain experts, no RoPE scaling);
#   - the BF16 checkpoint with MXFP4 experts as released (the GGUF keeps the MXFP4 bytes,
#     repacked; the other weights F32 of the same values);
#   - for --type mxfp4 (experts quantized by gguf-py) the checkpoint of the GGUF's weights;
#   - gpt-oss-20b's released config shrunk (tests/data/configs; vocabulary 272 for the GGUF's byte
#     vocabulary), MXFP4 experts, YaRN, documents longer than the 128-token window: the GGUF's
#     YaRN floors and ceils the correction range as llama.cpp does (its converter drops
#     transformers' `truncate: false`), so it equals the source with `truncate: true` exactly and
#     differs from the source as released (max |dlogit| 0.76 with these 16-wide heads).
# Also: profile on the GGUF gives the usage of the checkpoint, a GGUF slice computes `logits --keep`
# on the full GGUF exactly, and refusals name the key or tensor.
# Usage: gguf_gpt_oss.sh MOESLICE_BINARY SCRATCH_DIR. Exit 77 (skip) without torch or
# tests/llama/node_modules (gguf-py comes from node-llama-cpp's llama.cpp source).
source "$(dirname "$0")/lib.bash"
require_torch
require_llama_tools
S=$SCRATCH
printf '{"input_ids":[1,5,9,200,33,7,8,100,3,3,41]}\n{"input_ids":[3,4,250,12]}\n{"input_ids":[77]}\n' >"$S/ids.jsonl"
$PY - "$S/long.jsonl" <<'PYEOF'
import json, random, sys
rng = random.Random(19)
with open(sys.argv[1], "w") as f:
    for n, length in enumerate((3, 40, 150, 200)):
        f.write(json.dumps({"input_ids": [rng.randrange(272) for _ in range(length)]}) + "\n")
PYEOF

# logits NAME MODEL CORPUS [flags]: $S/NAME.st
logits() {
  local name=$1 model=$2 corpus=$3
  shift 3
  "$MOESLICE" logits --model "$model" --corpus "$corpus" --out "$S/$name.st" --router --threads 2 "$@" \
    >/dev/null 2>"$S/$name.err" || fail "logits $model: $(cat "$S/$name.err")"
}
# same_logits A B: the two runs' outputs (logits and routing) are the same bytes.
same_logits() {
  if cmp -s "$S/$1.st" "$S/$2.st"; then pass; else fail "$1 and $2: the logits differ"; fi
}
# convert NAME SOURCE TYPE: $S/NAME.gguf and its dequantized weights $S/NAME-deq.
convert() {
  $PY "$REF/hf_to_gguf.py" --gguf-py "$GGUF_PY" --model "$2" --out "$S/$1.gguf" --type "$3" \
    --dequantized-out "$S/$1-deq" >/dev/null || fail "hf_to_gguf $1"
}

common=(--family gpt_oss --layers 2 --vocab 272 --kv-heads 2)
expect_ok -- "$MOESLICE" make-random "${common[@]}" --seed 1 --out "$S/plain"
expect_ok -- "$MOESLICE" make-random "${common[@]}" --seed 2 --dtype mxfp4 --out "$S/mxfp4"
convert plain "$S/plain" f32
convert mxfp4 "$S/mxfp4" f32
convert quantized "$S/plain" mxfp4
for m in plain mxfp4; do
  logits "$m" "$S/$m" "$S/ids.jsonl"
  logits "$m-gguf" "$S/$m.gguf" "$S/ids.jsonl"
  same_logits "$m" "$m-gguf"
done
logits quantized-deq "$S/quantized-deq" "$S/ids.jsonl"
logits quantized-gguf "$S/quantized.gguf" "$S/ids.jsonl"
same_logits quantized-deq quantized-gguf

# The layout is llama.cpp's: names, types and shapes (ggml ne) of layer 0, the MXFP4 bytes repacked.
$PY - "$GGUF_PY" "$S/mxfp4.gguf" "$S/mxfp4" "$REF" <<'PYEOF' && pass || fail "the MXFP4 GGUF's layout"
import sys
sys.path[:0] = [sys.argv[1], sys.argv[4]]
import gguf, numpy as np
from safetensors_io import load_checkpoint
t = {x.name: x for x in gguf.GGUFReader(sys.argv[2]).tensors}
q = gguf.GGMLQuantizationType
want = {"blk.0.ffn_gate_exps.weight": (q.MXFP4, [64, 32, 8]), "blk.0.ffn_up_exps.weight": (q.MXFP4, [64, 32, 8]),
        "blk.0.ffn_down_exps.weight": (q.MXFP4, [32, 64, 8]), "blk.0.ffn_gate_exps.bias": (q.F32, [32, 8]),
        "blk.0.ffn_up_exps.bias": (q.F32, [32, 8]), "blk.0.ffn_down_exps.bias": (q.F32, [64, 8]),
        "blk.0.attn_sinks.weight": (q.F32, [4]), "blk.0.post_attention_norm.weight": (q.F32, [64]),
        "blk.0.ffn_gate_inp.weight": (q.F32, [64, 8]), "blk.0.ffn_gate_inp.bias": (q.F32, [8])}
for name, (kind, shape) in want.items():
    assert t[name].tensor_type == kind and [int(n) for n in t[name].shape] == shape, (name, t[name].tensor_type, t[name].shape)
# gpt-oss's MXFP4 and ggml's decode to the same values (up to the sign of zero).
src = load_checkpoint(sys.argv[3])
blocks = src["model.layers.0.mlp.experts.gate_up_proj_blocks"].numpy()[:, 1::2]
scales = src["model.layers.0.mlp.experts.gate_up_proj_scales"].numpy()[:, 1::2].astype(np.float64)
lut = np.array([0, .5, 1, 1.5, 2, 3, 4, 6, 0, -.5, -1, -1.5, -2, -3, -4, -6])
vals = np.stack([lut[blocks & 15], lut[blocks >> 4]], -1).reshape(*blocks.shape[:-1], 32) * 2.0 ** (scales - 127)[..., None]
up = gguf.quants.dequantize(t["blk.0.ffn_up_exps.weight"].data, q.MXFP4).reshape(8, 32, 64)
assert np.array_equal(vals.reshape(8, 32, 64), up.astype(np.float64))
PYEOF

# gpt-oss-20b's released config, shrunk (MXFP4 experts, BF16 rest, YaRN, 128-token window).
$PY - "$SRC/tests/data/configs/gpt-oss-20b.json" "$S/20b.json" <<'PYEOF'
import json, sys
c = json.load(open(sys.argv[1]))
c["vocab_size"] = 272
json.dump(c, open(sys.argv[2], "w"), indent=2)
PYEOF
$PY "$REF/make_tiny.py" --config "$S/20b.json" --out "$S/20b" --dtype BF16 --mxfp4 >/dev/null || fail "make_tiny 20b"
convert 20b "$S/20b" f32
mkdir -p "$S/20b-truncate"
ln -s "$S/20b/model.safetensors" "$S/20b-truncate/model.safetensors"
$PY -c 'import json, sys; c = json.load(open(sys.argv[1])); c["rope_scaling"]["truncate"] = True; json.dump(c, open(sys.argv[2], "w"))' \
  "$S/20b/config.json" "$S/20b-truncate/config.json"
for m in 20b 20b-truncate 20b-deq; do logits "$m" "$S/$m" "$S/long.jsonl"; done
logits 20b-gguf "$S/20b.gguf" "$S/long.jsonl"
same_logits 20b-truncate 20b-gguf
same_logits 20b-deq 20b-gguf
REF_DIR=$REF $PY - "$S/20b.st" "$S/20b-gguf.st" <<'PYEOF' && pass || fail "the GGUF against gpt-oss-20b's truncate: false"
import os, sys
sys.path.insert(0, os.environ["REF_DIR"])
from safetensors_io import load_file
a, b = load_file(sys.argv[1])[0], load_file(sys.argv[2])[0]
worst = max((a[k].double() - b[k].double()).abs().max().item() for k in a if k.count(".") == 1)
print(f"gpt-oss-20b config: GGUF (YaRN truncated) against the source (truncate: false): max |dlogit| {worst:.3g}")
assert worst > 0, worst  # measured 0.76: the truncation is visible
PYEOF

# profile: the same usage on the GGUF as on its checkpoint.
for m in 20b-truncate 20b.gguf; do
  expect_ok -- "$MOESLICE" profile --model "$S/$m" --corpus "$S/long.jsonl" --out "$S/usage-$m.safetensors" --threads 2
done
$PY "$SRC/tests/cli/same_usage.py" --ignore sources --ignore model \
  "$S/usage-20b-truncate.safetensors" "$S/usage-20b.gguf.safetensors" &&
  pass || fail "profile on the gpt-oss GGUF differs from profile on its checkpoint"

# A GGUF slice computes the full GGUF restricted to the plan, exactly.
write_plan "$S/keep5.json" "[0,2,3,5,6]" "[1,2,4,6,7]" "[0,1,3,4,5]" "[2,3,5,6,7]"
expect_ok -- "$MOESLICE" slice --model "$S/20b.gguf" --plan "$S/keep5.json" --out "$S/20b-keep5.gguf"
logits 20b-keep "$S/20b.gguf" "$S/long.jsonl" --keep "$S/keep5.json"
logits 20b-sliced "$S/20b-keep5.gguf" "$S/long.jsonl"
REF_DIR=$REF $PY - "$S/20b-keep.st" "$S/20b-sliced.st" <<'PYEOF' && pass || fail "the sliced GGUF differs from --keep"
import os, sys
sys.path.insert(0, os.environ["REF_DIR"])
from safetensors_io import load_file
a, b = load_file(sys.argv[1])[0], load_file(sys.argv[2])[0]
logits = [k for k in a if k.count(".") == 1]
assert logits and sorted(logits) == sorted(k for k in b if k.count(".") == 1)
for k in logits:
    assert a[k].equal(b[k]), k
PYEOF

# Refusals by name, nothing written.
$PY - "$S/plain.gguf" "$S/no-up-bias.gguf" <<'PYEOF'
import sys
data = open(sys.argv[1], "rb").read()
open(sys.argv[2], "wb").write(data.replace(b"blk.1.ffn_up_exps.bias", b"blk.1.ffn_up_exps.bia2", 1))
PYEOF
expect_error 2 "no-up-bias.gguf: tensor 'blk.1.ffn_up_exps.bias' is missing" -- \
  "$MOESLICE" logits --model "$S/no-up-bias.gguf" --corpus "$S/ids.jsonl" --out "$S/refused.st"
$PY - "$S/20b.gguf" "$S/linear.gguf" <<'PYEOF'
import sys
data = open(sys.argv[1], "rb").read()
key = b"gpt-oss.rope.scaling.type"
at = data.index(key) + len(key) + 4 + 8  # the STRING value's length, then "yarn"
assert data[at:at + 4] == b"yarn"
open(sys.argv[2], "wb").write(data[:at] + b"linr" + data[at + 4:])
PYEOF
expect_error 2 "linear.gguf: key 'gpt-oss.rope.scaling.type' is 'linr'; the gpt-oss GGUF forward pass computes YaRN or no RoPE scaling" -- \
  "$MOESLICE" logits --model "$S/linear.gguf" --corpus "$S/ids.jsonl" --out "$S/refused.st"
[ ! -e "$S/refused.st" ] && pass || fail "a refused command wrote output"
# What llama.cpp's gpt-oss graph cannot express is refused by the converter, by key.
"$MOESLICE" make-random "${common[@]}" --set swiglu_limit=5.0 --out "$S/limit5" >/dev/null || fail "make-random limit5"
expect_error 2 "limit5/config.json: 'swiglu_limit' is 5.0, expected 7.0" -- \
  $PY "$REF/hf_to_gguf.py" --gguf-py "$GGUF_PY" --model "$S/limit5" --out "$S/limit5.gguf"
[ ! -e "$S/limit5.gguf" ] && pass || fail "a refused conversion left its output"

finish
