#!/usr/bin/env bash
# `moeslice rank` and `select`: rank a real profile of tiny models with every metric, weighting,
# a domain and the nonuniform budget; the plans slice and the slices check out; `select` equals
# the slow way (for each MoE layer: profile with the plan so far, rank, keep that layer); bad
# inputs exit 2 with a message and write nothing.
source "$(dirname "$0")/lib.bash"
PY=/usr/bin/python3
HERE="$(cd "$(dirname "$0")" && pwd)"
HAVE_TORCH=0
$PY -c 'import torch' 2>/dev/null && HAVE_TORCH=1

# Layer 1 of the qwen2_moe model is dense, so plans carry a null entry.
"$MOESLICE" make-random --family olmoe --layers 3 --seed 4 --out "$SCRATCH/olmoe" >/dev/null
"$MOESLICE" make-random --family emo --layers 3 --top-k 3 --seed 4 --out "$SCRATCH/emo" >/dev/null
"$MOESLICE" make-random --family qwen2_moe --layers 3 --seed 4 --set 'mlp_only_layers=[1]' --out "$SCRATCH/qwen2_moe" >/dev/null
$PY - "$SCRATCH" <<'PYEOF'
import json, random, sys
random.seed(11)
with open(f"{sys.argv[1]}/corpus.jsonl", "w") as f:
    for i, n in enumerate([9, 33, 4, 21, 14, 6]):
        domain = "code" if i % 2 == 0 else "prose"
        f.write(json.dumps({"id": f"doc{i}", "domain": domain, "input_ids": [random.randrange(256) for _ in range(n)]}) + "\n")
PYEOF
CORPUS="$SCRATCH/corpus.jsonl"

# plan_field FILE EXPR: prints a Python expression of the plan document `p`.
plan_field() { $PY -c "import json, sys; p = json.load(open(sys.argv[1])); print($2)" "$1"; }

for family in olmoe emo qwen2_moe; do
  model="$SCRATCH/$family"
  usage="$SCRATCH/$family.usage"
  expect_ok -- "$MOESLICE" profile --model "$model" --corpus "$CORPUS" --out "$usage" --quiet
  for metric in mass freq reap coverage random; do
    plan="$SCRATCH/$family-$metric.json"
    expect_ok -- "$MOESLICE" rank --usage "$usage" --keep 50% --metric "$metric" --seed 3 --out "$plan"
    [ "$(plan_field "$plan" "p['pruning_method']")" = "moeslice-rank-$metric" ] && pass || fail "$plan: pruning_method"
    $PY - "$plan" "$family" <<'PYEOF' && pass || fail "$family $metric: plan contents"
import json, sys
p = json.load(open(sys.argv[1])); family = sys.argv[2]
assert p["schema"] == 1 and p["prune_keep_k"] == 4 and p["num_experts"] == 8, p
assert p["num_shared_experts"] == (1 if family == "emo" else 0)
assert p["original_model"].endswith("/" + family)
kept = p["experts_kept_per_layer"]
assert len(kept) == 3 and len(p["scores"]) == 3 and len(p["kept_share"]) == 3
for l, ids in enumerate(kept):
    if family == "qwen2_moe" and l == 1:
        assert ids is None and p["scores"][l] is None and p["kept_share"][l] is None
        continue
    assert ids == sorted(set(ids)) and len(ids) == 4, ids
    if family == "emo": assert 7 in ids
    scores = p["scores"][l]
    routed = [e for e in range(8) if not (family == "emo" and e == 7)]
    # The kept routed experts are the best scores, ties to the lower id.
    order = sorted(routed, key=lambda e: (-scores[e], e))
    assert sorted(order[:4 - p["num_shared_experts"]] + ([7] if family == "emo" else [])) == ids
    share = p["kept_share"][l]
    assert 0 <= share["mass"] <= 1 and 0 <= share["counts"] <= 1, share
PYEOF
  done
  # The plan slices, and the slice matches the source and plan.
  expect_ok -- "$MOESLICE" slice --model "$model" --plan "$SCRATCH/$family-mass.json" --out "$SCRATCH/$family-sliced"
  [ "$(plan_field "$SCRATCH/$family-sliced/pruning_metadata.json" "p['pruning_method']")" = "moeslice-rank-mass" ] && pass || fail "pruning_metadata.json lost the method"
  if [ "$HAVE_TORCH" = 1 ]; then
    expect_ok -- $PY "$HERE/check_slice.py" "$model" "$SCRATCH/$family-sliced" "$SCRATCH/$family-mass.json"
  fi
