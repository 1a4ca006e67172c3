#!/usr/bin/env bash
# The whole command line on group-routed families (issue 18): profile, rank, select, slice,
# unslice, eval, compare and report on a tiny glm4_moe (2 groups of 4, 1 per token, top-3) and on
# DeepSeek-V3's released config shrunk (8 groups of 4, 4 per token, top-8). rank and select keep
# the same number of experts in every group by default, so their plans slice; a keep count that
# cannot balance is refused by name, and --no-group-balance plans are refused by slice.
#
# Usage: group_pipeline.sh MOESLICE_BINARY SCRATCH_DIR. Exit 77 (skip) without torch.
source "$(dirname "$0")/lib.bash"
require_torch

$PY "$REF/make_tiny.py" --variant glm4_moe --out "$SCRATCH/glm4_moe" --corpus "$SCRATCH/corpus.jsonl" >/dev/null
$PY "$REF/make_tiny.py" --config "$SRC/tests/data/configs/deepseek-v3.json" --out "$SCRATCH/deepseek_v3" >/dev/null

balanced() {  # balanced PLAN EXPERTS GROUPS PER_GROUP: every MoE layer keeps PER_GROUP per group
  $PY - "$@" <<'PYEOF'
import json, sys
plan = json.load(open(sys.argv[1]))["experts_kept_per_layer"]
experts, groups, per = (int(a) for a in sys.argv[2:5])
layers = [k for k in plan if k is not None]
assert layers, "no MoE layer"
for kept in layers:
    assert len(kept) == groups * per, kept
    counts = [0] * groups
    for e in kept:
        counts[e * groups // experts] += 1
    assert counts == [per] * groups, (kept, counts)
PYEOF
}

for case in "glm4_moe 6 8 2 3" "deepseek_v3 16 32 8 2"; do
  read -r name keep experts groups per <<<"$case"
  m="$SCRATCH/$name"
  expect_ok -- "$MOESLICE" profile --model "$m" --corpus "$SCRATCH/corpus.jsonl" --out "$m-usage.safetensors"
  expect_ok -- "$MOESLICE" rank --usage "$m-usage.safetensors" --keep "$keep" --out "$m-rank.json"
  expect_ok -- "$MOESLICE" select --model "$m" --corpus "$SCRATCH/corpus.jsonl" --keep "$keep" --out "$m-select.json"
  for plan in rank select; do
    expect_ok -- balanced "$m-$plan.json" "$experts" "$groups" "$per"
    expect_ok -- "$MOESLICE" slice --model "$m" --plan "$m-$plan.json" --out "$m-$plan-sliced"
  done
  expect_ok -- "$MOESLICE" unslice --model "$m" --sliced "$m-rank-sliced" --out "$m-unsliced"
  expect_ok -- "$MOESLICE" eval --model "$m" --corpus "$SCRATCH/corpus.jsonl" --keep "$m-rank.json"
  expect_ok -- "$MOESLICE" compare --model "$m" --plan "$m-select.json" --sliced "$m-rank-sliced" \
    --corpus "$SCRATCH/corpus.jsonl" --json "$m-compare.json"
  expect_ok -- "$MOESLICE" report --usage "$m-usage.safetensors" --plan "$m-rank.json" \
    --compare "$m-compare.json" --out "$m-report.html"
done

# Refusals: a count that cannot balance (by name), and a --no-group-balance plan at slice time.
m="$SCRATCH/glm4_moe"
expect_error 2 "routes in 2 groups of 4 .*keep at least 6; or pass --no-group-balance" -- \
  "$MOESLICE" rank --usage "$m-usage.safetensors" --keep 4 --out "$SCRATCH/x.json"
expect_error 2 "a group-balanced plan keeps a multiple of 2" -- \
  "$MOESLICE" select --model "$m" --corpus "$SCRATCH/corpus.jsonl" --keep 7 --out "$SCRATCH/x.json"
expect_error 2 "every group must keep at least 2" -- \
  "$MOESLICE" rank --usage "$SCRATCH/deepseek_v3-usage.safetensors" --keep 8 --out "$SCRATCH/x.json"
expect_ok -- "$MOESLICE" rank --usage "$m-usage.safetensors" --keep 5 --no-group-balance --out "$m-free.json"
expect_ok -- "$MOESLICE" eval --model "$m" --corpus "$SCRATCH/corpus.jsonl" --keep "$m-free.json"
write_plan "$SCRATCH/one-per-group.plan" null "[0,4]" "[1,5]"
expect_error 2 "layer 1 keeps 1 expert\(s\) in each of its 2 routing groups" -- \
  "$MOESLICE" slice --model "$m" --plan "$SCRATCH/one-per-group.plan" --out "$SCRATCH/x"
[ ! -e "$SCRATCH/x" ] && [ ! -e "$SCRATCH/x.json" ] && pass || fail "a refused command left output behind"

finish
