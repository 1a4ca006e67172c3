#!/usr/bin/env bash
# profile --stream-layers / --order layer (layer-major order over blocks of documents, each layer's
# pages released after it) writes the same file, byte for byte, as the document-by-document order
# (--order document), and so does the default --order auto (layer-major): several families, blocks
# smaller than one document and larger than several, documents cut into windows, windows pooled in
# expert GEMMs, a keep plan. Also --compute bf16 and the flag refusals.
source "$(dirname "$0")/lib.bash"

python3 - "$SCRATCH/corpus.jsonl" <<'PY'
import json, random, sys
random.seed(5)
with open(sys.argv[1], "w") as out:
    for d, n in enumerate([1, 7, 40, 23, 90, 3, 64]):
        out.write(json.dumps({"id": f"d{d}", "domain": "ab"[d % 2],
                              "input_ids": [random.randrange(96) for _ in range(n)]}) + "\n")
PY

for family in olmoe emo qwen2_moe; do
  "$MOESLICE" make-random --family "$family" --layers 3 --hidden 32 --heads 4 --experts 8 \
    --top-k 2 --expert-width 16 --vocab 96 --seed 11 --out "$SCRATCH/$family" >/dev/null
  expect_ok -- "$MOESLICE" profile --model "$SCRATCH/$family" --corpus "$SCRATCH/corpus.jsonl" \
    --max-seq 32 --out "$SCRATCH/$family-whole.safetensors"
  for block in 5 100 100000; do
    expect_ok -- "$MOESLICE" profile --model "$SCRATCH/$family" --corpus "$SCRATCH/corpus.jsonl" \
      --max-seq 32 --stream-layers --stream-block-tokens "$block" \
      --out "$SCRATCH/$family-stream-$block.safetensors"
    cmp -s "$SCRATCH/$family-whole.safetensors" "$SCRATCH/$family-stream-$block.safetensors" &&
      pass || fail "$family: --stream-layers (block $block) differs from the whole run"
  done
  for order in "--order document" "--order layer --stream-block-tokens 50" \
    "--order auto --stream-block-tokens 5" "--stream-block-tokens 100"; do
    # shellcheck disable=SC2086  # the order's flags, split on purpose
    expect_ok -- "$MOESLICE" profile --model "$SCRATCH/$family" --corpus "$SCRATCH/corpus.jsonl" \
      --max-seq 32 $order --force --out "$SCRATCH/$family-order.safetensors"
    cmp -s "$SCRATCH/$family-whole.safetensors" "$SCRATCH/$family-order.safetensors" &&
      pass || fail "$family: $order differs from the whole run"
  done
done

# Windows long enough that experts get at least 16 tokens from several windows, so layer-major
# order pools windows in one expert GEMM (ForwardPass::run_layer_batch), beside windows that give
# an expert fewer: still byte for byte the document order, in fp32 and bf16, for plain, shared,
# group-routed (with a dense layer) and fused MXFP4 experts.
python3 - "$SCRATCH/long.jsonl" <<'PY'
import json, random, sys
random.seed(6)
with open(sys.argv[1], "w") as out:
    for d, n in enumerate([300, 5, 130, 64, 12, 250, 70]):
        out.write(json.dumps({"id": f"l{d}", "input_ids": [random.randrange(96) for _ in range(n)]}) + "\n")