done

# EMO: 12.5% of 8 rounds to 1, below the shared expert + 1 routed; 25% = 2 = 1 routed + 1 shared.
expect_error 2 "keeps 1 of 8 experts per layer; at least 2 are needed \(1 shared" -- "$MOESLICE" rank --usage "$SCRATCH/emo.usage" --keep 12.5% --out "$SCRATCH/x.json"
expect_ok -- "$MOESLICE" rank --usage "$SCRATCH/emo.usage" --keep 25% --out "$SCRATCH/emo-25.json"
[ "$(plan_field "$SCRATCH/emo-25.json" "p['num_experts_per_tok']")" = 2 ] && pass || fail "emo 25%: experts per token"

# Per-document weighting and a domain are recorded and change the numbers.
usage="$SCRATCH/olmoe.usage"
expect_ok -- "$MOESLICE" rank --usage "$usage" --keep 4 --per-document --out "$SCRATCH/perdoc.json"
expect_ok -- "$MOESLICE" rank --usage "$usage" --keep 4 --domain code --out "$SCRATCH/code.json"
[ "$(plan_field "$SCRATCH/perdoc.json" "p['weighting']")" = document ] && pass || fail "weighting not recorded"
[ "$(plan_field "$SCRATCH/code.json" "(p['domain'], p['documents'])")" = "('code', 3)" ] && pass || fail "domain not recorded"
[ "$(plan_field "$SCRATCH/perdoc.json" "p['scores']")" != "$(plan_field "$SCRATCH/olmoe-mass.json" "p['scores']")" ] && pass || fail "per-document scores equal per-token ones"
expect_error 2 "unknown domain 'math'; the profile has: code, prose" -- "$MOESLICE" rank --usage "$usage" --keep 4 --domain math --out "$SCRATCH/x.json"

# Nonuniform: warns, keeps the budget; the slicer refuses it except for EMO.
out=$("$MOESLICE" rank --usage "$usage" --keep 3 --nonuniform --out "$SCRATCH/nonuniform.json" 2>&1 >/dev/null)
grep -q "cannot load" <<<"$out" && pass || fail "no nonuniform warning: $out"
[ "$(plan_field "$SCRATCH/nonuniform.json" "sum(len(k) for k in p['experts_kept_per_layer'])")" = 9 ] && pass || fail "nonuniform budget not spent exactly"
[ "$(plan_field "$SCRATCH/nonuniform.json" "min(len(k) for k in p['experts_kept_per_layer'] if k)")" -ge 2 ] && pass || fail "a nonuniform layer keeps fewer than top-k"
expect_error 2 "only the emo family's config can list per-layer counts" -- "$MOESLICE" slice --model "$SCRATCH/olmoe" --plan "$SCRATCH/nonuniform.json" --out "$SCRATCH/x"
expect_ok -- "$MOESLICE" rank --usage "$SCRATCH/emo.usage" --keep 4 --nonuniform --out "$SCRATCH/emo-nonuniform.json"
expect_ok -- "$MOESLICE" slice --model "$SCRATCH/emo" --plan "$SCRATCH/emo-nonuniform.json" --out "$SCRATCH/emo-nonuniform-sliced"
[ "$(plan_field "$SCRATCH/emo-nonuniform-sliced/config.json" "p['num_experts_per_layer']")" = "$(plan_field "$SCRATCH/emo-nonuniform.json" "[len(k) for k in p['experts_kept_per_layer']]")" ] && pass || fail "emo nonuniform slice: num_experts_per_layer"
[ "$(plan_field "$SCRATCH/emo-nonuniform.json" "p['uniform']")" = False ] && pass || fail "emo --keep 4 --nonuniform came out uniform"

