#!/usr/bin/env bash
# Multiple-choice accuracy on hand-made tasks whose answer is known for ANY model: a choice that is
# another choice plus more text has a strictly lower summed log-likelihood (every extra token
# adds a log-probability below zero), so `acc` must pick the shorter one. Half of the tasks mark
# the shorter choice right and half the longer one: acc is exactly 0.5 overall, 1 and 0 per
# domain. Runs on a random EMO-shaped model with the bundled example's tokenizer.
source "$(dirname "$0")/lib.bash"
TOKENIZER="$SRC/examples/models/tokenizer.json"

"$MOESLICE" make-random --family emo --layers 2 --hidden 64 --heads 4 --experts 8 --top-k 3 \
  --expert-width 32 --vocab 4096 --seed 3 --out "$SCRATCH/model" >/dev/null

contexts=("def main(" "The President said that" "Permission is hereby granted" "#include <stdio"
  "From: alice@example.org" "NAME\n       ls - list")
: >"$SCRATCH/tasks.jsonl"
i=0
for context in "${contexts[@]}"; do
  # shorter choice right (domain "prefix-right"), longer choice right ("longer-right")
  printf '{"id": "s%d", "domain": "prefix-right", "context": "%s", "choices": [" the", " the end of it"], "answer": 0}\n' \
    "$i" "$context" >>"$SCRATCH/tasks.jsonl"
  printf '{"id": "l%d", "domain": "longer-right", "context": "%s", "choices": [" and so on and on", " and"], "answer": 0}\n' \
    "$i" "$context" >>"$SCRATCH/tasks.jsonl"
  i=$((i + 1))
done

expect_ok -- "$MOESLICE" eval --model "$SCRATCH/model" --tokenizer "$TOKENIZER" \
  --tasks "$SCRATCH/tasks.jsonl" --json "$SCRATCH/mc.json"
python3 - "$SCRATCH/mc.json" <<'PY' && pass || fail "acc is not the known answer"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["tasks"] == 12, d
assert d["acc"] == 0.5, d["acc"]
assert d["domains"]["prefix-right"]["acc"] == 1.0, d["domains"]
assert d["domains"]["longer-right"]["acc"] == 0.0, d["domains"]
PY

# The same through a keep plan (routing restricted): still exact, whatever the experts.
printf '{"experts_kept_per_layer": [[0, 2, 7], [1, 3, 7]]}\n' >"$SCRATCH/plan.json"
expect_ok -- "$MOESLICE" eval --model "$SCRATCH/model" --tokenizer "$TOKENIZER" \
  --tasks "$SCRATCH/tasks.jsonl" --keep "$SCRATCH/plan.json" --json "$SCRATCH/mc-keep.json"
python3 -c "import json,sys; d=json.load(open(sys.argv[1])); assert d['acc'] == 0.5, d" \
  "$SCRATCH/mc-keep.json" && pass || fail "acc under a plan is not the known answer"
finish
