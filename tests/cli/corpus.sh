#!/usr/bin/env bash
# Task corpora on the command line: `profile` (and `logits`) of a tiny random OLMoE model whose
# directory holds the real OLMoE tokenizer.json, over a text JSON Lines file with domains, plain
# text, a directory, stdin, --field, --max-docs/--max-tokens, --skip-bad; bad input exits 2 with
# a message naming file:line and leaves no output behind.
source "$(dirname "$0")/lib.bash"
HERE="$(cd "$(dirname "$0")" && pwd)"
DATA="$HERE/../data"
FIX="$DATA/corpus"

MODEL="$SCRATCH/model"
"$MOESLICE" make-random --family olmoe --vocab 50280 --layers 2 --out "$MODEL" >/dev/null
cp "$DATA/tokenizers/olmoe-tokenizer.json" "$MODEL/tokenizer.json"
BARE="$SCRATCH/bare"  # the same model without a tokenizer.json
"$MOESLICE" make-random --family olmoe --vocab 50280 --layers 2 --out "$BARE" >/dev/null

# usage FILE EXPR: evaluates a Python expression over the usage metadata `u` (documents, sources).
usage() {
  /usr/bin/python3 - "$1" "$2" <<'PYEOF'
import json, struct, sys
with open(sys.argv[1], "rb") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    header = json.loads(f.read(n))
u = json.loads(header["__metadata__"]["moeslice_usage"])
value = eval(sys.argv[2])
print(value if not isinstance(value, (list, dict)) else json.dumps(value))
PYEOF
}

# tensors FILE: the tensors' bytes, name by name, as one hex digest (metadata excluded).
tensors() {
  /usr/bin/python3 - "$1" <<'PYEOF'
import hashlib, json, struct, sys
with open(sys.argv[1], "rb") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    header = json.loads(f.read(n))
    data = f.read()
h = hashlib.sha256()
for name in sorted(k for k in header if k != "__metadata__"):
    b, e = header[name]["data_offsets"]
    h.update(name.encode()); h.update(data[b:e])
print(h.hexdigest())
PYEOF
}

check_eq() {  # check_eq WHAT EXPECTED ACTUAL
  if [ "$2" == "$3" ]; then pass; else fail "$1: expected $2, found $3"; fi
}