# select == the slow way (profile under the plan so far, rank, one layer at a time).
select_matches_slow() {  # family metric max-seq corpus tag
  local family=$1 metric=$2 max_seq=$3 corpus=$4 tag=$5
  local model="$SCRATCH/$family" fast="$SCRATCH/select-$family-$metric$tag.json"
  expect_ok -- "$MOESLICE" select --model "$model" --corpus "$corpus" --keep 50% --metric "$metric" --max-seq "$max_seq" --threads 2 --out "$fast" --usage-out "$SCRATCH/select-$family-$metric$tag.usage" --quiet
  local slow="$SCRATCH/slow-$family-$metric$tag"
  mkdir -p "$slow"
  $PY -c "import json; json.dump({'experts_kept_per_layer': [None] * 3}, open('$slow/plan.json', 'w'))"
  for layer in $(plan_field "$fast" "' '.join(str(l) for l, k in enumerate(p['experts_kept_per_layer']) if k is not None)"); do
    "$MOESLICE" profile --model "$model" --corpus "$corpus" --keep "$slow/plan.json" --max-seq "$max_seq" --threads 1 --order document --out "$slow/usage-$layer" --quiet >/dev/null
    "$MOESLICE" rank --usage "$slow/usage-$layer" --keep 50% --metric "$metric" --out "$slow/rank-$layer.json" >/dev/null
    $PY - "$slow" "$layer" <<'PYEOF'
import json, sys
slow, layer = sys.argv[1], int(sys.argv[2])
plan = json.load(open(f"{slow}/plan.json"))
ranked = json.load(open(f"{slow}/rank-{layer}.json"))
plan["experts_kept_per_layer"][layer] = ranked["experts_kept_per_layer"][layer]
plan.setdefault("scores", [None] * 3)[layer] = ranked["scores"][layer]
plan.setdefault("kept_share", [None] * 3)[layer] = ranked["kept_share"][layer]
json.dump(plan, open(f"{slow}/plan.json", "w"))
PYEOF
  done
  $PY - "$fast" "$slow/plan.json" <<'PYEOF' && pass || fail "select differs from the slow way: $family $metric $tag"
import json, sys
fast, slow = (json.load(open(path)) for path in sys.argv[1:3])
for key in ("experts_kept_per_layer", "scores", "kept_share"):
    assert fast[key] == slow[key], (key, fast[key], slow[key])
assert fast["pruning_method"].startswith("moeslice-select-")
PYEOF
  # Without --usage-out a metric of the router alone (mass) measures each layer without running
  # its experts: the same plan.
  [ "$metric" = reap ] && return
  local routed="$SCRATCH/select-$family-$metric$tag-routed.json"
  expect_ok -- "$MOESLICE" select --model "$model" --corpus "$corpus" --keep 50% --metric "$metric" --max-seq "$max_seq" --threads 2 --out "$routed" --quiet
  $PY - "$fast" "$routed" <<'PYEOF' && pass || fail "select without --usage-out differs: $family $metric $tag"
import json, sys
fast, routed = (json.load(open(path)) for path in sys.argv[1:3])
for key in ("experts_kept_per_layer", "scores", "kept_share", "pruning_method"):
    assert fast[key] == routed[key], (key, fast[key], routed[key])
PYEOF
}
for family in olmoe emo qwen2_moe; do
  for metric in mass reap; do select_matches_slow "$family" "$metric" 16 "$CORPUS" ""; done
done
# Windows of 128 tokens: select pools the windows' tokens per expert (ForwardPass's batch steps),
# the slow way computes document by document.
$PY - "$SCRATCH/long.jsonl" <<'PY'
import json, random, sys
random.seed(8)
with open(sys.argv[1], "w") as out:
    for d, n in enumerate([300, 5, 130, 250, 12, 70]):
        out.write(json.dumps({"id": f"l{d}", "input_ids": [random.randrange(64) for _ in range(n)]}) + "\n")
PY
select_matches_slow olmoe reap 128 "$SCRATCH/long.jsonl" "-long"
select_matches_slow olmoe freq 128 "$SCRATCH/long.jsonl" "-long"
expect_ok -- "$MOESLICE" slice --model "$SCRATCH/emo" --plan "$SCRATCH/select-emo-mass.json" --out "$SCRATCH/emo-select-sliced"
if [ "$HAVE_TORCH" = 1 ]; then
  expect_ok -- $PY "$HERE/check_slice.py" "$SCRATCH/emo" "$SCRATCH/emo-select-sliced" "$SCRATCH/select-emo-mass.json"
