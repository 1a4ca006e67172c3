#!/usr/bin/env bash
# The bundled example models (examples/models): moeslice reads each one as the `emo` family, its
# tokenizer agrees with the training script's, and `moeslice logits` on held-out text (a few test
# documents of every domain, longer than the 256-token context, so windows are exercised) equals
# the training script's own forward on the saved BF16 weights to 1e-5 relative.
# Exit 77 (skip) without torch.
source "$(dirname "$0")/lib.bash"
require_torch

# Two test documents of each domain, as text.
for domain_file in "$SRC"/examples/data/*/test.jsonl; do head -n 2 "$domain_file"; done \
  >"$SCRATCH/heldout.jsonl"

for model in emo-style random-pools standard; do
  dir="$SRC/examples/models/$model"
  if [ ! -f "$dir/model.safetensors" ]; then
    fail "$dir/model.safetensors is missing"
    continue
  fi
  expect_ok -- "$MOESLICE" inspect --model "$dir"
  expect_ok -- "$MOESLICE" logits --model "$dir" --corpus "$SCRATCH/heldout.jsonl" \
    --out "$SCRATCH/$model.safetensors"
  if $PY "$SRC/examples/train/train_emo.py" --check-logits "$SCRATCH/$model.safetensors" \
    --model "$dir" --corpus "$SCRATCH/heldout.jsonl" >"$SCRATCH/$model.check" 2>&1; then
    pass
  else
    fail "$model: logits differ from the training script's forward: $(tail -n 3 "$SCRATCH/$model.check")"
  fi
done

# The tokenizer: moeslice tokenize equals the training script's encoder on every domain.
"$PY" - "$SRC" "$MOESLICE" "$SCRATCH" <<'PY' && pass || fail "tokenizer mismatch"
import json, subprocess, sys
src, moeslice, scratch = sys.argv[1:4]
sys.path.insert(0, f"{src}/examples/train")
from train_tokenizer import Encoder
tokenizer = f"{src}/examples/models/tokenizer.json"
encoder = Encoder(tokenizer)
for i, line in enumerate(open(f"{scratch}/heldout.jsonl", encoding="utf-8")):
    text = json.loads(line)["text"]
    path = f"{scratch}/doc{i}.txt"
    open(path, "w", encoding="utf-8").write(text)
    out = subprocess.run([moeslice, "tokenize", "--tokenizer", tokenizer, "--input", path],
                         capture_output=True, text=True, check=True).stdout
    assert [int(t) for t in out.split()] == encoder.encode(text), f"document {i} tokenises differently"
PY
finish
