#!/usr/bin/env bash
# The forward-pass flags every model-running command shares (--threads, --max-seq, --compute):
# `eval`, `compare` and `select` run with --compute bf16 and land close to fp32 (perplexity,
# KL against the full model, selection scores), --compute fp32 is the default bit for bit, and a
# bad --compute value is a command-line error (exit 2) on each of the five commands. Exit 77
# (skip) for the bf16 part when the binary was built without oneDNN.
source "$(dirname "$0")/lib.bash"

"$MOESLICE" make-random --family qwen3_moe --seed 4 --out "$SCRATCH/model" >/dev/null
$PY - "$SCRATCH" <<'PYEOF'
import json, random, sys
random.seed(5)
with open(f"{sys.argv[1]}/corpus.jsonl", "w") as f:
    for i, n in enumerate([24, 40, 17, 33, 29]):
        f.write(json.dumps({"id": f"d{i}", "domain": "ab"[i % 2],
                            "input_ids": [random.randrange(256) for _ in range(n)]}) + "\n")
json.dump({"experts_kept_per_layer": [[0, 2, 4, 6], [1, 3, 5, 7]]}, open(f"{sys.argv[1]}/plan.json", "w"))
PYEOF
M=(--model "$SCRATCH/model")
C=(--corpus "$SCRATCH/corpus.jsonl")

# A bad value is refused by every command before anything runs.
for args in "logits --out $SCRATCH/x.out" "profile --out $SCRATCH/x.out" \
  "select --keep 50% --out $SCRATCH/x.out" "eval --json $SCRATCH/x.json" \
  "compare --plan $SCRATCH/plan.json --json $SCRATCH/x.json"; do
  expect_error 2 "^--compute: .*fp16" -- "$MOESLICE" $args "${M[@]}" "${C[@]}" --compute fp16
done
[ ! -e "$SCRATCH/x.out" ] && [ ! -e "$SCRATCH/x.json" ] && pass || fail "a refused command wrote output"

# fp32 is the default: an explicit --compute fp32 gives the same bytes.
"$MOESLICE" eval "${M[@]}" "${C[@]}" --threads 2 --max-seq 16 --json "$SCRATCH/eval-default.json" >/dev/null
expect_ok -- "$MOESLICE" eval "${M[@]}" "${C[@]}" --threads 2 --max-seq 16 --compute fp32 --json "$SCRATCH/eval-fp32.json"
cmp -s "$SCRATCH/eval-default.json" "$SCRATCH/eval-fp32.json" && pass || fail "--compute fp32 is not the default"

probe=$("$MOESLICE" eval "${M[@]}" "${C[@]}" --compute bf16 2>&1 >/dev/null)
if [ $? -ne 0 ] && grep -q "oneDNN" <<<"$probe"; then
  echo "SKIP: built without oneDNN ($probe)"
  exit 77
fi

# eval: perplexity and top-1 within bf16's error of fp32 (a 4-bit-mantissa-ish difference, not a
# different model), per domain too.
expect_ok -- "$MOESLICE" eval "${M[@]}" "${C[@]}" --threads 2 --max-seq 16 --compute bf16 --json "$SCRATCH/eval-bf16.json"
$PY - "$SCRATCH/eval-fp32.json" "$SCRATCH/eval-bf16.json" <<'PYEOF' && pass || fail "eval --compute bf16 is far from fp32"
import json, sys
fp32, bf16 = (json.load(open(p)) for p in sys.argv[1:3])
assert fp32["tokens"] == bf16["tokens"]
assert fp32 != bf16, "bf16 gave exactly the fp32 result: was it used?"
for a, b in [(fp32, bf16)] + [(fp32["domains"][d], bf16["domains"][d]) for d in fp32["domains"]]:
    assert abs(a["perplexity"] - b["perplexity"]) <= 0.01 * a["perplexity"], (a, b)
    assert abs(a["top1_accuracy"] - b["top1_accuracy"]) <= 0.05, (a, b)
PYEOF

# compare: both runs in bf16; the plan's KL and agreement match the fp32 comparison closely.
expect_ok -- "$MOESLICE" compare "${M[@]}" "${C[@]}" --plan "$SCRATCH/plan.json" --threads 2 --json "$SCRATCH/compare-fp32.json"
expect_ok -- "$MOESLICE" compare "${M[@]}" "${C[@]}" --plan "$SCRATCH/plan.json" --threads 2 --compute bf16 --json "$SCRATCH/compare-bf16.json"
$PY - "$SCRATCH/compare-fp32.json" "$SCRATCH/compare-bf16.json" <<'PYEOF' && pass || fail "compare --compute bf16 is far from fp32"
import json, sys
fp32, bf16 = (json.load(open(p)) for p in sys.argv[1:3])
assert fp32 != bf16
for a, b in zip(fp32["variants"], bf16["variants"]):
    m, n = a["metrics"], b["metrics"]
    assert abs(m["perplexity"] - n["perplexity"]) <= 0.01 * m["perplexity"], (m, n)
    if "kl" in m:
        assert abs(m["kl"] - n["kl"]) <= 0.1 * m["kl"] + 1e-3, (m, n)
        assert abs(m["top1_agreement"] - n["top1_agreement"]) <= 0.1, (m, n)
PYEOF

# select: the scores it chose by are within bf16's error of fp32's, and its usage profile says
# which arithmetic measured it.
expect_ok -- "$MOESLICE" select "${M[@]}" "${C[@]}" --keep 50% --threads 2 --quiet --out "$SCRATCH/select-fp32.json"
expect_ok -- "$MOESLICE" select "${M[@]}" "${C[@]}" --keep 50% --threads 2 --quiet --compute bf16 \
  --out "$SCRATCH/select-bf16.json" --usage-out "$SCRATCH/select-bf16.usage"
$PY - "$SCRATCH/select-fp32.json" "$SCRATCH/select-bf16.json" "$SCRATCH/select-bf16.usage" <<'PYEOF' && pass || fail "select --compute bf16 is far from fp32"
import json, struct, sys
fp32, bf16 = (json.load(open(p)) for p in sys.argv[1:3])
assert fp32["scores"] != bf16["scores"]
for row32, row16 in zip(fp32["scores"], bf16["scores"]):
    total = sum(row32)
    assert all(abs(a - b) <= 0.02 * total for a, b in zip(row32, row16)), (row32, row16)
with open(sys.argv[3], "rb") as f:
    (n,) = struct.unpack("<Q", f.read(8))
    info = json.loads(json.loads(f.read(n))["__metadata__"]["moeslice_usage"])
assert info["compute"] == "bf16", info
PYEOF

finish
