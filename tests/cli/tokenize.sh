#!/usr/bin/env bash
# `moeslice tokenize`: the GPT-NeoX reference vectors through the command line (each file
# tokenized whole), --decode round trips, --add-special, and the refusals (exit code 2, message
# naming the file or the bad ids).
source "$(dirname "$0")/lib.bash"
DATA="$(cd "$(dirname "$0")/../data" && pwd)"
OLMOE="$DATA/tokenizers/olmoe-tokenizer.json"
DOLMA2="$DATA/tokenizers/dolma2-tokenizer.json"
command -v python3 >/dev/null || { echo "python3 not found"; exit 77; }

# Split the .inp into one file per string (exact bytes, no trailing newline added).
python3 - "$DATA/tokenizer-vectors/gpt-neox-20b.inp" "$SCRATCH" <<'PY'
import sys
text = open(sys.argv[1], encoding="utf-8", newline="").read()
parts = text.split("\n__ggml_vocab_test__\n")[:-1]
for i, s in enumerate(parts):
    open(f"{sys.argv[2]}/vec{i:02d}.txt", "w", encoding="utf-8", newline="").write(s)
PY
i=0
while IFS= read -r expected; do
  f=$(printf '%s/vec%02d.txt' "$SCRATCH" "$i")
  # The .out lines start with a space before each id.
  expected="${expected# }"
  got=$("$MOESLICE" tokenize --tokenizer "$OLMOE" --input "$f")
  [ "$got" = "$expected" ] && pass || fail "vector $i: expected '$expected', got '$got'"
  i=$((i + 1))
done <"$DATA/tokenizer-vectors/gpt-neox-20b.out"
[ "$i" -eq 46 ] && pass || fail "read $i expected lines, not 46"

# --text gives the same as --input.
got=$("$MOESLICE" tokenize --tokenizer "$OLMOE" --text "Hello world")
[ "$got" = "12092 1533" ] && pass || fail "--text Hello world: $got"

# Round trip through --decode, on both tokenizers, from a file and from --text.
printf 'Gr\xc3\xbc\xc3\x9fe, \xe4\xb8\x96\xe7\x95\x8c! \xf0\x9f\x98\x80\n\tint x = 42;  \n\n' >"$SCRATCH/text.txt"
for tok in "$OLMOE" "$DOLMA2"; do
  "$MOESLICE" tokenize --tokenizer "$tok" --input "$SCRATCH/text.txt" >"$SCRATCH/ids.txt"
  "$MOESLICE" tokenize --tokenizer "$tok" --decode --input "$SCRATCH/ids.txt" >"$SCRATCH/back.txt"
  cmp -s "$SCRATCH/text.txt" "$SCRATCH/back.txt" && pass || fail "--decode round trip with $tok"
done
got=$("$MOESLICE" tokenize --tokenizer "$DOLMA2" --decode --text "9906 1917")
[ "$got" = "Hello world" ] && pass || fail "--decode --text: '$got'"

# Neither file has a post-processor that adds ids, so --add-special changes nothing here.
a=$("$MOESLICE" tokenize --tokenizer "$DOLMA2" --text "x" --add-special)
b=$("$MOESLICE" tokenize --tokenizer "$DOLMA2" --text "x")
[ "$a" = "$b" ] && pass || fail "--add-special on dolma2: '$a' vs '$b'"

# --- refusals ---
expect_error 2 "no-such-tokenizer.json" -- "$MOESLICE" tokenize --tokenizer "$SCRATCH/no-such-tokenizer.json" --text "x"
expect_error 2 "no-such-input.txt" -- "$MOESLICE" tokenize --tokenizer "$OLMOE" --input "$SCRATCH/no-such-input.txt"
expect_error 2 "--input FILE or --text" -- "$MOESLICE" tokenize --tokenizer "$OLMOE"
expect_error 2 "'abc'.*99999999" -- "$MOESLICE" tokenize --tokenizer "$OLMOE" --decode --text "12 abc 99999999"
expect_error 2 "-3" -- "$MOESLICE" tokenize --tokenizer "$OLMOE" --decode --text "-3"
printf 'ok \xff\n' >"$SCRATCH/latin1.txt"
expect_error 2 "latin1.txt.*not valid UTF-8" -- "$MOESLICE" tokenize --tokenizer "$OLMOE" --input "$SCRATCH/latin1.txt"
printf '{"model": {"type": "Unigram", "vocab": []}}' >"$SCRATCH/unigram.json"
expect_error 2 "unigram.json.*Unigram.*supported: BPE" -- "$MOESLICE" tokenize --tokenizer "$SCRATCH/unigram.json" --text "x"
printf '{"model": ' >"$SCRATCH/cut.json"
expect_error 2 "cut.json.*not valid JSON" -- "$MOESLICE" tokenize --tokenizer "$SCRATCH/cut.json" --text "x"

finish
