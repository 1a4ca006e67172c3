#!/usr/bin/env bash
# The whole command line on gpt-oss (issue 19): profile, rank, select, slice, unslice, eval,
# compare and report on gpt-oss-20b's released config shrunk (tests/data/configs: 4 layers
# alternating sliding/full attention, 8 experts, top-4) with MXFP4 experts as released, on
# documents longer than its 128-token window. The plans slice; the sliced model computes what the
# full model computes under the plan (compare: identical logits), and unslice restores the
# original tensors byte for byte.
#
# Usage: gpt_oss_pipeline.sh MOESLICE_BINARY SCRATCH_DIR. Exit 77 (skip) without torch.
source "$(dirname "$0")/lib.bash"
require_torch

m="$SCRATCH/gpt_oss"
$PY "$REF/make_tiny.py" --config "$SRC/tests/data/configs/gpt-oss-20b.json" --out "$m" \
  --dtype BF16 --mxfp4 >/dev/null
$PY - "$SCRATCH/corpus.jsonl" <<'PYEOF'
import json, random, sys
rng = random.Random(19)
with open(sys.argv[1], "w") as f:
    for n, length in enumerate((3, 40, 150, 200)):
        f.write(json.dumps({"id": f"d{n}", "input_ids": [rng.randrange(128) for _ in range(length)]}) + "\n")
PYEOF

expect_ok -- "$MOESLICE" profile --model "$m" --corpus "$SCRATCH/corpus.jsonl" --out "$m-usage.safetensors"
expect_ok -- "$MOESLICE" rank --usage "$m-usage.safetensors" --keep 5 --out "$m-rank.json"
expect_ok -- "$MOESLICE" select --model "$m" --corpus "$SCRATCH/corpus.jsonl" --keep 5 --out "$m-select.json"
for plan in rank select; do
  expect_ok -- "$MOESLICE" slice --model "$m" --plan "$m-$plan.json" --out "$m-$plan-sliced"
done
expect_ok -- "$MOESLICE" unslice --model "$m" --sliced "$m-rank-sliced" --out "$m-unsliced"
$PY - "$REF" "$m" "$m-unsliced" <<'PYEOF' && pass || fail "unslice did not restore the original tensors"
import os, sys
sys.path.insert(0, sys.argv[1])
import safetensors_io
a, b = (safetensors_io.load_checkpoint(d) for d in sys.argv[2:4])
assert sorted(a) == sorted(b), (sorted(set(a) ^ set(b)))[:4]
for name in a:
    assert a[name].dtype == b[name].dtype and a[name].equal(b[name]), name
PYEOF
expect_ok -- "$MOESLICE" eval --model "$m" --corpus "$SCRATCH/corpus.jsonl" --keep "$m-rank.json"
expect_ok -- "$MOESLICE" compare --model "$m" --plan "$m-select.json" --sliced "$m-select-sliced" \
  --corpus "$SCRATCH/corpus.jsonl" --json "$m-compare.json"
expect_ok -- "$MOESLICE" report --usage "$m-usage.safetensors" --plan "$m-rank.json" \
  --compare "$m-compare.json" --out "$m-report.html"
check_sliced_model gpt_oss "$m" "$m-select.json" "$SCRATCH/corpus.jsonl"

finish
