#!/usr/bin/env bash
# Fault test: a full disk (a file-size limit, ulimit -f) while `slice`, `make-random`, `profile`
# and `rank` write: a clear message naming the file, exit 1, no partial output, no staging
# debris, the input untouched. Concurrent writers to one output: four `slice --force` at once,
# several times: every run succeeds, one whole output remains, nothing is orphaned.
source "$(dirname "$0")/lib.bash"

M="$SCRATCH/model"
big=(--family olmoe --layers 2 --hidden 128 --experts 16 --top-k 2 --expert-width 256 --vocab 512 --seed 3)
"$MOESLICE" make-random "${big[@]}" --out "$M" >/dev/null
write_plan "$SCRATCH/plan.json" "[0,2,4,6,8,10,12,14]" "[1,3,5,7,9,11,13,15]"
"$MOESLICE" slice --model "$M" --plan "$SCRATCH/plan.json" --out "$SCRATCH/slice-ref" >/dev/null
(cd "$M" && sha256sum -- * >"$SCRATCH/model.sums")
entries() { find "$SCRATCH" -maxdepth 1 -name ".*" | wc -l; }

# --- a full disk: writes fail with EFBIG beyond 256 kB -------------------------------------------
limited() { (ulimit -f 256 && "$@"); }
expect_error 1 "File too large" -- limited "$MOESLICE" slice --model "$M" --plan "$SCRATCH/plan.json" --out "$SCRATCH/full"
[ ! -e "$SCRATCH/full" ] && pass || fail "slice on a full disk left a partial output"
expect_error 1 "File too large" -- limited "$MOESLICE" make-random "${big[@]}" --out "$SCRATCH/full"
[ ! -e "$SCRATCH/full" ] && pass || fail "make-random on a full disk left a partial output"
(cd "$M" && sha256sum --quiet -c "$SCRATCH/model.sums") && pass || fail "the input changed"
python3 - "$SCRATCH/corpus.jsonl" <<'PY'
import json, sys
with open(sys.argv[1], "w") as out:
    for d in range(6):
        out.write(json.dumps({"id": f"d{d}", "input_ids": [(d * 5 + i) % 512 for i in range(12)]}) + "\n")
PY
"$MOESLICE" profile --model "$M" --corpus "$SCRATCH/corpus.jsonl" --quiet --out "$SCRATCH/usage.safetensors" >/dev/null
tiny() { (ulimit -f 1 && "$@"); }
expect_error 1 "File too large" -- tiny "$MOESLICE" profile --model "$M" --corpus "$SCRATCH/corpus.jsonl" --quiet --out "$SCRATCH/full.safetensors"
[ ! -e "$SCRATCH/full.safetensors" ] && pass || fail "profile on a full disk left a partial output"
[ "$(entries)" -eq 0 ] && pass || fail "staging debris after the full-disk runs: $(ls -A "$SCRATCH")"

# --- concurrent writers to one output --------------------------------------------------------------
out="$SCRATCH/shared"
for round in 1 2 3 4; do
  pids=()
  for w in 1 2 3 4; do
    "$MOESLICE" slice --model "$M" --plan "$SCRATCH/plan.json" --out "$out" --force --no-verify \
      >"$SCRATCH/w$w.log" 2>&1 &
    pids+=($!)
  done
  for i in "${!pids[@]}"; do
    wait "${pids[$i]}" && pass || fail "concurrent slice $((i + 1)) of round $round failed: $(cat "$SCRATCH/w$((i + 1)).log")"
  done
  diff -r "$out" "$SCRATCH/slice-ref" >/dev/null && pass || fail "round $round: the output is not whole"
  [ "$(entries)" -eq 0 ] && pass || fail "round $round: orphaned entries: $(ls -A "$SCRATCH")"
done
rm -f "$SCRATCH"/w*.log
finish
