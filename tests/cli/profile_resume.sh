#!/usr/bin/env bash
# profile --checkpoint-every / --resume: a run that stopped after some documents (its
# OUT.partial) and was resumed writes the same file, byte for byte, as one uninterrupted run,
# also with --stream-layers and --skip-bad; a partial profile of another model or other options is
# refused, naming the key; --checkpoint-every leaves OUT.partial while running and removes it at
# the end.
source "$(dirname "$0")/lib.bash"

python3 - "$SCRATCH/corpus.jsonl" <<'PY'
import json, random, sys
random.seed(9)
with open(sys.argv[1], "w") as out:
    for d in range(9):
        if d == 4:
            out.write("{not json\n")  # a bad record, skipped with --skip-bad
        out.write(json.dumps({"id": f"d{d}", "input_ids": [random.randrange(64) for _ in range(5 + 7 * d)]}) + "\n")
PY
"$MOESLICE" make-random --family qwen3_moe --layers 2 --hidden 32 --heads 4 --experts 8 --top-k 2 \
  --expert-width 16 --vocab 64 --seed 4 --out "$SCRATCH/model" >/dev/null
"$MOESLICE" make-random --family qwen3_moe --layers 2 --hidden 32 --heads 4 --experts 8 --top-k 2 \
  --expert-width 16 --vocab 64 --seed 5 --out "$SCRATCH/other" >/dev/null
run() { "$MOESLICE" profile --model "$SCRATCH/model" --corpus "$SCRATCH/corpus.jsonl" --skip-bad "$@"; }

expect_ok -- run --out "$SCRATCH/whole.safetensors" --checkpoint-every 2
[ ! -e "$SCRATCH/whole.safetensors.partial" ] && pass || fail "OUT.partial left after a complete run"

for stream in "" "--stream-layers --stream-block-tokens 20"; do
  for stop in 1 4 8; do
    # "Stopped after $stop documents": the partial profile is what those documents give.
    rm -f "$SCRATCH/resumed.safetensors"
    expect_ok -- run --max-docs "$stop" --out "$SCRATCH/resumed.safetensors.partial" --force
    # shellcheck disable=SC2086
    expect_ok -- run --resume $stream --out "$SCRATCH/resumed.safetensors"
    # Only `sources` may differ (it names the resumed run's reading of the corpus).
    python3 "$(dirname "$0")/same_usage.py" "$SCRATCH/whole.safetensors" "$SCRATCH/resumed.safetensors" \
      && pass || fail "resume after $stop ($stream) differs"
    [ ! -e "$SCRATCH/resumed.safetensors.partial" ] && pass || fail "OUT.partial left after resuming"
  done
done

# A partial profile of another model is refused (exit 2) and the output is not written.
"$MOESLICE" profile --model "$SCRATCH/other" --corpus "$SCRATCH/corpus.jsonl" --skip-bad \
  --max-docs 2 --out "$SCRATCH/mixed.safetensors.partial" >/dev/null 2>&1
expect_error 2 "'model' is" -- run --resume --out "$SCRATCH/mixed.safetensors"
[ ! -e "$SCRATCH/mixed.safetensors" ] && pass || fail "output written after a refused resume"
expect_error 2 "checkpoint-every" -- run --checkpoint-every 0 --out "$SCRATCH/x.safetensors"
finish
