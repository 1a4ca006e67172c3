#!/usr/bin/env bash
# Fault test: the unclear errors of issue 15, each now a message that names the input and says
# what is wrong. Wrongly typed config values (every key of a real config, several wrong types:
# exit 0 or a clear error, never "internal error"); a symbolic link loop at model.safetensors or
# config.json; a file given as --model; a directory given as a plan; ids of 2^64-1 quoted as
# written (not -1 or 9223372036854775807); and a full disk named by the output's path, not by
# the staging path that no longer exists.
source "$(dirname "$0")/lib.bash"

small=(--layers 2 --hidden 32 --heads 4 --experts 8 --top-k 2 --expert-width 16 --vocab 64 --seed 5)
"$MOESLICE" make-random --family qwen2_moe "${small[@]}" --out "$SCRATCH/qwen2" >/dev/null
M="$SCRATCH/qwen2"
$PY - "$SCRATCH/corpus.jsonl" <<'PY'
import json, sys
with open(sys.argv[1], "w") as out:
    for d in range(2):
        out.write(json.dumps({"id": f"d{d}", "input_ids": [(d * 3 + i) % 64 for i in range(8)]}) + "\n")
PY
no_crash() {  # no_crash WHAT MESSAGE
  grep -Eq "internal error|terminate called|Segmentation|AddressSanitizer|runtime error" <<<"$2" \
    && fail "$1 :: $2" || pass
}

