#!/usr/bin/env bash
# Parity of `moeslice logits --router` with the PyTorch reference (tests/reference) on every
# make_tiny variant, F32 and BF16 (2 shards) weights plus one F16 and gpt_oss with MXFP4 experts: logits within 1e-5 relative
# (max|diff| / max|ref|) of the float64 reference, identical expert choices, router logits,
# weights and expert output norms within 1e-5. Also restricted routing (--keep) against the
# reference run with the same plan, document windows (--max-seq) against the reference run on the
# pre-split corpus, thread-count determinism, and the refusals (bad corpus lines, bad plans,
# unknown family, unsupported config keys and families, output inside the model).
#
# Usage: logits_parity.sh MOESLICE_BINARY SCRATCH_DIR. Exit 77 (skip) without torch.
source "$(dirname "$0")/lib.bash"
set +e  # every check reports through fail() and the run goes on to the end
require_torch
BIN=$MOESLICE
S=$SCRATCH

# ---- fixtures ------------------------------------------------------------------------------
$PY "$REF/make_tiny.py" --all "$S/f32" >/dev/null || { echo "make_tiny failed"; exit 1; }
$PY "$REF/make_tiny.py" --all "$S/bf16" --dtype BF16 --shards 2 >/dev/null || exit 1
$PY "$REF/make_tiny.py" --out "$S/f16/qwen2_moe" --variant qwen2_moe --dtype F16 >/dev/null || exit 1
# gpt_oss's experts as MXFP4 blocks and scales (the rest BF16), as released.
$PY "$REF/make_tiny.py" --all "$S/mxfp4" --mxfp4 --dtype BF16 >/dev/null || exit 1
VARIANTS=$(cd "$S/f32" && ls -d */ | tr -d /)

# make_tiny's corpus (1, 7, 23, 40 tokens) plus a longer document; all variants have vocab 128.
# Also the plans (one per variant: a different third of the experts dropped in every MoE layer;
# EMO keeps its shared expert, and in layer 0 only one routed expert, so k' < k there), and the
# corpus pre-split into 16-token windows for the --max-seq case.
REF_DIR=$REF $PY - "$S" <<'EOF' || exit 1
import json, os, random, sys
sys.path.insert(0, os.environ["REF_DIR"])
from reference_forward import Config
S = sys.argv[1]
docs = [json.loads(l) for l in open(os.path.join(S, "f32", "olmoe", "corpus.jsonl"))]
rng = random.Random(7)
docs.append({"id": "long", "input_ids": [rng.randrange(128) for _ in range(97)]})
with open(os.path.join(S, "corpus.jsonl"), "w") as f:
    for d in docs:
        f.write(json.dumps(d) + "\n")
with open(os.path.join(S, "corpus_split16.jsonl"), "w") as f:
    for d in docs:
        ids = d["input_ids"]
        for b in range(0, len(ids), 16):
            f.write(json.dumps({"id": f"{d['id']}@{b}", "input_ids": ids[b:b + 16]}) + "\n")
for name in os.listdir(os.path.join(S, "f32")):
    cfg = Config(json.load(open(os.path.join(S, "f32", name, "config.json"))))
    plan = []
    for i, (E, Sh) in enumerate(zip(cfg.layer_E, cfg.layer_S)):
        if not E:
            plan.append(None)
            continue
        keep = [e for e in range(E) if (e + i) % 3 != 0 or e >= E - Sh]
        if Sh and i == 0:
            keep = [1] + list(range(E - Sh, E))
        plan.append(sorted(set(keep)))
    json.dump({"experts_kept_per_layer": plan}, open(os.path.join(S, f"plan_{name}.json"), "w"))
EOF

# ---- moeslice runs, and the reference / compare jobs they need -----------------------------
: >"$S/reference_jobs"
: >"$S/compare_jobs"
run() {  # run NAME MODEL_DIR CORPUS [moeslice flags...] -> $S/got_NAME.safetensors
  local name=$1 model=$2 corpus=$3
  shift 3
  if ! "$BIN" logits --model "$model" --corpus "$corpus" --out "$S/got_$name.safetensors" \
      --router --threads 2 "$@" >"$S/log_$name" 2>&1; then
    fail "moeslice logits ($name): $(cat "$S/log_$name")"
    return
  fi
}
reference() {  # reference NAME MODEL_DIR CORPUS [--keep PLAN]
  local name=$1 model=$2 corpus=$3
  shift 3
  echo "--model $model --corpus $corpus --out $S/ref_$name.safetensors --dtype float64 $*" \
    >>"$S/reference_jobs"
}
compare() {  # compare NAME [--windows]
  echo "--ref $S/ref_$1.safetensors --got $S/got_$1.safetensors --label $1 ${2:-}" \
    >>"$S/compare_jobs"
}

