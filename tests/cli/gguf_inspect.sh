#!/usr/bin/env bash
# `moeslice inspect` on GGUF files written by tests/cli/make_gguf.py: architecture, layers,
# experts, tensor types and their share of the bytes, split parts (text and --json).
source "$(dirname "$0")/lib.bash"
MAKE="$PY $SRC/tests/cli/make_gguf.py"

for type in F32 Q8_0; do
  $MAKE "$SCRATCH/$type.gguf" --type "$type"
  expect_ok -- "$MOESLICE" inspect --model "$SCRATCH/$type.gguf"
  got=$("$MOESLICE" inspect --json --model "$SCRATCH/$type.gguf" | $PY -c '
import json, sys
d = json.load(sys.stdin)
print(d["format"], d["architecture"], d["layers"], d["experts_per_layer"], d["experts_per_token"],
      d["expert_layers"], d["vocab_size"], sorted(d["tensors_by_dtype"]), len(d["shards"]))')
  want="gguf olmoe 2 4 2 [0, 1] 16 $( [ $type = F32 ] && echo "['F32']" || echo "['F32', 'Q8_0']") 1"
  [ "$got" = "$want" ] && pass || fail "inspect --json of $type: $got (expected $want)"
done
text=$("$MOESLICE" inspect --model "$SCRATCH/Q8_0.gguf")
grep -q "architecture *olmoe (tiny)" <<<"$text" && pass || fail "no architecture line: $text"
grep -Eq "tensor types *F32 x[0-9]+ \([^)]*, [0-9.]+%\), Q8_0 x6 " <<<"$text" && pass || fail "no type shares: $text"

# Split parts open from the first part as one model.
$MAKE "$SCRATCH/split.gguf" --parts 3
got=$("$MOESLICE" inspect --json --model "$SCRATCH/split-00001-of-00003.gguf" | $PY -c '
import json, sys
d = json.load(sys.stdin)
print(len(d["shards"]), d["tensors"], d["experts_per_layer"])')
[ "$got" = "3 12 4" ] && pass || fail "split inspect: $got"
expect_error 2 "split-00002-of-00003.gguf is part 2 of 3 of a split model .*open the first part, .*split-00001-of-00003.gguf" -- \
  "$MOESLICE" inspect --model "$SCRATCH/split-00002-of-00003.gguf"

# GGUF strings are bytes: a name that is not valid UTF-8 comes out of --json with U+FFFD.
cp "$SRC/tests/fuzz/corpus/gguf/invalid-utf8-strings" "$SCRATCH/not-utf8.gguf"
got=$("$MOESLICE" inspect --json --model "$SCRATCH/not-utf8.gguf" |
  $PY -c 'import json, sys; print(json.load(sys.stdin)["architecture"] == "ol\ufffdoe")')
[ "$got" = "True" ] && pass || fail "inspect --json of invalid UTF-8: $got"

finish