# Text JSON Lines with ids and domains, through the model directory's tokenizer.json.
expect_ok -- "$MOESLICE" profile --model "$MODEL" --corpus "$FIX/text.jsonl" --out "$SCRATCH/text.usage" --quiet
check_eq "document ids" '["py-1", "prose-1", "py-2", "prose-2", "ids-1"]' "$(usage "$SCRATCH/text.usage" '[d["id"] for d in u["documents"]]')"
check_eq "domains" '["code", "prose", "code", "prose", "code"]' "$(usage "$SCRATCH/text.usage" '[d["domain"] for d in u["documents"]]')"
check_eq "source shape" "jsonl" "$(usage "$SCRATCH/text.usage" 'u["sources"][0]["shape"]')"
check_eq "source tokenizer" "$MODEL/tokenizer.json" "$(usage "$SCRATCH/text.usage" 'u["sources"][0]["tokenizer"]')"
expected_tokens=$(/usr/bin/python3 -c "
import json, subprocess, sys
total = 0
for line in open('$FIX/text.jsonl'):
    r = json.loads(line)
    if 'input_ids' in r: total += len(r['input_ids']); continue
    out = subprocess.run(['$MOESLICE', 'tokenize', '--tokenizer', '$MODEL/tokenizer.json', '--text', r['text']], capture_output=True, text=True, check=True).stdout
    total += len(out.split())
print(total)")
check_eq "tokens equal moeslice tokenize" "$expected_tokens" "$(usage "$SCRATCH/text.usage" 'u["sources"][0]["tokens"]')"

# stdin gives the same numbers as the file.
cat "$FIX/text.jsonl" | "$MOESLICE" profile --model "$MODEL" --corpus - --out "$SCRATCH/stdin.usage" --quiet >/dev/null 2>&1 \
  && pass || fail "profile from stdin failed"
check_eq "stdin equals the file" "$(tensors "$SCRATCH/text.usage")" "$(tensors "$SCRATCH/stdin.usage")"
check_eq "stdin source" "-" "$(usage "$SCRATCH/stdin.usage" 'u["sources"][0]["corpus"]')"

# A pipe with no telling name is sniffed: '{' starts JSON Lines.
expect_ok -- "$MOESLICE" profile --model "$MODEL" --corpus <(cat "$FIX/text.jsonl") --out "$SCRATCH/pipe.usage" --quiet
check_eq "pipe equals the file" "$(tensors "$SCRATCH/text.usage")" "$(tensors "$SCRATCH/pipe.usage")"

# --tokenizer overrides the (missing) model tokenizer; --domain labels unlabelled documents.
expect_ok -- "$MOESLICE" profile --model "$BARE" --tokenizer "$DATA/tokenizers/olmoe-tokenizer.json" --corpus "$FIX/lines.txt" --one-doc-per-line --domain notes --out "$SCRATCH/lines.usage" --quiet
check_eq "one document per line" '["0", "1", "2"]' "$(usage "$SCRATCH/lines.usage" '[d["id"] for d in u["documents"]]')"
check_eq "--domain" '["notes", "notes", "notes"]' "$(usage "$SCRATCH/lines.usage" '[d["domain"] for d in u["documents"]]')"
expect_ok -- "$MOESLICE" profile --model "$MODEL" --corpus "$FIX/lines.txt" --out "$SCRATCH/whole.usage" --quiet
check_eq "whole file" '["lines.txt"]' "$(usage "$SCRATCH/whole.usage" '[d["id"] for d in u["documents"]]')"

# A directory: sorted relative paths; a binary file is skipped with a warning.
cp -r "$FIX/docs" "$SCRATCH/docs"
printf '\x89PNG\r\n\x1a\n\x00\x00' > "$SCRATCH/docs/logo.png"
out=$("$MOESLICE" profile --model "$MODEL" --corpus "$SCRATCH/docs" --out "$SCRATCH/dir.usage" --quiet 2>&1) && pass || fail "directory profile: $out"
grep -q "skipped 1 binary file" <<<"$out" && pass || fail "no binary-file warning: $out"
check_eq "directory ids" '["a.txt", "notes.md", "src/hello.py"]' "$(usage "$SCRATCH/dir.usage" '[d["id"] for d in u["documents"]]')"

# --field, --max-docs, --max-tokens.
/usr/bin/python3 -c "
import json
with open('$SCRATCH/body.jsonl', 'w') as f:
    for i, t in enumerate(['one two three', 'four five', 'six']):
        f.write(json.dumps({'body': t, 'id': f'b{i}'}) + '\n')"
expect_ok -- "$MOESLICE" profile --model "$MODEL" --corpus "$SCRATCH/body.jsonl" --field body --out "$SCRATCH/body.usage" --quiet
check_eq "--field" 3 "$(usage "$SCRATCH/body.usage" 'len(u["documents"])')"
expect_ok -- "$MOESLICE" profile --model "$MODEL" --corpus "$FIX/text.jsonl" --max-docs 2 --out "$SCRATCH/max.usage" --quiet
check_eq "--max-docs" 2 "$(usage "$SCRATCH/max.usage" 'len(u["documents"])')"
expect_ok -- "$MOESLICE" profile --model "$MODEL" --corpus "$SCRATCH/body.jsonl" --field body --max-tokens 4 --out "$SCRATCH/maxt.usage" --quiet
check_eq "--max-tokens" 2 "$(usage "$SCRATCH/maxt.usage" 'len(u["documents"])')"

# --skip-bad: bad lines counted and reported, the rest profiled.
{
  echo '{"text": "good one", "id": "g1"}'
  echo '{"text": "no closing brace"'
  echo '{"input_ids": [1, 99999]}'
  echo '{"text": ""}'
  echo '{"text": "good two", "id": "g2"}'
} > "$SCRATCH/mixed.jsonl"
out=$("$MOESLICE" profile --model "$MODEL" --corpus "$SCRATCH/mixed.jsonl" --skip-bad --out "$SCRATCH/mixed.usage" --quiet 2>&1) && pass || fail "--skip-bad: $out"
grep -q "skipped 3 bad records" <<<"$out" && pass || fail "no skip count: $out"
grep -q "mixed.jsonl:2: invalid JSON" <<<"$out" && pass || fail "no first example: $out"
check_eq "--skip-bad documents" '["g1", "g2"]' "$(usage "$SCRATCH/mixed.usage" '[d["id"] for d in u["documents"]]')"

# logits reads the same shapes.
expect_ok -- "$MOESLICE" logits --model "$MODEL" --corpus "$FIX/text.jsonl" --out "$SCRATCH/text.logits"

# Refusals: exit 2, file:line named, nothing written.
expect_error 2 "mixed.jsonl:2: invalid JSON" -- "$MOESLICE" profile --model "$MODEL" --corpus "$SCRATCH/mixed.jsonl" --out "$SCRATCH/x.usage"
echo '{"input_ids": [1, 99999]}' > "$SCRATCH/vocab.jsonl"
expect_error 2 "vocab.jsonl:1: input_ids\[1\] is 99999, outside the model's vocabulary" -- "$MOESLICE" profile --model "$MODEL" --corpus "$SCRATCH/vocab.jsonl" --out "$SCRATCH/x.usage"
printf 'fine\nbroken \xff byte\n' > "$SCRATCH/latin.txt"
expect_error 2 "latin.txt:2: invalid UTF-8" -- "$MOESLICE" profile --model "$MODEL" --corpus "$SCRATCH/latin.txt" --out "$SCRATCH/x.usage"
expect_error 2 "latin.txt:2: invalid UTF-8" -- "$MOESLICE" logits --model "$MODEL" --corpus "$SCRATCH/latin.txt" --one-doc-per-line --out "$SCRATCH/x.usage"
echo '{"title": "x"}' > "$SCRATCH/nofield.jsonl"
expect_error 2 'nofield.jsonl:1: missing "text"' -- "$MOESLICE" profile --model "$MODEL" --corpus "$SCRATCH/nofield.jsonl" --out "$SCRATCH/x.usage"
expect_error 2 "text.jsonl:1: .*needs a tokenizer" -- "$MOESLICE" profile --model "$BARE" --corpus "$FIX/text.jsonl" --out "$SCRATCH/x.usage"
expect_error 2 "lines.txt: is plain text, which needs a tokenizer" -- "$MOESLICE" profile --model "$BARE" --corpus "$FIX/lines.txt" --out "$SCRATCH/x.usage"
expect_error 2 "no BOS token" -- "$MOESLICE" profile --model "$MODEL" --corpus "$FIX/text.jsonl" --add-bos --out "$SCRATCH/x.usage"
expect_error 2 "missing.jsonl: no such" -- "$MOESLICE" profile --model "$MODEL" --corpus "$SCRATCH/missing.jsonl" --out "$SCRATCH/x.usage"
printf '\n\n' > "$SCRATCH/blank.jsonl"
expect_error 2 "blank.jsonl: no documents" -- "$MOESLICE" profile --model "$MODEL" --corpus "$SCRATCH/blank.jsonl" --out "$SCRATCH/x.usage"
expect_error 2 "<stdin>:1: invalid JSON" -- bash -c 'echo "{\"text\": \"x\"" | "$0" profile --model "$1" --corpus - --out "$2"' "$MOESLICE" "$MODEL" "$SCRATCH/x.usage"
[ ! -e "$SCRATCH/x.usage" ] && pass || fail "a refused command left output behind"

# --add-bos with a tokenizer that has a BOS (OLMoE's with a TemplateProcessing post-processor).
/usr/bin/python3 -c "
import json
t = json.load(open('$DATA/tokenizers/olmoe-tokenizer.json'))
t['post_processor'] = {'type': 'TemplateProcessing',
  'single': [{'SpecialToken': {'id': '<|endoftext|>', 'type_id': 0}}, {'Sequence': {'id': 'A', 'type_id': 0}}],
  'pair': [], 'special_tokens': {'<|endoftext|>': {'id': '<|endoftext|>', 'ids': [50279], 'tokens': ['<|endoftext|>']}}}
json.dump(t, open('$SCRATCH/bos-tokenizer.json', 'w'))"
expect_ok -- "$MOESLICE" profile --model "$MODEL" --tokenizer "$SCRATCH/bos-tokenizer.json" --add-bos --corpus "$FIX/text.jsonl" --out "$SCRATCH/bos.usage" --quiet
check_eq "--add-bos adds one token per document" "$((expected_tokens + 5))" "$(usage "$SCRATCH/bos.usage" 'u["sources"][0]["tokens"]')"

finish
