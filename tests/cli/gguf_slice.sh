#!/usr/bin/env bash
# `moeslice slice` and `unslice` on GGUF files written by tests/cli/make_gguf.py (olmoe-like, 2
# layers, 4 experts, top 2) at F32, F16, Q8_0, Q4_K and MXFP4, read back by an independent reader
# (gguf_read.py): kept expert bytes identical to the source's rows, every other tensor and every
# metadata key identical except expert_count / expert_used_count and the appended moeslice.* keys;
# split input gives split output, --max-shard-size splits; unslice restores the full file byte for
# byte; refusals exit 2 naming the plan, block, key or file, and write nothing.
source "$(dirname "$0")/lib.bash"
MAKE="$PY $SRC/tests/cli/make_gguf.py"
S=$SCRATCH

# check_slice FULL_PARTS OUT_PARTS "IDS_L0;IDS_L1" USED: the slice read back against its source.
check_slice() {
  SRC_DIR=$SRC/tests/cli $PY - "$@" <<'EOF'
import json, os, sys
sys.path.insert(0, os.environ["SRC_DIR"])
from gguf_read import read_gguf
full_parts, out_parts, plan, used = sys.argv[1].split(), sys.argv[2].split(), sys.argv[3], int(sys.argv[4])
kept = [list(map(int, layer.split(","))) for layer in plan.split(";")]
def load(parts):
    keys, tensors = read_gguf(parts[0])
    for part in parts[1:]:
        tensors += read_gguf(part)[1]
    return keys, tensors
full_keys, full_tensors = load(full_parts)
out_keys, out_tensors = load(out_parts)
problems = []
strip = lambda keys: [k for k in keys if not k[0].startswith("split.")]
fk, ok = strip(full_keys), strip(out_keys)
want = {"olmoe.expert_count": len(kept[0]), "olmoe.expert_used_count": used}
if [k for k, _, _ in ok[:len(fk)]] != [k for k, _, _ in fk]:
    problems.append("metadata order differs")
for (key, t, v), (okey, ot, ov) in zip(fk, ok):
    expected = want.get(key, v)
    if (okey, ot, ov) != (key, t, expected):
        problems.append(f"key {key}: {(okey, ot, ov)} != {(key, t, expected)}")
extra = dict((k, v) for k, _, v in ok[len(fk):])
if sorted(extra) != sorted(["moeslice.original_expert_count", "moeslice.original_expert_used_count",
                            "moeslice.source", "moeslice.source_fingerprint",
                            "moeslice.experts_kept", "moeslice.plan"]):
    problems.append(f"moeslice keys: {sorted(extra)}")
elif extra["moeslice.experts_kept"] != (5, sum(kept, [])) or \
        extra["moeslice.original_expert_count"] != 4 or \
        extra["moeslice.source"] != os.path.basename(full_parts[0]):
    problems.append(f"moeslice values: {extra}")
if [t[0] for t in out_tensors] != [t[0] for t in full_tensors]:
    problems.append("tensor names or order differ")
for (name, t, ne, data), (oname, ot, one, odata) in zip(full_tensors, out_tensors):
    layer = int(name.split(".")[1]) if name.startswith("blk.") else None
    if name.endswith("_exps.weight") or ".ffn_gate_inp." in name:
        rows = len(data) // ne[-1]
        expected = b"".join(data[e * rows:(e + 1) * rows] for e in kept[layer])
        expected_ne = ne[:-1] + [len(kept[layer])]
    else:
        expected, expected_ne = data, ne
    if (ot, one, odata) != (t, expected_ne, expected):
        problems.append(f"tensor {name}: type {ot} ne {one} or bytes differ from the source's")
for p in problems[:5]:
    print(p)
sys.exit(1 if problems else 0)
EOF
}

write_plan "$S/keep2.json" "[0,2]" "[1,3]"
write_plan "$S/keep1.json" "[3]" "[0]"
for type in F32 F16 Q8_0 Q4_K MXFP4; do
  $MAKE "$S/$type.gguf" --type "$type"
  cp "$S/$type.gguf" "$S/$type.copy"
  out=$("$MOESLICE" slice --model "$S/$type.gguf" --plan "$S/keep2.json" --out "$S/$type-keep2.gguf" 2>&1) &&
    pass || fail "slice $type: $out"
  grep -q "wrote $S/$type-keep2.gguf: 2 of 4 experts per layer, 2 of 2 per token; .*%); 8 tensors cut" <<<"$out" &&
    grep -q "^verified: the output reads back" <<<"$out" && pass || fail "slice report: $out"
  check_slice "$S/$type.gguf" "$S/$type-keep2.gguf" "0,2;1,3" 2 && pass || fail "slice $type read back"
  expect_ok -- "$MOESLICE" slice --model "$S/$type.gguf" --plan "$S/keep1.json" --out "$S/$type-keep1.gguf" --no-verify
  check_slice "$S/$type.gguf" "$S/$type-keep1.gguf" "3;0" 1 && pass || fail "slice $type keep1 read back"
  cmp -s "$S/$type.gguf" "$S/$type.copy" && pass || fail "slicing changed its input $type.gguf"
  # Unslice puts the experts back: the full file again, byte for byte.
  expect_ok -- "$MOESLICE" unslice --model "$S/$type.gguf" --sliced "$S/$type-keep2.gguf" --out "$S/$type-back.gguf"
  cmp -s "$S/$type.gguf" "$S/$type-back.gguf" && pass || fail "unslice $type does not restore the full file"
