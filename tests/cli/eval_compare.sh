#!/usr/bin/env bash
# `moeslice eval` against the PyTorch reference's perplexity and next-token accuracy; `--keep`
# and `compare` scoring a plan exactly as the sliced checkpoint; multiple-choice tasks; refusals.
source "$(dirname "$0")/lib.bash"
require_torch

"$MOESLICE" make-random --family qwen3_moe --seed 4 --out "$SCRATCH/model" >/dev/null
$PY - "$SCRATCH" <<'PYEOF'
import json, random, sys
random.seed(5)
with open(f"{sys.argv[1]}/corpus.jsonl", "w") as f:
    for i, n in enumerate([12, 30, 7, 25]):
        f.write(json.dumps({"id": f"d{i}", "domain": "a" if i % 2 else "b",
                            "input_ids": [random.randrange(256) for _ in range(n)]}) + "\n")
json.dump({"experts_kept_per_layer": [[0, 2, 4, 6], [1, 3, 5, 7]]}, open(f"{sys.argv[1]}/plan.json", "w"))
PYEOF

# eval == the reference's logits scored in Python.
$PY "$REF/reference_forward.py" --model "$SCRATCH/model" --corpus "$SCRATCH/corpus.jsonl" --out "$SCRATCH/ref.safetensors" >/dev/null 2>&1
expect_ok -- "$MOESLICE" eval --model "$SCRATCH/model" --corpus "$SCRATCH/corpus.jsonl" --json "$SCRATCH/eval.json"
$PY - "$SCRATCH" "$REF" <<'PYEOF' && pass || fail "eval differs from the reference"
import json, math, sys
sys.path.insert(0, sys.argv[2])
import torch
from safetensors_io import load_file
ref, _ = load_file(f"{sys.argv[1]}/ref.safetensors")
docs = [json.loads(l) for l in open(f"{sys.argv[1]}/corpus.jsonl")]
nll, n, correct = 0.0, 0, 0
for i, d in enumerate(docs):
    logits = ref[f"doc.{i}"].double()
    ids = torch.tensor(d["input_ids"])
    logp = torch.log_softmax(logits[:-1], -1)
    nll -= logp.gather(1, ids[1:, None]).sum().item()
    correct += (logits[:-1].argmax(-1) == ids[1:]).sum().item()
    n += len(ids) - 1
got = json.load(open(f"{sys.argv[1]}/eval.json"))
assert got["tokens"] == n, (got["tokens"], n)
assert abs(got["nll"] - nll / n) < 1e-5 * max(1, nll / n), (got["nll"], nll / n)
assert abs(got["perplexity"] - math.exp(nll / n)) / math.exp(nll / n) < 1e-5
assert abs(got["top1_accuracy"] - correct / n) < 1e-12
assert set(got["domains"]) == {"a", "b"}
PYEOF

# --keep equals the sliced checkpoint; compare puts both beside the full model.
"$MOESLICE" slice --model "$SCRATCH/model" --plan "$SCRATCH/plan.json" --out "$SCRATCH/sliced" >/dev/null
"$MOESLICE" eval --model "$SCRATCH/model" --corpus "$SCRATCH/corpus.jsonl" --keep "$SCRATCH/plan.json" --json "$SCRATCH/keep.json" >/dev/null
"$MOESLICE" eval --model "$SCRATCH/sliced" --corpus "$SCRATCH/corpus.jsonl" --json "$SCRATCH/sliced.json" >/dev/null
expect_ok -- "$MOESLICE" compare --model "$SCRATCH/model" --plan "$SCRATCH/plan.json" --sliced "$SCRATCH/sliced" --corpus "$SCRATCH/corpus.jsonl" --json "$SCRATCH/compare.json"
$PY - "$SCRATCH" <<'PYEOF' && pass || fail "a plan does not score as its slice"
import json, sys
keep = json.load(open(f"{sys.argv[1]}/keep.json")); sliced = json.load(open(f"{sys.argv[1]}/sliced.json"))
for key in ("nll", "top1_accuracy", "tokens"):
    assert abs(keep[key] - sliced[key]) <= 1e-6 * max(1, abs(keep[key])), key
c = json.load(open(f"{sys.argv[1]}/compare.json"))
full, plan, sl = c["variants"]
assert full["kind"] == "full" and plan["kind"] == "plan" and sl["kind"] == "sliced"
assert abs(plan["metrics"]["kl"] - sl["metrics"]["kl"]) < 1e-6
assert plan["parameters"] == sl["parameters"] and plan["fraction_kept"] == 0.5
assert "perplexity" in plan["change"]
PYEOF

# Multiple-choice tasks need a tokenizer; with the OLMoE one the task file is read and scored.
"$MOESLICE" make-random --family olmoe --vocab 50280 --seed 2 --out "$SCRATCH/text-model" >/dev/null
cp "$(dirname "$0")/../data/tokenizers/olmoe-tokenizer.json" "$SCRATCH/text-model/tokenizer.json"
printf '{"context": "The capital of France is", "choices": [" Paris", " a cat", " blue"], "answer": 0, "domain": "geo"}\n' > "$SCRATCH/tasks.jsonl"
expect_ok -- "$MOESLICE" eval --model "$SCRATCH/text-model" --tasks "$SCRATCH/tasks.jsonl" --json "$SCRATCH/mc.json"
$PY -c "import json; d = json.load(open('$SCRATCH/mc.json')); assert d['tasks'] == 1 and d['domains']['geo']['tasks'] == 1" && pass || fail "MC results missing"

# Refusals.
expect_error 2 "nothing to evaluate" -- "$MOESLICE" eval --model "$SCRATCH/model"
expect_error 2 "needs at least one --plan or --sliced" -- "$MOESLICE" compare --model "$SCRATCH/model" --corpus "$SCRATCH/corpus.jsonl"
printf '{"context": "x", "choices": ["a"], "answer": 3}\n' > "$SCRATCH/bad-tasks.jsonl"
expect_error 2 "bad-tasks.jsonl:1" -- "$MOESLICE" eval --model "$SCRATCH/text-model" --tasks "$SCRATCH/bad-tasks.jsonl" --json "$SCRATCH/x.json"
expect_error 2 "already exists" -- "$MOESLICE" eval --model "$SCRATCH/model" --corpus "$SCRATCH/corpus.jsonl" --json "$SCRATCH/eval.json"
[ ! -e "$SCRATCH/x.json" ] && pass || fail "a refused eval left output behind"

finish