# --- wrongly typed config values -------------------------------------------------------------------
# Every key of the config in turn set to each wrong value: inspect and eval answer with exit 0
# (a key they do not use) or 2 (named), never an internal error.
mkdir -p "$SCRATCH/typed"
cp "$M"/*.safetensors "$SCRATCH/typed/"
keys=$($PY -c 'import json,sys; print(" ".join(json.load(open(sys.argv[1]))))' "$M/config.json")
for key in $keys; do
  for value in '"x"' '[1]' '{"a": 1}' '-1' '2.5' 'true' '18446744073709551615'; do
    $PY - "$M/config.json" "$SCRATCH/typed/config.json" "$key" "$value" <<'PY'
import json, sys
config = json.load(open(sys.argv[1]))
config[sys.argv[3]] = json.loads(sys.argv[4])
json.dump(config, open(sys.argv[2], "w"))
PY
    for command in inspect eval; do
      extra=()
      [ $command = eval ] && extra=(--corpus "$SCRATCH/corpus.jsonl" --threads 1)
      rc=0
      out=$("$MOESLICE" $command --model "$SCRATCH/typed" "${extra[@]}" 2>&1 >/dev/null) || rc=$?
      if [ $rc -ne 0 ] && [ $rc -ne 2 ]; then
        fail "$command with $key = $value: exit $rc :: $out"
      else
        no_crash "$command with $key = $value" "$out"
      fi
    done
  done
done
# The key that was an internal error (a type_error from nlohmann) before: named, with its value.
$PY - "$M/config.json" "$SCRATCH/typed/config.json" <<'PY'
import json, sys
config = json.load(open(sys.argv[1]))
config["decoder_sparse_step"] = "2"
json.dump(config, open(sys.argv[2], "w"))
PY
expect_error 2 "typed/config.json: 'decoder_sparse_step' must be an integer, found \"2\"" -- \
  "$MOESLICE" inspect --model "$SCRATCH/typed"

# --- symbolic link loops, a file as --model, a directory as plan -------------------------------------
cp -r "$M" "$SCRATCH/loop"
rm "$SCRATCH/loop/model.safetensors"
ln -s model.safetensors "$SCRATCH/loop/model.safetensors"
expect_error 2 "cannot read .*loop/model.safetensors: Too many levels of symbolic links" -- \
  "$MOESLICE" inspect --model "$SCRATCH/loop"
expect_error 2 "cannot read .*loop/model.safetensors: Too many levels of symbolic links" -- \
  "$MOESLICE" eval --model "$SCRATCH/loop" --corpus "$SCRATCH/corpus.jsonl"
cp -r "$M" "$SCRATCH/loop-config"
rm "$SCRATCH/loop-config/config.json"
ln -s config.json "$SCRATCH/loop-config/config.json"
expect_error 2 "cannot read .*loop-config/config.json: Too many levels of symbolic links" -- \
  "$MOESLICE" inspect --model "$SCRATCH/loop-config"
ln -s self "$SCRATCH/self"
expect_error 2 "cannot read .*self: Too many levels of symbolic links" -- \
  "$MOESLICE" inspect --model "$SCRATCH/self"

file_message="model.safetensors is not a checkpoint in a format moeslice reads; known: safetensors \(a directory"
expect_error 2 "$file_message" -- "$MOESLICE" inspect --model "$M/model.safetensors"
expect_error 2 "$file_message" -- "$MOESLICE" eval --model "$M/model.safetensors" --corpus "$SCRATCH/corpus.jsonl"
write_plan "$SCRATCH/plan.json" "[0,1,2,3]" "[0,1,2,3]"
expect_error 2 "$file_message" -- "$MOESLICE" slice --model "$M/model.safetensors" --plan "$SCRATCH/plan.json" --out "$SCRATCH/s"

mkdir "$SCRATCH/plan-dir"
expect_error 2 "plan-dir is a directory" -- "$MOESLICE" slice --model "$M" --plan "$SCRATCH/plan-dir" --out "$SCRATCH/s"

# --- numbers quoted as written ---------------------------------------------------------------------
"$MOESLICE" profile --model "$M" --corpus "$SCRATCH/corpus.jsonl" --quiet --out "$SCRATCH/u.safetensors" >/dev/null
write_plan "$SCRATCH/huge.json" "[0,18446744073709551615]" "[0,1]"
expect_error 2 "expert id 18446744073709551615 is out of range \[0, 8\)" -- \
  "$MOESLICE" slice --model "$M" --plan "$SCRATCH/huge.json" --out "$SCRATCH/s"
expect_error 2 "expert id 18446744073709551615 is out of range \[0, 8\)" -- \
  "$MOESLICE" report --usage "$SCRATCH/u.safetensors" --plan "$SCRATCH/huge.json" --out "$SCRATCH/r.html"
echo '{"id": "big", "input_ids": [1, 18446744073709551615]}' >"$SCRATCH/big.jsonl"
expect_error 2 "input_ids\[1\] is 18446744073709551615, outside the model's vocabulary \[0, 64\)" -- \
  "$MOESLICE" eval --model "$M" --corpus "$SCRATCH/big.jsonl"
[ ! -e "$SCRATCH/s" ] && [ ! -e "$SCRATCH/r.html" ] && pass || fail "an output was written"

# --- a full disk: the message names the output, not its removed staging path -----------------------
limited() { (ulimit -f 1 && "$@"); }
for command in "slice --model $M --plan $SCRATCH/plan.json --out $SCRATCH/full" \
  "make-random --family qwen2_moe ${small[*]} --out $SCRATCH/full" \
  "profile --model $M --corpus $SCRATCH/corpus.jsonl --quiet --out $SCRATCH/full"; do
  rc=0
  # shellcheck disable=SC2086  # the command is split into words on purpose
  out=$(limited "$MOESLICE" $command 2>&1 >/dev/null) || rc=$?
  [ $rc -eq 1 ] && pass || fail "$command on a full disk: exit $rc :: $out"
  grep -q "cannot write $SCRATCH/full" <<<"$out" && pass || fail "$command: the output is not named :: $out"
  grep -q "\.tmp-" <<<"$out" && fail "$command: a staging path is named :: $out" || pass
  [ ! -e "$SCRATCH/full" ] && pass || fail "$command left an output"
done
[ "$(find "$SCRATCH" -maxdepth 1 -name '.*tmp-*' | wc -l)" -eq 0 ] && pass || fail "staging debris"
finish