done

# A slice of a slice records the original ids; unslicing it into the original works.
write_plan "$S/second.json" "[1]" "[0]"
expect_ok -- "$MOESLICE" slice --model "$S/Q8_0-keep2.gguf" --plan "$S/second.json" --out "$S/twice.gguf"
check_slice "$S/Q8_0.gguf" "$S/twice.gguf" "2;1" 1 && pass || fail "slice of a slice"

# Split input -> split output; --max-shard-size splits a single file.
$MAKE "$S/split.gguf" --type Q8_0 --parts 3
out=$("$MOESLICE" slice --model "$S/split-00001-of-00003.gguf" --plan "$S/keep2.json" --out "$S/split-keep2.gguf" 2>&1) &&
  pass || fail "slice split: $out"
parts=$(ls "$S"/split-keep2-0000*-of-*.gguf 2>/dev/null | tr '\n' ' ')
[ -n "$parts" ] && [ ! -e "$S/split-keep2.gguf" ] && pass || fail "split input gave no split output: $out"
check_slice "$(ls "$S"/split-0000*-of-00003.gguf | tr '\n' ' ')" "$parts" "0,2;1,3" 2 && pass || fail "split slice read back"
expect_ok -- "$MOESLICE" inspect --model "$(ls "$S"/split-keep2-00001-of-*.gguf)"
expect_ok -- "$MOESLICE" slice --model "$S/Q8_0.gguf" --plan "$S/keep2.json" --out "$S/small.gguf" --max-shard-size 20KB
parts=$(ls "$S"/small-0000*-of-*.gguf 2>/dev/null | tr '\n' ' ')
[ "$(wc -w <<<"$parts")" -ge 2 ] && pass || fail "--max-shard-size 20KB wrote $parts"
check_slice "$S/Q8_0.gguf" "$parts" "0,2;1,3" 2 && pass || fail "--max-shard-size slice read back"

# Refusals: exit 2, named, nothing written.
write_plan "$S/uneven.json" "[0,2]" "[1]"
expect_error 2 "uneven.json: block 1 keeps 1 experts but block 0 keeps 2; llama.cpp has one expert count \('olmoe.expert_count'\)" -- \
  "$MOESLICE" slice --model "$S/Q8_0.gguf" --plan "$S/uneven.json" --out "$S/uneven.gguf"
write_plan "$S/short.json" "[0,2]"
expect_error 2 "short.json: 'experts_kept_per_layer' must have one entry per block \(.*Q8_0.gguf: 'olmoe.block_count' = 2\), found 1" -- \
  "$MOESLICE" slice --model "$S/Q8_0.gguf" --plan "$S/short.json" --out "$S/short.gguf"
write_plan "$S/range.json" "[0,4]" "[1,3]"
expect_error 2 "range.json: layer 0: expert id 4 is out of range \[0, 4\)" -- \
  "$MOESLICE" slice --model "$S/Q8_0.gguf" --plan "$S/range.json" --out "$S/range.gguf"
echo '{"experts_kept_per_layer": [[0,2],[1,3]], "family": "qwen3_moe", "num_experts": 4}' >"$S/family.json"
expect_error 2 "family.json: the plan was made for a model with 'family' = \"qwen3_moe\", but .*Q8_0.gguf has \"olmoe\"" -- \
  "$MOESLICE" slice --model "$S/Q8_0.gguf" --plan "$S/family.json" --out "$S/family.gguf"
expect_error 2 "already exists" -- \
  "$MOESLICE" slice --model "$S/Q8_0.gguf" --plan "$S/keep2.json" --out "$S/Q8_0-keep2.gguf"
expect_ok -- "$MOESLICE" slice --model "$S/Q8_0.gguf" --plan "$S/keep1.json" --out "$S/Q8_0-keep2.gguf" --force
check_slice "$S/Q8_0.gguf" "$S/Q8_0-keep2.gguf" "3;0" 1 && pass || fail "--force replaced the output"
expect_error 2 "Q8_0.gguf" -- \
  "$MOESLICE" slice --model "$S/Q8_0.gguf" --plan "$S/keep2.json" --out "$S/Q8_0.gguf" --force
cmp -s "$S/Q8_0.gguf" "$S/Q8_0.copy" && pass || fail "slice over its input changed it"
# unslice refuses a slice of another model and a GGUF that is no slice.
expect_error 2 "F32-keep2.gguf: metadata key 'moeslice.source_fingerprint' = .* \(F32.gguf\), but .*Q8_0.gguf has .*: another model" -- \
  "$MOESLICE" unslice --model "$S/Q8_0.gguf" --sliced "$S/F32-keep2.gguf" --out "$S/wrong.gguf"
expect_error 2 "F16.gguf: metadata key 'moeslice.experts_kept' is absent" -- \
  "$MOESLICE" unslice --model "$S/F16.gguf" --sliced "$S/F16.gguf" --out "$S/none.gguf"
for name in uneven short range family wrong none; do
  [ ! -e "$S/$name.gguf" ] && pass || fail "a refused command wrote $name.gguf"
done
ls -a "$S" | grep -q "tmp-" && fail "staging debris left: $(ls -a "$S" | grep tmp-)" || pass

finish