for v in $VARIANTS; do
  for dt in f32 bf16; do
    run "${dt}_$v" "$S/$dt/$v" "$S/corpus.jsonl"
    reference "${dt}_$v" "$S/$dt/$v" "$S/corpus.jsonl"
    compare "${dt}_$v"
  done
  run "keep_$v" "$S/f32/$v" "$S/corpus.jsonl" --keep "$S/plan_$v.json"
  reference "keep_$v" "$S/f32/$v" "$S/corpus.jsonl" --keep "$S/plan_$v.json"
  compare "keep_$v"
done
for v in $(cd "$S/mxfp4" && ls -d */ | tr -d /); do
  run "mxfp4_$v" "$S/mxfp4/$v" "$S/corpus.jsonl"
  reference "mxfp4_$v" "$S/mxfp4/$v" "$S/corpus.jsonl"
  compare "mxfp4_$v"
  run "mxfp4_keep_$v" "$S/mxfp4/$v" "$S/corpus.jsonl" --keep "$S/plan_$v.json"
  reference "mxfp4_keep_$v" "$S/mxfp4/$v" "$S/corpus.jsonl" --keep "$S/plan_$v.json"
  compare "mxfp4_keep_$v"
done
run f16_qwen2_moe "$S/f16/qwen2_moe" "$S/corpus.jsonl"
reference f16_qwen2_moe "$S/f16/qwen2_moe" "$S/corpus.jsonl"
compare f16_qwen2_moe
run windows_qwen3_moe "$S/f32/qwen3_moe" "$S/corpus.jsonl" --max-seq 16
reference windows_qwen3_moe "$S/f32/qwen3_moe" "$S/corpus_split16.jsonl"
compare windows_qwen3_moe --windows
grep -q "independent windows" "$S/log_windows_qwen3_moe" ||
  fail "--max-seq 16: no note about windows on stderr"

# One Python process runs every reference job and then every comparison (torch loads once).
REF_DIR=$REF $PY - "$S" <<'EOF'
import io, contextlib, os, sys
sys.path.insert(0, os.environ["REF_DIR"])
import reference_forward, compare_outputs
S = sys.argv[1]
bad = 0
for line in open(os.path.join(S, "reference_jobs")):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = reference_forward.main(line.split())
    if rc != 0:
        print(f"FAIL: reference run failed ({rc}): {line.strip()}")
        bad += 1
for line in open(os.path.join(S, "compare_jobs")):
    if compare_outputs.main(line.split()) != 0:
        bad += 1
sys.exit(1 if bad else 0)
EOF
[ $? -eq 0 ] || fail "parity with the reference (see FAIL lines above)"

# ---- determinism: the thread count does not change a single bit -----------------------------
for t in 1 3; do
  "$BIN" logits --model "$S/bf16/qwen3_moe" --corpus "$S/corpus.jsonl" --router --threads $t \
    --out "$S/threads_$t.safetensors" >/dev/null 2>&1 || fail "--threads $t run"
done
cmp -s "$S/threads_1.safetensors" "$S/threads_3.safetensors" ||
  fail "--threads 1 and --threads 3 outputs differ"

# ---- refusals -------------------------------------------------------------------------------
expect_error() {  # expect_error PATTERN moeslice-args...: exit 2 and PATTERN (grep -E) in stderr
  local pattern=$1
  shift
  "$BIN" "$@" >"$S/err_out" 2>"$S/err"
  local rc=$?
  if [ $rc -ne 2 ]; then
    fail "expected exit 2, got $rc: moeslice $* ($(head -c 300 "$S/err"))"
  elif ! grep -Eq -- "$pattern" "$S/err"; then
    fail "message lacks /$pattern/: moeslice $*: $(cat "$S/err")"
  fi
}
L=(logits --out "$S/err.safetensors" --force)