fi

# Refusals: exit 2, a message naming the problem, nothing written.
for keep in 0% 150% abc -3 2.5 ""; do
  expect_error 2 "keep amount '$keep'" -- "$MOESLICE" rank --usage "$usage" --keep "$keep" --out "$SCRATCH/x.json"
  expect_error 2 "keep amount '$keep'" -- "$MOESLICE" select --model "$SCRATCH/olmoe" --corpus "$CORPUS" --keep "$keep" --out "$SCRATCH/x.json"
done
expect_error 2 "keeps 9 experts per layer, but layers have only 8" -- "$MOESLICE" rank --usage "$usage" --keep 9 --out "$SCRATCH/x.json"
expect_error 2 "unknown metric 'entropy'; known metrics: mass, freq, reap, coverage, random" -- "$MOESLICE" rank --usage "$usage" --keep 4 --metric entropy --out "$SCRATCH/x.json"
size=$(stat -c %s "$usage")
head -c $((size - 10)) "$usage" > "$SCRATCH/truncated.usage"
expect_error 2 "truncated.usage: invalid safetensors file" -- "$MOESLICE" rank --usage "$SCRATCH/truncated.usage" --keep 4 --out "$SCRATCH/x.json"
expect_error 2 "not a usage profile" -- "$MOESLICE" rank --usage "$SCRATCH/olmoe/model.safetensors" --keep 4 --out "$SCRATCH/x.json"
expect_error 2 "does not exist|No such file|cannot" -- "$MOESLICE" rank --usage "$SCRATCH/missing.usage" --keep 4 --out "$SCRATCH/x.json"
expect_error 2 "already exists \(use --force" -- "$MOESLICE" rank --usage "$usage" --keep 4 --out "$SCRATCH/olmoe-mass.json"
expect_ok -- "$MOESLICE" rank --usage "$usage" --keep 4 --out "$SCRATCH/olmoe-mass.json" --force
expect_error 2 "already exists \(use --force" -- "$MOESLICE" select --model "$SCRATCH/olmoe" --corpus "$CORPUS" --keep 4 --out "$SCRATCH/olmoe-mass.json"
expect_error 2 "overlaps the input" -- "$MOESLICE" select --model "$SCRATCH/olmoe" --corpus "$CORPUS" --keep 4 --out "$SCRATCH/olmoe/plan.json"
echo '{"input_ids": [1, 2, "x"]}' > "$SCRATCH/bad.jsonl"
expect_error 2 "bad.jsonl:1" -- "$MOESLICE" select --model "$SCRATCH/olmoe" --corpus "$SCRATCH/bad.jsonl" --keep 4 --out "$SCRATCH/x.json"
expect_error 2 "keeps 1 of 8 experts per layer; at least 2" -- "$MOESLICE" select --model "$SCRATCH/emo" --corpus "$CORPUS" --keep 1 --out "$SCRATCH/x.json"
# gpt_oss computes since issue 19 (deepseek_v3 since issue 18): select runs on it; a config value
# the forward pass does not compute is still refused before any output.
"$MOESLICE" make-random --family gpt_oss --layers 2 --out "$SCRATCH/gpt_oss" >/dev/null
expect_ok -- "$MOESLICE" select --model "$SCRATCH/gpt_oss" --corpus "$CORPUS" --keep 4 --out "$SCRATCH/gpt_oss-plan.json"
"$MOESLICE" make-random --family gpt_oss --layers 2 --out "$SCRATCH/gpt_oss_chunked" \
  --set 'layer_types=["full_attention", "chunked_attention"]' >/dev/null
expect_error 2 "not implemented|not supported|does not support|does not implement" -- "$MOESLICE" select --model "$SCRATCH/gpt_oss_chunked" --corpus "$CORPUS" --keep 4 --out "$SCRATCH/x.json"
[ ! -e "$SCRATCH/x.json" ] && pass || fail "a refused command left output behind"
[ ! -e "$SCRATCH/olmoe/plan.json" ] && pass || fail "wrote inside the input"
ls "$SCRATCH" | grep -q '\.tmp\|~' && fail "temporary files left behind: $(ls "$SCRATCH")" || pass

finish
