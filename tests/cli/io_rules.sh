#!/usr/bin/env bash
# The input/output rule in every command (common/io_rules.h, apps/command_io.h): an output that
# is, contains or lies inside an input is refused (plans, --keep, corpora, OUT.partial, through
# symbolic links), special files are refused as inputs (without hanging) and as outputs (even
# with --force), numeric flags have readable ranges, and the output's place is checked before
# any work. Every refusal exits 2, names the path, and leaves the inputs untouched.
source "$(dirname "$0")/lib.bash"

M="$SCRATCH/model"
"$MOESLICE" make-random --family qwen3_moe --layers 2 --hidden 32 --heads 4 --experts 8 --top-k 2 \
  --expert-width 16 --vocab 64 --seed 4 --out "$M" >/dev/null
python3 - "$SCRATCH/corpus.jsonl" <<'PY'
import json, sys
with open(sys.argv[1], "w") as out:
    for d in range(4):
        out.write(json.dumps({"id": f"d{d}", "input_ids": [(d * 7 + i) % 64 for i in range(9)]}) + "\n")
PY
C=(--corpus "$SCRATCH/corpus.jsonl")
write_plan "$SCRATCH/plan.json" "[0,1,2,3]" "[4,5,6,7]"
cp "$SCRATCH/plan.json" "$SCRATCH/plan.orig"
ln -s plan.json "$SCRATCH/plan-link.json"
"$MOESLICE" profile --model "$M" "${C[@]}" --quiet --out "$SCRATCH/usage.safetensors" >/dev/null
unchanged() { cmp -s "$SCRATCH/plan.json" "$SCRATCH/plan.orig" && [ -f "$SCRATCH/plan.json" ] && pass || fail "the plan changed: $*"; }

# --- an output may not be an input: plans (and --keep), through links, with --force -----------
expect_error 2 "overlaps the input" -- "$MOESLICE" slice --model "$M" --plan "$SCRATCH/plan.json" --out "$SCRATCH/plan.json" --force
unchanged slice
expect_error 2 "overlaps the input" -- "$MOESLICE" slice --model "$M" --plan "$SCRATCH/plan-link.json" --out "$SCRATCH/plan.json" --force
expect_error 2 "overlaps the input" -- "$MOESLICE" slice --model "$M" --plan "$SCRATCH/plan.json" --out "$SCRATCH/plan-link.json" --force
unchanged slice through a link
expect_error 2 "overlaps the input" -- "$MOESLICE" profile --model "$M" "${C[@]}" --keep "$SCRATCH/plan.json" --out "$SCRATCH/plan.json" --force
unchanged profile --keep
expect_error 2 "overlaps the input" -- "$MOESLICE" eval --model "$M" "${C[@]}" --keep "$SCRATCH/plan.json" --json "$SCRATCH/plan.json" --force
unchanged eval --keep
expect_error 2 "overlaps the input" -- "$MOESLICE" logits --model "$M" "${C[@]}" --keep "$SCRATCH/plan.json" --out "$SCRATCH/plan.json" --force
expect_error 2 "overlaps the input" -- "$MOESLICE" compare --model "$M" "${C[@]}" --plan "$SCRATCH/plan.json" --json "$SCRATCH/plan.json" --force
expect_error 2 "overlaps the input" -- "$MOESLICE" report --usage "$SCRATCH/usage.safetensors" --plan "$SCRATCH/plan.json" --out "$SCRATCH/plan.json" --force
unchanged logits compare report
ln "$SCRATCH/plan.json" "$SCRATCH/plan-hard.json"
expect_error 2 "overlaps the input" -- "$MOESLICE" rank --usage "$SCRATCH/usage.safetensors" --keep 4 --out "$SCRATCH/usage.safetensors" --force
expect_error 2 "overlaps the input" -- "$MOESLICE" merge --out "$SCRATCH/usage.safetensors" --force "$SCRATCH/usage.safetensors"
expect_error 2 "overlaps the input" -- "$MOESLICE" unslice --model "$M" --sliced "$M" --out "$M" --force
expect_error 2 "overlaps the input" -- "$MOESLICE" select --model "$M" "${C[@]}" --keep 4 --out "$M/config.json" --force

# The partial profile beside the output is the output's too: the corpus is not deleted.
cp "$SCRATCH/corpus.jsonl" "$SCRATCH/u.safetensors.partial"
expect_error 2 "overlaps the input" -- "$MOESLICE" profile --model "$M" --corpus "$SCRATCH/u.safetensors.partial" --format jsonl --quiet --out "$SCRATCH/u.safetensors"
cmp -s "$SCRATCH/corpus.jsonl" "$SCRATCH/u.safetensors.partial" && pass || fail "the corpus named OUT.partial was touched"
[ ! -e "$SCRATCH/u.safetensors" ] && pass || fail "output written after a refusal"

