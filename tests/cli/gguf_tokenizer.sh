#!/usr/bin/env bash
# A GGUF file's own tokenizer (issue 17): `moeslice tokenize --tokenizer FILE.gguf` gives the ids
# llama.cpp itself gives (node-llama-cpp, tests/llama/tokenize.mjs) and those of the tokenizer.json
# the GGUF was written from, on llama.cpp's tokenizer test texts, the test corpus and edge cases,
# for OLMoE's tokenizer (pre-tokenizer "olmo") and dolma2's (cl100k-style, "dbrx"). A GGUF model
# reads a text corpus with its own tokenizer (profile equals profile with --tokenizer
# tokenizer.json); a tokenizer moeslice cannot read (SentencePiece "llama") is refused by name for
# text, while token-id corpora still run.
# Usage: gguf_tokenizer.sh MOESLICE_BINARY SCRATCH_DIR. Exit 77 (skip) without torch or
# tests/llama/node_modules.
source "$(dirname "$0")/lib.bash"
require_torch
require_llama_tools
S=$SCRATCH
TOKENIZERS=$SRC/tests/data/tokenizers

# The texts: llama.cpp's tokenizer test inputs, the test corpus, and a few edge cases.
$PY - "$SRC/tests/data/tokenizer-vectors/gpt-neox-20b.inp" "$SRC/tests/data/corpus/text.jsonl" \
  "$S/texts.json" <<'PY'
import json, sys
texts = open(sys.argv[1], encoding="utf-8").read().split("\n__ggml_vocab_test__\n")
records = [json.loads(line) for line in open(sys.argv[2], encoding="utf-8") if line.strip()]
texts += [r["text"] for r in records if "text" in r]
with open(sys.argv[3] + ".corpus.jsonl", "w", encoding="utf-8") as corpus:
    for r in records:
        if "text" in r:
            corpus.write(json.dumps(r) + "\n")
texts += ["<|endoftext|>Hello<|endoftext|>", "naïve café 12345678 ９９", "日本語のテキスト、中文。",
          "tabs\tand\r\nnewlines\n\n\n  end  ", "emoji 🦙🦙 and ẞ ǅ ﬁ", "don't I'LL we'Re"]
json.dump([t for t in texts if t != ""], open(sys.argv[3], "w", encoding="utf-8"))
PY

# gguf_with NAME TOKENIZER_JSON PRE VOCAB: a tiny olmoe GGUF carrying that tokenizer.
gguf_with() {
  "$MOESLICE" make-random --family olmoe --layers 1 --hidden 32 --heads 2 --kv-heads 2 \
    --vocab "$4" --out "$S/$1-hf" >/dev/null || fail "make-random $1"
  cp "$2" "$S/$1-hf/tokenizer.json"
  $PY "$REF/hf_to_gguf.py" --gguf-py "$GGUF_PY" --model "$S/$1-hf" --out "$S/$1.gguf" \
    --tokenizer "$2" --tokenizer-pre "$3" >/dev/null || fail "hf_to_gguf $1"
}

# same_ids NAME: moeslice on the GGUF = llama.cpp on the GGUF = moeslice on tokenizer.json.
same_ids() {
  local name=$1
  node "$TOOLS/tokenize.mjs" --model "$S/$name.gguf" --texts "$S/texts.json" \
    --out "$S/$name-llama.json" 2>"$S/err" || { fail "llama.cpp tokenize $name: $(cat "$S/err")"; return; }
  $PY - "$MOESLICE" "$S/$name.gguf" "$S/$name-hf/tokenizer.json" "$S/texts.json" \
    "$S/$name-llama.json" "$S/$name-work" <<'PY' && pass || fail "$name: the ids differ"
import json, os, subprocess, sys
moeslice, gguf, tokenizer_json, texts, llama, work = sys.argv[1:]
texts = json.load(open(texts, encoding="utf-8"))
llama = json.load(open(llama))
os.makedirs(work, exist_ok=True)
paths = []
for i, text in enumerate(texts):
    paths.append(os.path.join(work, f"{i}.txt"))
    open(paths[-1], "w", encoding="utf-8", newline="").write(text)
ids = {}
for label, tokenizer in (("gguf", gguf), ("json", tokenizer_json)):
    out = subprocess.run([moeslice, "tokenize", "--tokenizer", tokenizer, "--input", *paths],
                         capture_output=True, text=True, check=True).stdout
    ids[label] = [[int(t) for t in line.split()] for line in out.split("\n")[:-1]]
bad = 0
for i, text in enumerate(texts):
    if not (ids["gguf"][i] == llama[i] == ids["json"][i]):
        bad += 1
        print(f"text {i} {text[:40]!r}: gguf {ids['gguf'][i][:12]} llama.cpp {llama[i][:12]} "
              f"tokenizer.json {ids['json'][i][:12]}", file=sys.stderr)
print(f"{len(texts) - bad} of {len(texts)} texts agree", file=sys.stderr)
sys.exit(1 if bad else 0)
PY
}

gguf_with olmoe "$TOKENIZERS/olmoe-tokenizer.json" olmo 50304
same_ids olmoe
gguf_with dolma2 "$TOKENIZERS/dolma2-tokenizer.json" dbrx 100352
same_ids dolma2

# A GGUF model reads text with its own tokenizer: profile equals profile with the tokenizer.json.
for source in gguf json; do
  tokenizer=()
  [ $source = json ] && tokenizer=(--tokenizer "$S/olmoe-hf/tokenizer.json")
  "$MOESLICE" profile --model "$S/olmoe.gguf" "${tokenizer[@]}" --corpus "$S/texts.json.corpus.jsonl" \
    --out "$S/usage-$source.safetensors" --threads 2 >/dev/null 2>"$S/err" || fail "profile ($source): $(cat "$S/err")"
done
$PY "$SRC/tests/cli/same_usage.py" --ignore sources "$S/usage-gguf.safetensors" \
  "$S/usage-json.safetensors" && pass ||
  fail "profile with the GGUF's own tokenizer differs from profile with tokenizer.json"

# SentencePiece vocabularies are refused by name for text; token ids still run.
"$MOESLICE" make-random --family olmoe --layers 1 --hidden 32 --heads 2 --kv-heads 2 --vocab 272 \
  --out "$S/spm-hf" >/dev/null || fail "make-random spm"
$PY "$REF/hf_to_gguf.py" --gguf-py "$GGUF_PY" --model "$S/spm-hf" --out "$S/spm.gguf" >/dev/null ||
  fail "hf_to_gguf spm"
expect_error 2 "needs a tokenizer, and none was given \(the GGUF's own tokenizer cannot be used: .*spm.gguf: tokenizer.ggml.model is 'llama'" -- \
  "$MOESLICE" profile --model "$S/spm.gguf" --corpus "$S/texts.json.corpus.jsonl" --out "$S/refused.st"
[ ! -e "$S/refused.st" ] && pass || fail "a refused command wrote output"
printf '{"input_ids":[1,5,9,200]}\n' >"$S/ids.jsonl"
expect_ok -- "$MOESLICE" profile --model "$S/spm.gguf" --corpus "$S/ids.jsonl" --out "$S/ids.st"
expect_error 2 "spm.gguf: tokenizer.ggml.model is 'llama'; moeslice reads GGUF tokenizers of model 'gpt2'" -- \
  "$MOESLICE" tokenize --tokenizer "$S/spm.gguf" --text "hello"

finish