# Bad corpus lines: the message names file:line (line 3: line 2 is blank and skipped).
i=0
for bad in '{"input_ids": [1, 2' '{"id": "x"}' '{"input_ids": [1, 2.5]}' \
           '{"input_ids": [1, 128]}' '{"input_ids": []}' '{"input_ids": "1 2"}' '[1, 2]'; do
  i=$((i + 1))
  printf '{"input_ids": [1, 2, 3]}\n\n%s\n' "$bad" >"$S/bad_$i.jsonl"
  expect_error "bad_$i.jsonl:3: " "${L[@]}" --model "$S/f32/olmoe" --corpus "$S/bad_$i.jsonl"
done
expect_error "no documents" "${L[@]}" --model "$S/f32/olmoe" --corpus /dev/null

# Config edits: copy a model dir and change config.json keys.
variant_with() {  # variant_with SRC_DIR DST_NAME KEY JSON_VALUE [KEY JSON_VALUE...]
  rm -rf "${S:?}/$2"
  cp -r "$1" "$S/$2"
  local config=$S/$2/config.json
  shift 2
  $PY - "$config" "$@" <<'EOF'
import json, sys
path, pairs = sys.argv[1], sys.argv[2:]
c = json.load(open(path))
for key, value in zip(pairs[::2], pairs[1::2]):
    if value == "DELETE":
        c.pop(key, None)
    else:
        c[key] = json.loads(value)
json.dump(c, open(path, "w"))
EOF
}
variant_with "$S/f32/olmoe" unknown model_type '"foo_moe"' architectures DELETE
expect_error "unknown model family" "${L[@]}" --model "$S/unknown" --corpus "$S/corpus.jsonl"
variant_with "$S/f32/olmoe" rope_scaled rope_scaling '{"type": "linear", "factor": 2.0}'
expect_error "'rope_scaling'" "${L[@]}" --model "$S/rope_scaled" --corpus "$S/corpus.jsonl"
variant_with "$S/f32/olmoe" rope_v5 rope_parameters '{"rope_type": "yarn", "rope_theta": 10000}'
expect_error "'rope_parameters.rope_type'" "${L[@]}" --model "$S/rope_v5" --corpus "$S/corpus.jsonl"
variant_with "$S/f32/olmoe" gelu hidden_act '"gelu"'
expect_error "'hidden_act'" "${L[@]}" --model "$S/gelu" --corpus "$S/corpus.jsonl"
variant_with "$S/f32/flex_olmo" flex_clip clip_qkv 0.5
expect_error "'clip_qkv'" "${L[@]}" --model "$S/flex_clip" --corpus "$S/corpus.jsonl"
variant_with "$S/f32/emo" emo_always always_active_experts '[0]'
expect_error "'always_active_experts'" "${L[@]}" --model "$S/emo_always" --corpus "$S/corpus.jsonl"
# Per-layer expert counts must match the tensors, and leave every layer at least top-k experts.
variant_with "$S/f32/emo" emo_per_layer num_experts_per_layer '[9, 5, 9]'
expect_error "tensor 'model.layers.1.mlp.gate.weight' has shape \[9, 64\], expected \[5, 64\]" \
  "${L[@]}" --model "$S/emo_per_layer" --corpus "$S/corpus.jsonl"
variant_with "$S/f32/emo" emo_per_layer_low num_experts_per_layer '[9, 2, 9]'
expect_error "'num_experts_per_layer' entry 1 is 2, expected between experts per token \(3\)" \
  "${L[@]}" --model "$S/emo_per_layer_low" --corpus "$S/corpus.jsonl"
variant_with "$S/f32/mixtral" mixtral_window sliding_window 16
expect_error "'sliding_window'" "${L[@]}" --model "$S/mixtral_window" --corpus "$S/corpus.jsonl"
"$BIN" logits --model "$S/mixtral_window" --corpus "$S/corpus.jsonl" --max-seq 16 \
  --out "$S/window_ok.safetensors" >/dev/null 2>&1 ||
  fail "a sliding window no longer than --max-seq should run"
# gpt_oss computes (issue 19): make-random's model runs (sliding window 128 on even layers, no
# refusal for documents longer than it); a layer type it does not compute is refused by key.
"$BIN" make-random --family gpt_oss --out "$S/random_gpt_oss" >/dev/null 2>&1 ||
  fail "make-random gpt_oss"
