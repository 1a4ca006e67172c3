#!/usr/bin/env bash
# The released config.json files of DeepSeek-V3, Kimi K2 and GLM-4.5-Air (tests/data/configs:
# every key as released, sizes shrunk; README.md there says where each came from) with random
# weights (make_tiny.py --config, F32 and BF16): inspect opens them; logits --router matches the
# float64 reference (compare_outputs: 1e-5, same experts); --compute bf16 runs; a slice (balanced
# across DeepSeek-V3's 8 routing groups) passes the slicer's check and computes exactly the
# masked full model (check_sliced_logits.py). gpt-oss-20b's (as released: MXFP4 experts, BF16 rest;
# also all F32) runs on the same documents plus one of 150 tokens, beyond its 128-token window;
# --compute bf16 runs on it.
#
# Usage: real_configs.sh MOESLICE_BINARY SCRATCH_DIR. Exit 77 (skip) without torch.
source "$(dirname "$0")/lib.bash"
require_torch
CONFIGS="$SRC/tests/data/configs"

# Plans: DeepSeek-V3 (5 layers, 3 dense; 32 experts in 8 groups) keeps 2 of every group's 4;
# Kimi K2 (3 layers, 1 dense; 24 experts, no groups) keeps 12; GLM-4.5-Air (3 layers, 1 dense;
# 16 experts) keeps 10. Every plan keeps at least the 8 experts per token.
write_plan "$SCRATCH/deepseek-v3.plan" null null null \
  "[0,3,5,6,8,9,13,14,16,19,21,22,24,27,29,30]" "[1,2,4,7,9,10,12,15,17,18,20,23,25,26,28,31]"
write_plan "$SCRATCH/kimi-k2.plan" null "[0,1,3,5,8,9,12,14,17,19,20,23]" "[2,4,5,6,7,10,11,13,16,18,21,22]"
write_plan "$SCRATCH/glm-4.5-air.plan" null "[0,1,2,4,6,7,9,11,12,15]" "[1,3,5,6,8,10,11,13,14,15]"
# gpt-oss-20b (4 layers of 8 experts, top-4) keeps 5 in every layer.
write_plan "$SCRATCH/gpt-oss-20b.plan" "[0,2,3,5,6]" "[1,2,4,6,7]" "[0,1,3,4,5]" "[2,3,5,6,7]"

: >"$SCRATCH/jobs"
for name in deepseek-v3 kimi-k2 glm-4.5-air; do
  for dtype in F32 BF16; do
    model="$SCRATCH/$name-$dtype"
    expect_ok -- $PY "$REF/make_tiny.py" --config "$CONFIGS/$name.json" --out "$model" --dtype "$dtype" \
      --corpus "$SCRATCH/corpus.jsonl"  # the same 4 documents each time (vocabulary 128)
    cmp -s "$CONFIGS/$name.json" "$model/config.json" && pass || fail "$name: config.json not as written"
    expect_ok -- "$MOESLICE" inspect --model "$model"
    expect_ok -- "$MOESLICE" logits --model "$model" --corpus "$SCRATCH/corpus.jsonl" --router \
      --out "$SCRATCH/got-$name-$dtype.safetensors"
    echo "$name-$dtype $model" >>"$SCRATCH/jobs"
  done
  expect_ok -- "$MOESLICE" logits --model "$SCRATCH/$name-BF16" --corpus "$SCRATCH/corpus.jsonl" \
    --compute bf16 --out "$SCRATCH/bf16-$name.safetensors"

  check_sliced_model "$name" "$SCRATCH/$name-F32" "$SCRATCH/$name.plan" "$SCRATCH/corpus.jsonl"
done

name=gpt-oss-20b
$PY - "$SCRATCH" <<'PYEOF' || fail "gpt-oss corpus"
import json, os, random, sys
S = sys.argv[1]
docs = [l for l in open(os.path.join(S, "corpus.jsonl"))]
rng = random.Random(5)
docs.append(json.dumps({"id": "long", "input_ids": [rng.randrange(128) for _ in range(150)]}) + "\n")
open(os.path.join(S, "corpus-long.jsonl"), "w").writelines(docs)
PYEOF
for form in F32 MXFP4; do
  model="$SCRATCH/$name-$form"
  if [ $form = MXFP4 ]; then flags=(--dtype BF16 --mxfp4); else flags=(--dtype F32); fi
  expect_ok -- $PY "$REF/make_tiny.py" --config "$CONFIGS/$name.json" --out "$model" "${flags[@]}"
  cmp -s "$CONFIGS/$name.json" "$model/config.json" && pass || fail "$name: config.json not as written"
  expect_ok -- "$MOESLICE" inspect --model "$model"
  expect_ok -- "$MOESLICE" logits --model "$model" --corpus "$SCRATCH/corpus-long.jsonl" --router \
    --out "$SCRATCH/got-$name-$form.safetensors"
  echo "$name-$form $model corpus-long.jsonl" >>"$SCRATCH/jobs"
  check_sliced_model "$name-$form" "$model" "$SCRATCH/$name.plan" "$SCRATCH/corpus-long.jsonl"
done
expect_ok -- "$MOESLICE" logits --model "$SCRATCH/$name-MXFP4" --corpus "$SCRATCH/corpus-long.jsonl" \
  --compute bf16 --out "$SCRATCH/bf16-$name.safetensors"

# One Python process runs every reference and comparison (torch loads once).
REF_DIR=$REF $PY - "$SCRATCH" <<'PYEOF' && pass || fail "parity with the reference (see FAIL lines above)"
import contextlib, io, os, sys
sys.path.insert(0, os.environ["REF_DIR"])
import compare_outputs, reference_forward
S = sys.argv[1]
bad = 0
for line in open(os.path.join(S, "jobs")):
    name, model, *corpus = line.split()
    ref = os.path.join(S, f"ref-{name}.safetensors")
    corpus = os.path.join(S, corpus[0] if corpus else "corpus.jsonl")
    with contextlib.redirect_stdout(io.StringIO()):
        rc = reference_forward.main(["--model", model, "--corpus", corpus,
                                     "--out", ref, "--dtype", "float64"])
    if rc != 0:
        print(f"FAIL: reference run failed ({rc}): {name}")
        bad += 1
    elif compare_outputs.main(["--ref", ref, "--got", os.path.join(S, f"got-{name}.safetensors"),
                               "--label", name]) != 0:
        bad += 1
sys.exit(1 if bad else 0)
PYEOF

finish