PY
for spec in "olmoe f32" "qwen2_moe bf16" "deepseek_v3 f32 --set first_k_dense_replace=1 --set n_group=2 --set topk_group=1" \
  "gpt_oss mxfp4"; do
  read -r family dtype extra <<<"$spec"
  # shellcheck disable=SC2086  # the extra flags, split on purpose
  "$MOESLICE" make-random --family "$family" --layers 3 --hidden 64 --heads 4 --experts 4 \
    --top-k 2 --expert-width 32 --vocab 96 --seed 12 --dtype "$dtype" $extra \
    --out "$SCRATCH/pool-$family" >/dev/null || fail "make-random $family"
  for compute in fp32 bf16; do
    "$MOESLICE" profile --model "$SCRATCH/pool-$family" --corpus "$SCRATCH/long.jsonl" \
      --max-seq 128 --compute "$compute" --order document --force \
      --out "$SCRATCH/pool-doc.safetensors" >/dev/null 2>&1 || continue  # bf16 needs oneDNN
    expect_ok -- "$MOESLICE" profile --model "$SCRATCH/pool-$family" --corpus "$SCRATCH/long.jsonl" \
      --max-seq 128 --compute "$compute" --order layer --force --out "$SCRATCH/pool-layer.safetensors"
    cmp -s "$SCRATCH/pool-doc.safetensors" "$SCRATCH/pool-layer.safetensors" && pass ||
      fail "$family $compute: pooled layer-major profile differs from document order"
  done
done

# Under a keep plan (EMO keeps its shared expert 7).
printf '{"experts_kept_per_layer": [[0, 3, 7], [1, 2, 5, 7], [0, 1, 7]]}\n' >"$SCRATCH/plan.json"
expect_ok -- "$MOESLICE" profile --model "$SCRATCH/emo" --corpus "$SCRATCH/corpus.jsonl" \
  --keep "$SCRATCH/plan.json" --out "$SCRATCH/keep-whole.safetensors"
expect_ok -- "$MOESLICE" profile --model "$SCRATCH/emo" --corpus "$SCRATCH/corpus.jsonl" \
  --keep "$SCRATCH/plan.json" --stream-layers --stream-block-tokens 30 \
  --out "$SCRATCH/keep-stream.safetensors"
cmp -s "$SCRATCH/keep-whole.safetensors" "$SCRATCH/keep-stream.safetensors" && pass ||
  fail "--stream-layers with a keep plan differs"

# bf16 compute streams identically too, and says so in the metadata.
if "$MOESLICE" profile --model "$SCRATCH/olmoe" --corpus "$SCRATCH/corpus.jsonl" --compute bf16 \
  --out "$SCRATCH/bf16-whole.safetensors" >/dev/null 2>"$SCRATCH/bf16.err"; then
  expect_ok -- "$MOESLICE" profile --model "$SCRATCH/olmoe" --corpus "$SCRATCH/corpus.jsonl" \
    --compute bf16 --stream-layers --stream-block-tokens 10 --out "$SCRATCH/bf16-stream.safetensors"
  cmp -s "$SCRATCH/bf16-whole.safetensors" "$SCRATCH/bf16-stream.safetensors" && pass ||
    fail "bf16: --stream-layers differs"
  grep -q 'compute\\":\\"bf16' "$SCRATCH/bf16-whole.safetensors" && pass || fail "bf16 not recorded"
else
  grep -q "oneDNN" "$SCRATCH/bf16.err" && pass || fail "bf16 refused without naming oneDNN"
fi

expect_error 2 "stream-block-tokens" -- "$MOESLICE" profile --model "$SCRATCH/olmoe" \
  --corpus "$SCRATCH/corpus.jsonl" --stream-layers --stream-block-tokens 0 --out "$SCRATCH/x.st"
expect_error 2 "order" -- "$MOESLICE" profile --model "$SCRATCH/olmoe" \
  --corpus "$SCRATCH/corpus.jsonl" --order layers --out "$SCRATCH/x.st"
expect_error 2 "excludes" -- "$MOESLICE" profile --model "$SCRATCH/olmoe" \
  --corpus "$SCRATCH/corpus.jsonl" --order document --stream-layers --out "$SCRATCH/x.st"
expect_error 2 "compute" -- "$MOESLICE" profile --model "$SCRATCH/olmoe" \
  --corpus "$SCRATCH/corpus.jsonl" --compute fp8 --out "$SCRATCH/x.st"
finish