"$BIN" logits --model "$S/random_gpt_oss" --corpus "$S/corpus.jsonl" \
  --out "$S/random_gpt_oss.safetensors" >/dev/null 2>&1 || fail "logits of make-random gpt_oss"
variant_with "$S/f32/gpt_oss" gpt_oss_chunked layer_types \
  '["full_attention", "chunked_attention", "full_attention", "full_attention"]'
expect_error "'layer_types\[1\]' is \"chunked_attention\", only \"sliding_attention\" and \"full_attention\"" \
  "${L[@]}" --model "$S/gpt_oss_chunked" --corpus "$S/corpus.jsonl"
variant_with "$S/f32/gpt_oss" gpt_oss_no_window sliding_window null
expect_error "layer 0 has sliding attention but 'sliding_window' is not set" \
  "${L[@]}" --model "$S/gpt_oss_no_window" --corpus "$S/corpus.jsonl"
# deepseek_v3 computes (issue 18): make-random's model runs; a rope_scaling other than YaRN, MLA
# biases and fewer key/value heads than heads are refused by key.
"$BIN" make-random --family deepseek_v3 --out "$S/random_deepseek_v3" >/dev/null 2>&1 ||
  fail "make-random deepseek_v3"
"$BIN" logits --model "$S/random_deepseek_v3" --corpus "$S/corpus.jsonl" \
  --out "$S/random_deepseek_v3.safetensors" >/dev/null 2>&1 || fail "logits of make-random deepseek_v3"
variant_with "$S/f32/deepseek_v3" ds_linear rope_scaling '{"type": "linear", "factor": 2.0}'
expect_error "'rope_scaling'" "${L[@]}" --model "$S/ds_linear" --corpus "$S/corpus.jsonl"
variant_with "$S/f32/deepseek_v3" ds_bias attention_bias true
expect_error "'attention_bias' is set" "${L[@]}" --model "$S/ds_bias" --corpus "$S/corpus.jsonl"
variant_with "$S/f32/deepseek_v3" ds_kv num_key_value_heads 2
expect_error "'num_key_value_heads' is 2" "${L[@]}" --model "$S/ds_kv" --corpus "$S/corpus.jsonl"

# Bad plans: the message names the plan file and the layer.
plan() { echo "{\"experts_kept_per_layer\": $2}" >"$S/$1.json"; }
plan plan_short '[null, null]'
expect_error "plan_short.json: .*one entry per layer \(3\)" \
  "${L[@]}" --model "$S/f32/olmoe" --corpus "$S/corpus.jsonl" --keep "$S/plan_short.json"
plan plan_range '[null, [0, 8], null]'
expect_error "plan_range.json: layer 1: expert id 8 is out of range" \
  "${L[@]}" --model "$S/f32/olmoe" --corpus "$S/corpus.jsonl" --keep "$S/plan_range.json"
plan plan_unsorted '[[3, 1], null, null]'
expect_error "plan_unsorted.json: layer 0: .*ascending" \
  "${L[@]}" --model "$S/f32/olmoe" --corpus "$S/corpus.jsonl" --keep "$S/plan_unsorted.json"
plan plan_dup '[null, null, [2, 2]]'
expect_error "plan_dup.json: layer 2: .*no duplicates" \
  "${L[@]}" --model "$S/f32/olmoe" --corpus "$S/corpus.jsonl" --keep "$S/plan_dup.json"
plan plan_dense '[[0, 1], null, null]'
expect_error "plan_dense.json: layer 0 has no experts" \
  "${L[@]}" --model "$S/f32/qwen2_moe" --corpus "$S/corpus.jsonl" --keep "$S/plan_dense.json"
plan plan_shared '[[0, 1, 2], null, null]'
expect_error "plan_shared.json: layer 0: drops shared expert 8" \
  "${L[@]}" --model "$S/f32/emo" --corpus "$S/corpus.jsonl" --keep "$S/plan_shared.json"

# Outputs: never inside the model, never over an existing file without --force.
expect_error "" logits --model "$S/f32/olmoe" --corpus "$S/corpus.jsonl" \
  --out "$S/f32/olmoe/logits.safetensors"
expect_error "exists" logits --model "$S/f32/olmoe" --corpus "$S/corpus.jsonl" \
  --out "$S/got_f32_olmoe.safetensors"

finish
