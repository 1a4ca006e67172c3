#!/usr/bin/env bash
# Fault test: NaN and infinite numbers. A weight holding NaN or Inf is named (tensor and element)
# by every command that computes with it, instead of a profile of NaN mass or "perplexity nan"
# (in a layer, in the router, in the final norm that only the logits see); finite weights that
# overflow on an input name the document and layer; a usage profile holding NaN (written by an
# older moeslice) is refused by rank, report and merge, naming the file, tensor and document.
source "$(dirname "$0")/lib.bash"

M="$SCRATCH/model"
"$MOESLICE" make-random --family qwen3_moe --layers 2 --hidden 32 --heads 4 --experts 8 --top-k 2 \
  --expert-width 16 --vocab 64 --seed 4 --out "$M" >/dev/null
$PY - "$SCRATCH/corpus.jsonl" <<'PY'
import json, sys
with open(sys.argv[1], "w") as out:
    for d in range(4):
        out.write(json.dumps({"id": f"doc{d}", "input_ids": [(d * 7 + i) % 64 for i in range(16)]}) + "\n")
PY
"$MOESLICE" profile --model "$M" --corpus "$SCRATCH/corpus.jsonl" --quiet --out "$SCRATCH/good.safetensors" >/dev/null

# poison DIR TENSOR ELEMENT VALUE: writes VALUE (nan, inf, 3e38) over one F32 element of a tensor
# (ELEMENT "all": over every element), in place.
poison() {
  $PY - "$@" <<'PY'
import json, struct, sys
path, name, element, value = sys.argv[1] + "/model.safetensors", sys.argv[2], sys.argv[3], float(sys.argv[4])
with open(path, "r+b") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    entry = json.loads(f.read(n))[name]
    assert entry["dtype"] == "F32", entry
    begin, end = entry["data_offsets"]
    first, count = (0, (end - begin) // 4) if element == "all" else (int(element), 1)
    f.seek(8 + n + begin + 4 * first)
    f.write(struct.pack("<f", value) * count)
PY
}

cp -r "$M" "$SCRATCH/nan"
poison "$SCRATCH/nan" model.layers.1.self_attn.o_proj.weight 5 nan
cp -r "$M" "$SCRATCH/inf"
poison "$SCRATCH/inf" model.embed_tokens.weight $((7 * 32 + 2)) inf  # token 7, used by doc1

run=(--corpus "$SCRATCH/corpus.jsonl" --threads 1)
nan_message="tensor 'model.layers.1.self_attn.o_proj.weight' holds NaN at element 5"
inf_message="tensor 'model.embed_tokens.weight' holds \+Inf at element 226"
for model in nan inf; do
  message=$([ $model = nan ] && echo "$nan_message" || echo "$inf_message")
  expect_error 2 "$message" -- "$MOESLICE" profile --model "$SCRATCH/$model" "${run[@]}" --quiet --out "$SCRATCH/u.safetensors"
  expect_error 2 "$message" -- "$MOESLICE" profile --model "$SCRATCH/$model" "${run[@]}" --quiet --stream-layers --out "$SCRATCH/u.safetensors"
  [ ! -e "$SCRATCH/u.safetensors" ] && pass || fail "profile of the $model model wrote an output"
  expect_error 2 "$message" -- "$MOESLICE" eval --model "$SCRATCH/$model" "${run[@]}"
  expect_error 2 "$message" -- "$MOESLICE" logits --model "$SCRATCH/$model" "${run[@]}" --out "$SCRATCH/l.safetensors"
  expect_error 2 "$message" -- "$MOESLICE" select --model "$SCRATCH/$model" "${run[@]}" --quiet --keep 4 --out "$SCRATCH/p.json"
  expect_error 2 "$message" -- "$MOESLICE" compare --model "$M" --sliced "$SCRATCH/$model" "${run[@]}"
done
[ ! -e "$SCRATCH/l.safetensors" ] && [ ! -e "$SCRATCH/p.json" ] && pass || fail "an output was written"

# A NaN in the router: named by profile (which reads no further than the last MoE layer).
cp -r "$M" "$SCRATCH/router"
poison "$SCRATCH/router" model.layers.0.mlp.gate.weight 3 nan
expect_error 2 "tensor 'model.layers.0.mlp.gate.weight' holds NaN at element 3" -- \
  "$MOESLICE" profile --model "$SCRATCH/router" "${run[@]}" --quiet --out "$SCRATCH/u.safetensors"
# A NaN in the final norm reaches only the logits: checked after the LM head.
cp -r "$M" "$SCRATCH/norm"
poison "$SCRATCH/norm" model.norm.weight 0 nan
expect_error 2 "tensor 'model.norm.weight' holds NaN at element 0" -- \
  "$MOESLICE" eval --model "$SCRATCH/norm" "${run[@]}"
expect_error 2 "tensor 'model.norm.weight' holds NaN at element 0" -- \
  "$MOESLICE" logits --model "$SCRATCH/norm" "${run[@]}" --out "$SCRATCH/l.safetensors"
expect_ok -- "$MOESLICE" profile --model "$SCRATCH/norm" "${run[@]}" --quiet --out "$SCRATCH/u.safetensors"
rm -f "$SCRATCH/u.safetensors"
# Finite weights that overflow on this input (every query weight 3e38): the document is named.
cp -r "$M" "$SCRATCH/overflow"
poison "$SCRATCH/overflow" model.layers.0.self_attn.q_proj.weight all 3e38
overflow_message="document 'doc[0-9]': the hidden state after layer 0 \(tokens 0 to 15\) holds NaN or Inf although the weights that computed it are finite"
expect_error 2 "$overflow_message" -- "$MOESLICE" eval --model "$SCRATCH/overflow" "${run[@]}"
expect_error 2 "$overflow_message" -- "$MOESLICE" profile --model "$SCRATCH/overflow" "${run[@]}" --quiet --stream-layers --out "$SCRATCH/u.safetensors"
[ ! -e "$SCRATCH/u.safetensors" ] && pass || fail "profile of the overflowing model wrote an output"

# --- a usage profile holding NaN -------------------------------------------------------------------
$PY - "$SCRATCH/good.safetensors" "$SCRATCH/nan.safetensors" <<'PY'
import json, shutil, struct, sys
shutil.copy(sys.argv[1], sys.argv[2])
with open(sys.argv[2], "r+b") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    entry = json.loads(f.read(n))["mass"]
    # document 2, layer 1, expert 3 of [4, 2, 8]
    f.seek(8 + n + entry["data_offsets"][0] + 4 * ((2 * 2 + 1) * 8 + 3))
    f.write(struct.pack("<f", float("nan")))
PY
usage_message="nan.safetensors: tensor 'mass' holds NaN for document 'doc2', layer 1, expert 3"
expect_error 2 "$usage_message" -- "$MOESLICE" rank --usage "$SCRATCH/nan.safetensors" --keep 4 --out "$SCRATCH/p.json"
expect_error 2 "$usage_message" -- "$MOESLICE" merge --out "$SCRATCH/m.safetensors" "$SCRATCH/good.safetensors" "$SCRATCH/nan.safetensors"
expect_ok -- "$MOESLICE" rank --usage "$SCRATCH/good.safetensors" --keep 4 --out "$SCRATCH/p.json"
expect_error 2 "$usage_message" -- "$MOESLICE" report --usage "$SCRATCH/nan.safetensors" --plan "$SCRATCH/p.json" --out "$SCRATCH/r.html"
finish
