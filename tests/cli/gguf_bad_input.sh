#!/usr/bin/env bash
# The GGUF corruption matrix at the command line: tiny GGUFs written by tests/cli/make_gguf.py (a
# writer independent of moeslice's), one defect each; `inspect` must exit 2 with a message naming
# the file and the field, without a crash, and nothing may be written beside the inputs. Also:
# GGUF models are refused by the commands that need a Hugging Face checkpoint, by name.
source "$(dirname "$0")/lib.bash"
MAKE="$PY $SRC/tests/cli/make_gguf.py"

# The intact model inspects.
$MAKE "$SCRATCH/good.gguf"
expect_ok -- "$MOESLICE" inspect --model "$SCRATCH/good.gguf"

# check KIND PATTERN [FILE [NAMED]]: inspect of FILE (m.gguf) with the KIND defect fails with a
# message that names NAMED (FILE) and matches PATTERN.
check() {
  local kind="$1" pattern="$2" dir="$SCRATCH/$1"
  mkdir -p "$dir"
  $MAKE "$dir/m.gguf" --corrupt "$kind"
  local file="${3:-m.gguf}"
  local named="${4:-$file}"
  local before
  before=$(ls -A "$dir")
  expect_error 2 "$dir/$named.*$pattern" -- "$MOESLICE" inspect --model "$dir/$file"
  expect_error 2 "$dir/$named.*$pattern" -- "$MOESLICE" inspect --json --model "$dir/$file"
  [ "$(ls -A "$dir")" = "$before" ] && pass || fail "$kind: files appeared beside the input"
}

check truncated-header "invalid GGUF file: .*truncated"
check bad-magic "magic is 'GGML', expected 'GGUF'"
check bad-version "version is 4, expected 2 or 3"
check huge-tensor-count "tensor count is 1099511627776, more than the limit"
check huge-key-count "metadata key count is 1099511627776, more than the limit"
check bad-string-length "metadata key 'bad' is 1152921504606846976 bytes long, more than the limit"
check deep-array "metadata key 'deep'.* nests arrays deeper than the limit of 8"
check huge-array "metadata key 'huge' holds 1099511627776 elements, more than the limit"
check misaligned-offset "tensor 'blk.0.attn_norm.weight' has offset 4104, which is not a multiple of the alignment 32"
check overlapping "overlaps tensor"
check data-outside "past the end of the file .*truncated"
check wrong-size "tensor 'blk.0.ffn_gate_exps.weight' has ne\[0\] = 48, which is not a multiple of the 32 elements of a Q8_0 block"
check unknown-type "tensor 'token_embd.weight' has unknown ggml type 43 \(known: F32 \(0\)"
check n-dims-5 "tensor 'token_embd.weight' has n_dims 5, more than ggml's maximum of 4"
check split-missing "split part 2 of 2, .*m-00002-of-00002.gguf, is missing" m-00001-of-00002.gguf
check split-mismatch "split keys say part 2 of 3" m-00001-of-00002.gguf m-00002-of-00002.gguf

# A missing .gguf path, and the commands that need a Hugging Face checkpoint.
expect_error 2 "model file $SCRATCH/none.gguf does not exist" -- "$MOESLICE" inspect --model "$SCRATCH/none.gguf"
write_plan "$SCRATCH/plan.json" "[0,1]" "[0,1]"
# (slice takes GGUF files since issue 16 part 3: tests/cli/gguf_slice.sh; logits computes them
# since issue 17 part 2, tests/cli/gguf_forward.sh, but this file lacks keys the spec needs.)
expect_error 2 "good.gguf: key 'olmoe.attention.head_count' is missing" -- \
  "$MOESLICE" logits --model "$SCRATCH/good.gguf" --keep "$SCRATCH/plan.json" --corpus "$SCRATCH/plan.json" --out "$SCRATCH/sliced"
[ ! -e "$SCRATCH/sliced" ] && pass || fail "a refused command wrote output"

finish
