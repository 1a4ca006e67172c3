#!/usr/bin/env bash
# Inputs that agree with themselves but not with each other, or hold values no model computes
# with, are refused by name (issue 15, "Misleading results"): config numbers (rms_norm_eps,
# rope_theta, sliding_window), tensors the config does not describe, plans made for another model
# (slice, eval, report; EMO's shared expert), unslicing into another model, resuming a partial
# profile of another corpus, and an evaluation where nothing can be scored.
source "$(dirname "$0")/lib.bash"
M="$MOESLICE"
S="$SCRATCH"
set_key() {  # set_key DIR KEY JSON_VALUE: rewrites DIR/config.json
  $PY - "$1/config.json" "$2" "$3" <<'PY'
import json, sys
path, key, value = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
config = json.load(open(path))
config[key] = value
json.dump(config, open(path, "w"), indent=1)
PY
}
printf '{"id":"a","input_ids":[1,5,9,3,7,2,8,4]}\n{"id":"b","input_ids":[2,4,6,8,10,12]}\n' >"$S/ids.jsonl"
printf '{"id":"x","input_ids":[3,3,3]}\n' >"$S/other.jsonl"
printf '{"id":"one","input_ids":[7]}\n' >"$S/one-token.jsonl"
"$M" make-random --family olmoe --seed 1 --out "$S/olmoe" >/dev/null

# Config numbers no model computes with.
for case in 'rms_norm_eps -1 a finite number >= 0' 'rope_theta 0 a finite number > 0'; do
  read -r key value _ <<<"$case"
  cp -r "$S/olmoe" "$S/bad-$key"
  set_key "$S/bad-$key" "$key" "$value"
  expect_error 2 "config.json: '$key' is $value, expected" -- "$M" eval --model "$S/bad-$key" --corpus "$S/ids.jsonl" --json "$S/x.json"
  expect_error 2 "'$key' is $value" -- "$M" profile --model "$S/bad-$key" --corpus "$S/ids.jsonl" --out "$S/x.safetensors"
done
"$M" make-random --family qwen3_moe --seed 1 --out "$S/qwen3" >/dev/null
set_key "$S/qwen3" use_sliding_window true
set_key "$S/qwen3" sliding_window -5
expect_error 2 "'sliding_window' is -5, expected a window of at least 1 token" -- "$M" eval --model "$S/qwen3" --corpus "$S/ids.jsonl" --json "$S/x.json"

# A config with fewer layers than the checkpoint: the extra layer is not carried along.
cp -r "$S/olmoe" "$S/fewer-layers"
set_key "$S/fewer-layers" num_hidden_layers 1
expect_error 2 "tensor 'model.layers.1\..*' belongs to layer 1, but .*config.json describes 1 layers" -- "$M" inspect --model "$S/fewer-layers"
write_plan "$S/plan1.json" "[0,1]"
expect_error 2 "belongs to layer 1" -- "$M" slice --model "$S/fewer-layers" --plan "$S/plan1.json" --out "$S/x-slice"
[[ -e "$S/x-slice" ]] && fail "a refused slice left output"

