#!/usr/bin/env bash
# `moeslice profile` against the PyTorch reference for every forward-pass family (counts, router
# mass, gate x output norm, gate weights), with and without a keep plan; a profile without
# gate_weight (written before it was recorded) still ranks and merges; `merge` of two halves equals the whole;
# corrupt usage files and mismatched merges are refused.
source "$(dirname "$0")/lib.bash"
require_torch
HERE="$(cd "$(dirname "$0")" && pwd)"

$PY "$REF/make_tiny.py" --all "$SCRATCH/tiny" >/dev/null
$PY - "$SCRATCH" <<'PYEOF'
import json, random, sys
random.seed(7)
with open(f"{sys.argv[1]}/corpus.jsonl", "w") as f:
    for i, n in enumerate([6, 19, 40, 3, 27, 11]):
        f.write(json.dumps({"id": f"doc{i}", "input_ids": [random.randrange(100) for _ in range(n)]}) + "\n")
PYEOF
CORPUS="$SCRATCH/corpus.jsonl"

for model in "$SCRATCH"/tiny/*/; do
  name=$(basename "$model")
  $PY "$REF/reference_forward.py" --model "$model" --corpus "$CORPUS" --out "$SCRATCH/$name.ref.safetensors" >/dev/null 2>&1 || { fail "reference failed on $name"; continue; }
  expect_ok -- "$MOESLICE" profile --model "$model" --corpus "$CORPUS" --out "$SCRATCH/$name.usage.safetensors" --quiet
  expect_ok -- $PY "$HERE/check_usage.py" "$SCRATCH/$name.usage.safetensors" "$SCRATCH/$name.ref.safetensors" "$model/config.json"
done

# Restricted routing: the same plan in both.
model="$SCRATCH/tiny/olmoe"
layers=$($PY -c "import json; print(json.load(open('$model/config.json'))['num_hidden_layers'])")
$PY -c "import json; json.dump({'experts_kept_per_layer': [[0, 2, 3, 5]] * $layers}, open('$SCRATCH/keep.json', 'w'))"
$PY "$REF/reference_forward.py" --model "$model" --corpus "$CORPUS" --keep "$SCRATCH/keep.json" --out "$SCRATCH/keep.ref.safetensors" >/dev/null 2>&1
expect_ok -- "$MOESLICE" profile --model "$model" --corpus "$CORPUS" --keep "$SCRATCH/keep.json" --out "$SCRATCH/keep.usage.safetensors" --quiet
expect_ok -- $PY "$HERE/check_usage.py" "$SCRATCH/keep.usage.safetensors" "$SCRATCH/keep.ref.safetensors" "$model/config.json"

# merge(first half, second half) == whole, tensor for tensor.
head -n 3 "$CORPUS" > "$SCRATCH/a.jsonl"; tail -n +4 "$CORPUS" > "$SCRATCH/b.jsonl"
"$MOESLICE" profile --model "$model" --corpus "$SCRATCH/a.jsonl" --out "$SCRATCH/a.usage" --quiet >/dev/null
"$MOESLICE" profile --model "$model" --corpus "$SCRATCH/b.jsonl" --out "$SCRATCH/b.usage" --quiet >/dev/null
expect_ok -- "$MOESLICE" merge --out "$SCRATCH/merged.usage" "$SCRATCH/a.usage" "$SCRATCH/b.usage"
$PY -c "
import sys, json; sys.path.insert(0, '$REF')
from safetensors_io import load_file
import torch
a, am = load_file('$SCRATCH/merged.usage'); b, bm = load_file('$SCRATCH/olmoe.usage.safetensors')
assert set(a) == set(b)
for k in a: assert torch.equal(a[k], b[k]), k
ai, bi = json.loads(am['moeslice_usage']), json.loads(bm['moeslice_usage'])
ai.pop('sources'); bi.pop('sources')
assert ai == bi, (ai, bi)
" && pass || fail "merge of the halves differs from the whole"

# A profile written before gate_weight was recorded still ranks and merges (read as zeros).
$PY -c "
import sys; sys.path.insert(0, '$REF')
from safetensors_io import load_file, save_file
t, meta = load_file('$SCRATCH/olmoe.usage.safetensors')
del t['gate_weight']
save_file('$SCRATCH/old.usage', t, meta)
" && pass || fail "writing a profile without gate_weight"
expect_ok -- "$MOESLICE" rank --usage "$SCRATCH/old.usage" --keep 4 --out "$SCRATCH/old-rank.json"
expect_ok -- "$MOESLICE" rank --usage "$SCRATCH/olmoe.usage.safetensors" --keep 4 --out "$SCRATCH/new-rank.json"
$PY -c 'import json, sys; a, b = (json.load(open(p)) for p in sys.argv[1:]); assert a["experts_kept_per_layer"] == b["experts_kept_per_layer"]' \
  "$SCRATCH/old-rank.json" "$SCRATCH/new-rank.json" && pass || fail "gate_weight changed a ranking"
expect_ok -- "$MOESLICE" merge --out "$SCRATCH/old-merged.usage" "$SCRATCH/old.usage" "$SCRATCH/a.usage"

# Refusals.
"$MOESLICE" profile --model "$SCRATCH/tiny/mixtral" --corpus "$SCRATCH/a.jsonl" --out "$SCRATCH/other.usage" --quiet >/dev/null
expect_error 2 "other.usage: 'family' is \"mixtral\", but .*a.usage has \"olmoe\"" -- "$MOESLICE" merge --out "$SCRATCH/x.usage" "$SCRATCH/a.usage" "$SCRATCH/other.usage"
size=$(stat -c %s "$SCRATCH/a.usage")
head -c $((size - 10)) "$SCRATCH/a.usage" > "$SCRATCH/truncated.usage"
expect_error 2 "truncated.usage: invalid safetensors file" -- "$MOESLICE" merge --out "$SCRATCH/x.usage" "$SCRATCH/truncated.usage"
expect_error 2 "not a usage profile" -- "$MOESLICE" merge --out "$SCRATCH/x.usage" "$SCRATCH/olmoe.ref.safetensors"
expect_error 2 "already exists" -- "$MOESLICE" profile --model "$model" --corpus "$CORPUS" --out "$SCRATCH/a.usage"
echo '{"input_ids": [1, 2, "x"]}' > "$SCRATCH/bad.jsonl"
expect_error 2 "bad.jsonl:1" -- "$MOESLICE" profile --model "$model" --corpus "$SCRATCH/bad.jsonl" --out "$SCRATCH/x.usage"
[ ! -e "$SCRATCH/x.usage" ] && pass || fail "a refused command left output behind"

finish