# --- special files: never an output, never read as a plan, usage file, config or tokenizer ----
expect_error 2 "/dev/null is a character device.*even with --force" -- "$MOESLICE" rank --usage "$SCRATCH/usage.safetensors" --keep 4 --out /dev/null --force
[ -c /dev/null ] && pass || fail "/dev/null is no longer a device"
mkfifo "$SCRATCH/fifo"
t() { timeout 20 "$@"; }
expect_error 2 "fifo is a FIFO" -- t "$MOESLICE" slice --model "$M" --plan "$SCRATCH/fifo" --out "$SCRATCH/x"
expect_error 2 "fifo is a FIFO" -- t "$MOESLICE" rank --usage "$SCRATCH/fifo" --keep 4 --out "$SCRATCH/x.json"
expect_error 2 "fifo is a FIFO" -- t "$MOESLICE" report --usage "$SCRATCH/usage.safetensors" --plan "$SCRATCH/fifo" --out "$SCRATCH/x.html"
expect_error 2 "fifo is a FIFO" -- t "$MOESLICE" profile --model "$M" "${C[@]}" --tokenizer "$SCRATCH/fifo" --out "$SCRATCH/x.safetensors"
expect_error 2 "fifo is a FIFO" -- t "$MOESLICE" profile --model "$M" --corpus "$SCRATCH/fifo" --out "$SCRATCH/x.safetensors"
expect_error 2 "fifo is a FIFO" -- t "$MOESLICE" tokenize --tokenizer "$SCRATCH/fifo" --text hello
expect_error 2 "zero is a character device" -- t "$MOESLICE" slice --model "$M" --plan /dev/zero --out "$SCRATCH/x"
expect_error 2 "zero is a character device" -- t "$MOESLICE" profile --model "$M" --corpus /dev/zero --out "$SCRATCH/x.safetensors"
mkdir "$SCRATCH/plan-dir"
expect_error 2 "plan-dir is a directory" -- "$MOESLICE" slice --model "$M" --plan "$SCRATCH/plan-dir" --out "$SCRATCH/x"
cp -r "$M" "$SCRATCH/fifo-config"
rm "$SCRATCH/fifo-config/config.json"
mkfifo "$SCRATCH/fifo-config/config.json"
expect_error 2 "config.json is a FIFO" -- t "$MOESLICE" inspect --model "$SCRATCH/fifo-config"
# An endless pipe is cut off at kMaxRecordBytes (256 MiB) per line, not read into memory.
expect_error 2 "more than 256 MiB without a line break" -- "$MOESLICE" profile --model "$M" --corpus <(head -c 300000000 /dev/zero) --format jsonl --quiet --out "$SCRATCH/x.safetensors"
# A pipe (the shell's <(...)) stays a corpus, as stdin does.
expect_ok -- "$MOESLICE" profile --model "$M" --corpus <(cat "$SCRATCH/corpus.jsonl") --quiet --out "$SCRATCH/pipe.safetensors"
[ ! -e "$SCRATCH/x" ] && [ ! -e "$SCRATCH/x.json" ] && [ ! -e "$SCRATCH/x.safetensors" ] && pass || fail "a refused command wrote"

# --- limits: readable ranges -------------------------------------------------------------------
expect_error 2 "--threads: expected a whole number from 0 to 1024, got '4294967295'" -- "$MOESLICE" eval --model "$M" "${C[@]}" --threads 4294967295
expect_error 2 "--threads: expected a whole number from 0 to 1024" -- "$MOESLICE" eval --model "$M" "${C[@]}" --threads 100000
expect_error 2 "--max-docs: expected a whole number from 1 to [0-9]{1,20}, got '0'" -- "$MOESLICE" profile --model "$M" "${C[@]}" --max-docs 0 --out "$SCRATCH/x.safetensors"
expect_error 2 "--max-seq: expected a whole number from 1 to" -- "$MOESLICE" eval --model "$M" "${C[@]}" --max-seq -5
long=$(printf '9%.0s' $(seq 300))
out=$("$MOESLICE" eval --model "$M" "${C[@]}" --max-docs "$long" 2>&1 >/dev/null || true)
[ "${#out}" -lt 200 ] && pass || fail "a 300-digit --max-docs gives a ${#out}-character message: $out"
expect_error 2 "output path is empty" -- "$MOESLICE" profile --model "$M" "${C[@]}" --out ''
expect_error 2 "output path is empty" -- "$MOESLICE" slice --model "$M" --plan "$SCRATCH/plan.json" --out ''
expect_error 2 "output path is empty" -- "$MOESLICE" make-random --family olmoe --out ''

# --- the output's place is checked before the work ---------------------------------------------
nodir="$SCRATCH/missing/out"
expect_error 2 "missing does not exist" -- "$MOESLICE" profile --model "$M" "${C[@]}" --out "$nodir"
expect_error 2 "missing does not exist" -- "$MOESLICE" select --model "$M" "${C[@]}" --keep 4 --out "$nodir"
expect_error 2 "missing does not exist" -- "$MOESLICE" eval --model "$M" "${C[@]}" --json "$nodir"
expect_error 2 "missing does not exist" -- "$MOESLICE" compare --model "$M" "${C[@]}" --plan "$SCRATCH/plan.json" --json "$nodir"
expect_error 2 "missing does not exist" -- "$MOESLICE" slice --model "$M" --plan "$SCRATCH/plan.json" --out "$nodir"
expect_error 2 "missing does not exist" -- "$MOESLICE" unslice --model "$M" --sliced "$M" --out "$nodir"
expect_error 2 "missing does not exist" -- "$MOESLICE" rank --usage "$SCRATCH/usage.safetensors" --keep 4 --out "$nodir"
expect_error 2 "missing does not exist" -- "$MOESLICE" merge --out "$nodir" "$SCRATCH/usage.safetensors"
expect_error 2 "missing does not exist" -- "$MOESLICE" report --usage "$SCRATCH/usage.safetensors" --out "$nodir"
expect_error 2 "missing does not exist" -- "$MOESLICE" logits --model "$M" "${C[@]}" --out "$nodir"
expect_error 2 "missing does not exist" -- "$MOESLICE" make-random --family olmoe --out "$nodir"
if [ "$(id -u)" -ne 0 ]; then
  mkdir "$SCRATCH/ro" && chmod 555 "$SCRATCH/ro"
  expect_error 2 "ro is not writable" -- "$MOESLICE" profile --model "$M" "${C[@]}" --out "$SCRATCH/ro/u.safetensors"
  chmod 755 "$SCRATCH/ro"
fi
finish