# Plans made for another model.
"$M" profile --model "$S/olmoe" --corpus "$S/ids.jsonl" --out "$S/olmoe.usage.safetensors" --quiet >/dev/null
"$M" rank --usage "$S/olmoe.usage.safetensors" --keep 50% --out "$S/olmoe-plan.json" >/dev/null
"$M" make-random --family olmoe --seed 1 --experts 16 --out "$S/olmoe16" >/dev/null
expect_error 2 "olmoe-plan.json: the plan was made for a model with 'num_experts' = 8, but .*olmoe16 has 16" -- "$M" slice --model "$S/olmoe16" --plan "$S/olmoe-plan.json" --out "$S/x-slice"
expect_error 2 "'num_experts' = 8" -- "$M" eval --model "$S/olmoe16" --keep "$S/olmoe-plan.json" --corpus "$S/ids.jsonl" --json "$S/x.json"
expect_error 2 "'num_experts' = 8" -- "$M" profile --model "$S/olmoe16" --keep "$S/olmoe-plan.json" --corpus "$S/ids.jsonl" --out "$S/x.safetensors"
sed 's/"family": "olmoe"/"family": "mixtral"/' "$S/olmoe-plan.json" >"$S/mixtral-plan.json"
expect_error 2 "the plan was made for a model with 'family' = \"mixtral\", but .* has \"olmoe\"" -- "$M" slice --model "$S/olmoe" --plan "$S/mixtral-plan.json" --out "$S/x-slice"
expect_error 2 "'family' = \"mixtral\", but the usage profile has \"olmoe\"" -- "$M" report --usage "$S/olmoe.usage.safetensors" --plan "$S/mixtral-plan.json" --out "$S/x.html"
# report: an EMO plan must keep the shared expert (the last one), as slice insists.
"$M" make-random --family emo --seed 1 --out "$S/emo" >/dev/null
"$M" profile --model "$S/emo" --corpus "$S/ids.jsonl" --out "$S/emo.usage.safetensors" --quiet >/dev/null
write_plan "$S/emo-drops-shared.json" "[0,1]" "[0,1]"
expect_error 2 "emo-drops-shared.json: layer 0: drops shared expert 7" -- "$M" report --usage "$S/emo.usage.safetensors" --plan "$S/emo-drops-shared.json" --out "$S/x.html"
expect_error 2 "drops shared expert 7" -- "$M" slice --model "$S/emo" --plan "$S/emo-drops-shared.json" --out "$S/x-slice"
[[ -e "$S/x.html" ]] && fail "a refused report left output"

# unslice into the model the slice was cut from only.
"$M" slice --model "$S/olmoe" --plan "$S/olmoe-plan.json" --out "$S/olmoe-sliced" >/dev/null
expect_ok -- "$M" unslice --model "$S/olmoe" --sliced "$S/olmoe-sliced" --out "$S/olmoe-unsliced"
"$M" make-random --family olmoe --seed 2 --out "$S/olmoe-seed2" >/dev/null
expect_error 2 "pruning_metadata.json: the slice was cut from a model with fingerprint .*olmoe-seed2 has fnv1a64:" -- "$M" unslice --model "$S/olmoe-seed2" --sliced "$S/olmoe-sliced" --out "$S/x-unsliced"
expect_error 2 "the slice was cut from a model with experts per layer \[8,8\]" -- "$M" unslice --model "$S/olmoe16" --sliced "$S/olmoe-sliced" --out "$S/x-unsliced"
[[ -e "$S/x-unsliced" ]] && fail "a refused unslice left output"

# --resume from a partial profile of another corpus.
"$M" profile --model "$S/olmoe" --corpus "$S/ids.jsonl" --out "$S/p.safetensors" --quiet >/dev/null
mv "$S/p.safetensors" "$S/p.safetensors.partial"
expect_error 2 "p.safetensors.partial: document 0 is 'a' with 8 tokens, but the corpus's document 0 is 'x' with 3 tokens" -- "$M" profile --model "$S/olmoe" --corpus "$S/other.jsonl" --out "$S/p.safetensors" --resume --quiet
expect_error 2 "p.safetensors.partial: holds 2 documents, but the corpus ends after 1" -- "$M" profile --model "$S/olmoe" --corpus <(head -1 "$S/ids.jsonl") --out "$S/p.safetensors" --resume --quiet
expect_ok -- "$M" profile --model "$S/olmoe" --corpus "$S/ids.jsonl" --out "$S/p.safetensors" --resume --quiet

# Nothing scorable is an error, not an empty table.
expect_error 2 "nothing could be scored: 1 document" -- "$M" eval --model "$S/olmoe" --corpus "$S/one-token.jsonl" --json "$S/x.json"
expect_error 2 "nothing could be scored" -- "$M" eval --model "$S/olmoe" --corpus "$S/ids.jsonl" --max-seq 1 --json "$S/x.json"
[[ -e "$S/x.json" ]] && fail "a refused eval left output"
finish
