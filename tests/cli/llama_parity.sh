#!/usr/bin/env bash
# Proof in llama.cpp itself: llama.cpp (node-llama-cpp's prebuilt CPU build, tests/llama) computes
# the same next-token distributions from a GGUF as moeslice's forward pass from the safetensors
# checkpoint it was converted from (tests/reference/hf_to_gguf.py, which follows llama.cpp's
# convert_hf_to_gguf.py), for olmoe, qwen3moe, qwen2moe, mixtral (`llama` with experts) and gpt-oss
# (sliding window 16 so that the longer documents use it, sinks, YaRN, biased experts), at
# F32, F16, Q8_0, Q6_K, Q4_K and MXFP4 experts (moeslice runs on the same weights: the F32 or F16
# checkpoint, or the quantized GGUF itself); and for keep plans of 25% and 50% of the experts:
#   - llama.cpp on the GGUF of `moeslice slice`'s output equals `moeslice logits --keep PLAN` on
#     the full checkpoint;
#   - the reference GGUF slicer (tests/reference/slice_gguf.py, the rule of issue 16) commutes with
#     conversion: slicing the GGUF gives the same bytes as converting the sliced checkpoint, and
#     llama.cpp on the sliced GGUF equals `moeslice logits --keep PLAN` at every type;
#   - moeslice's GGUF reader (inspect --json) opens every one of these files and sees their experts;
#   - and the comparison has teeth: the full model against a 50% plan is far apart.
# Measures: max |log-probability difference| over every position and token, or for quantized
# weights the mean KL; each with the top-1 agreement (docs/llama-proof.md).
#
# Usage: llama_parity.sh MOESLICE_BINARY SCRATCH_DIR. Exit 77 (skip) without Node.js 20, the
# node-llama-cpp install of scripts/setup.sh, or torch.
source "$(dirname "$0")/lib.bash"
set +e  # every check reports through fail() and the run goes on to the end
require_torch
require_llama_tools
S=$SCRATCH
# Measured on this machine (2 cores, node-llama-cpp 3.21.1's CPU build): see docs/llama-proof.md.
TOL_F32=2e-5   # max |dlogp|; measured 2.2e-6 .. 3.8e-6
TOL_F16=1e-2   # max |dlogp|; measured 2.0e-3 .. 3.1e-3 (llama.cpp rounds activations to F16)
KL_QUANT=2e-3  # mean KL; measured Q8_0 <= 1.3e-4, Q6_K <= 7.2e-4, Q4_K <= 6.3e-4, MXFP4 <= 3.8e-4
               # (a 50% plan against the full model: 0.11 .. 0.19)
bound() {  # bound TYPE: the compare_logprobs.py flag for weights of that type
  case $1 in
    f32) echo "--tolerance=$TOL_F32" ;;
    f16) echo "--tolerance=$TOL_F16" ;;
    *) echo "--max-kl=$KL_QUANT" ;;
  esac
}


# ---- checkpoints, plans, corpus -------------------------------------------------------------
# Per family: $f (F32), $f-f16 (F16) and $f-wide (F32, rows of 256 so that Q6_K and Q4_K apply to
# the attention and expert weights); each sliced by moeslice to 25% and 50%.
FAMILIES="olmoe qwen3_moe qwen2_moe mixtral glm4_moe deepseek_v3 gpt_oss"
TYPES="f32 f16 q8_0 q6_k q4_k mxfp4"
# deepseek2 at Q4_K: sliced models measured mean KL 3e-3 .. 6e-3 (llama.cpp's Q8_K activations
# flip group choices near ties, and a group flip moves both experts), beyond KL_QUANT; not checked.
types_of() {  # types_of FAMILY: the GGUF types checked (issue 18's families: fewer, for time)
  case $1 in
    glm4_moe) echo "f32 f16 q8_0 q4_k" ;;
    deepseek_v3) echo "f32 f16 q8_0" ;;
    *) echo "$TYPES" ;;
  esac
}
KEEPS="keep25 keep50"
VOCAB=272  # the byte vocabulary (259 tokens) and some unused ids
source_of() {  # source_of FAMILY TYPE: the checkpoint a GGUF of that type is converted from
  case $2 in
    f16) echo "$S/$1-f16" ;;
    q6_k | q4_k) echo "$S/$1-wide" ;;
    *) echo "$S/$1" ;;
  esac
}
seed=0
for f in $FAMILIES; do
  seed=$((seed + 1))
  kv=2
  [ "$f" = olmoe ] && kv=4  # llama.cpp's olmoe has no grouped-query attention
  common=(--family "$f" --layers 2 --vocab $VOCAB --kv-heads $kv --seed $seed)
  # deepseek2: MLA has one key/value head per query head; 16 experts in 2 routing groups of 8
  # (1 group per token), so that 25% and 50% plans keep 2 and 4 in each group.
  [ "$f" = deepseek_v3 ] && common=(--family "$f" --layers 2 --vocab $VOCAB --kv-heads 4 --experts 16 --seed $seed)
  # gpt-oss: a window the 30- and 64-token documents exceed, and YaRN as llama.cpp computes it
  # (correction range truncated; gpt-oss-20b's own config says truncate false, docs/gguf.md).
  [ "$f" = gpt_oss ] && common+=(--set sliding_window=16 --set 'rope_scaling={"rope_type": "yarn",
    "factor": 32.0, "original_max_position_embeddings": 4096, "beta_fast": 32.0, "beta_slow": 1.0,
    "truncate": true}')
  "$MOESLICE" make-random "${common[@]}" --out "$S/$f" >/dev/null || fail "make-random $f"
  "$MOESLICE" make-random "${common[@]}" --dtype f16 --out "$S/$f-f16" >/dev/null || fail "make-random $f f16"
  "$MOESLICE" make-random "${common[@]}" --hidden 256 --expert-width 256 --out "$S/$f-wide" >/dev/null ||
    fail "make-random $f wide"
  # transformers' DeepSeek-V3 routing masks the groups a token does not route to with 0.0,
  # llama.cpp's with -inf: they choose differently when a routed group holds a negative biased
  # score (docs/llama-proof.md; moeslice follows transformers). Correction biases raised by 1 keep
  # every biased score positive, where the two agree.
  if [ "$f" = deepseek_v3 ]; then
    $PY - "$REF" "$S/$f" "$S/$f-f16" "$S/$f-wide" <<'PYEOF' || fail "raising $f's correction biases"
import os, sys
sys.path.insert(0, sys.argv[1])
from safetensors_io import load_file, save_file
for model in sys.argv[2:]:
    path = os.path.join(model, "model.safetensors")
    tensors, meta = load_file(path)
    for name in tensors:
        if name.endswith("e_score_correction_bias"):
            tensors[name] = tensors[name] + 1
    save_file(path, tensors, meta)
PYEOF
  fi
  case $f in
    glm4_moe)  # layer 0 is dense (first_k_dense_replace 1)
      write_plan "$S/$f-keep25.json" null "[1,6]"
      write_plan "$S/$f-keep50.json" null "[0,2,5,7]" ;;
    deepseek_v3)
      write_plan "$S/$f-keep25.json" null "[1,6,9,14]"
      write_plan "$S/$f-keep50.json" null "[0,2,5,7,8,11,12,15]" ;;
    *)
      write_plan "$S/$f-keep25.json" "[1,6]" "[0,3]"
      write_plan "$S/$f-keep50.json" "[0,2,5,7]" "[1,3,4,6]" ;;
  esac
  for model in "$S/$f" "$S/$f-f16" "$S/$f-wide"; do
    for keep in $KEEPS; do
      "$MOESLICE" slice --model "$model" --plan "$S/$f-$keep.json" --out "$model-$keep" >/dev/null 2>&1 ||
        fail "moeslice slice $model $keep"
    done
  done
done
$PY - "$S/corpus.jsonl" $VOCAB <<'EOF'
import json, random, sys
rng = random.Random(16)
with open(sys.argv[1], "w") as f:
    for n in (1, 9, 30, 64):
        f.write(json.dumps({"input_ids": [rng.randrange(int(sys.argv[2])) for _ in range(n)]}) + "\n")
EOF

# ---- GGUFs (one Python process): converted, converted slices, reference slices --------------
# $f-$t.gguf: the full model; $f-$t-$keep.gguf: the moeslice slice converted;
# $f-$t-$keep.ref.gguf: the full GGUF sliced by slice_gguf.py.
: >"$S/gguf_jobs"
for f in $FAMILIES; do
  for t in $(types_of "$f"); do
    src=$(source_of "$f" "$t")
    echo "convert --model $src --out $S/$f-$t.gguf --type $t" >>"$S/gguf_jobs"
    for keep in $KEEPS; do
      echo "convert --model $src-$keep --out $S/$f-$t-$keep.gguf --type $t" >>"$S/gguf_jobs"
      echo "slice --model $S/$f-$t.gguf --plan $S/$f-$keep.json --out $S/$f-$t-$keep.ref.gguf" >>"$S/gguf_jobs"
      echo "same $S/$f-$t-$keep.ref.gguf $S/$f-$t-$keep.gguf --ignore-key general.name" >>"$S/gguf_jobs"
    done
  done
done
REF_DIR=$REF TOOLS=$TOOLS GGUF_PY=$GGUF_PY $PY - "$S/gguf_jobs" <<'EOF'
import os, sys
sys.path.insert(0, os.environ["REF_DIR"])
sys.path.insert(0, os.environ["TOOLS"])
import compare_gguf, hf_to_gguf, slice_gguf
tool = {"convert": hf_to_gguf.main, "slice": slice_gguf.main, "same": compare_gguf.main}
bad = 0
for line in open(sys.argv[1]):
    kind, *args = line.split()
    if tool[kind](["--gguf-py", os.environ["GGUF_PY"]] + args) != 0:
        print(f"FAIL: {line.strip()}")
        bad += 1
sys.exit(1 if bad else 0)
EOF
[ $? -eq 0 ] && pass || fail "GGUF conversion, reference slicing or their agreement (FAIL lines above)"
# $f-$t-$keep.ms.gguf: the full GGUF sliced by `moeslice slice`, which must equal the reference
# slice but for its moeslice.* keys.
: >"$S/ms_jobs"
for f in $FAMILIES; do
  for t in $(types_of "$f"); do
    for keep in $KEEPS; do
      "$MOESLICE" slice --model "$S/$f-$t.gguf" --plan "$S/$f-$keep.json" \
        --out "$S/$f-$t-$keep.ms.gguf" >"$S/$f-$t-$keep.ms.log" 2>&1 ||
        fail "moeslice slice $f-$t-$keep: $(cat "$S/$f-$t-$keep.ms.log")"
      echo "$S/$f-$t-$keep.ms.gguf $S/$f-$t-$keep.ref.gguf --ignore-key moeslice." >>"$S/ms_jobs"
    done
  done
done
TOOLS=$TOOLS GGUF_PY=$GGUF_PY $PY - "$S/ms_jobs" <<'EOF'
import os, sys
sys.path.insert(0, os.environ["TOOLS"])
import compare_gguf
bad = 0
for line in open(sys.argv[1]):
    if compare_gguf.main(["--gguf-py", os.environ["GGUF_PY"]] + line.split()) != 0:
        print(f"FAIL: moeslice slice differs from the reference slice: {line.strip()}")
        bad += 1
sys.exit(1 if bad else 0)
EOF
[ $? -eq 0 ] && pass || fail "moeslice's GGUF slices differ from the reference slicer's (FAIL lines above)"
# What llama.cpp's graph cannot compute is refused by key: its olmoe has no grouped-query attention.
"$MOESLICE" make-random --family olmoe --layers 1 --vocab $VOCAB --out "$S/olmoe-gqa" >/dev/null
expect_error 2 "olmoe-gqa/config.json: 'num_key_value_heads' is 2, expected 4" -- \
  $PY "$REF/hf_to_gguf.py" --gguf-py "$GGUF_PY" --model "$S/olmoe-gqa" --out "$S/olmoe-gqa.gguf"
[ ! -e "$S/olmoe-gqa.gguf" ] && pass || fail "a refused conversion left its output"
# Plans llama.cpp cannot load are refused by the reference slicer: one expert_count for all layers.
write_plan "$S/uneven.json" "[1,6]" "[0,3,4]"
expect_error 2 "kept counts differ across layers" -- $PY "$REF/slice_gguf.py" --gguf-py "$GGUF_PY" \
  --model "$S/olmoe-f32.gguf" --plan "$S/uneven.json" --out "$S/uneven.gguf"

# moeslice's own GGUF reader opens every converted and sliced file and sees what llama.cpp will
# (expert width from feed_forward_length for olmoe and llama, qwen2moe's shared expert from its
# tensors).
for f in $FAMILIES; do
  for file in "$S/$f"-*.gguf; do
    "$MOESLICE" inspect --json --model "$file" >"$file.inspect.json" 2>"$file.inspect.err" ||
      fail "moeslice inspect $file: $(cat "$file.inspect.err")"
  done
done
$PY - "$S" "$FAMILIES" <<'EOF' && pass || fail "moeslice inspect on the GGUFs (lines above)"
import glob, json, os, sys
S, families = sys.argv[1], sys.argv[2].split()
arch = {"olmoe": "olmoe", "qwen3_moe": "qwen3moe", "qwen2_moe": "qwen2moe", "mixtral": "llama",
        "glm4_moe": "glm4moe", "deepseek_v3": "deepseek2", "gpt_oss": "gpt-oss"}
bad = 0
for family in families:
    experts = 16 if family == "deepseek_v3" else 8
    for path in sorted(glob.glob(os.path.join(S, f"{family}-*.gguf.inspect.json"))):
        got = json.load(open(path))
        kept = experts // 4 if "keep25" in path else experts // 2 if "keep50" in path else experts
        wide = "-q6_k" in path or "-q4_k" in path
        config = json.load(open(os.path.join(S, family + ("-wide" if wide else ""), "config.json")))
        want = {"architecture": arch[family], "layers": 2, "experts_per_layer": kept,
                "experts_per_token": 2, "vocab_size": 272,
                "expert_width": config.get("moe_intermediate_size") or config["intermediate_size"],
                "shared_experts": 1 if family in ("qwen2_moe", "glm4_moe", "deepseek_v3") else 0}
        wrong = {k: got.get(k) for k, v in want.items() if got.get(k) != v}
        if wrong:
            print(f"{path}: {wrong}, expected {want}")
            bad += 1
sys.exit(1 if bad else 0)
EOF

# ---- llama.cpp (one node process) and moeslice ----------------------------------------------
# Each llama.cpp run NAME.gguf -> NAME.llama.json has a moeslice run NAME.moeslice.safetensors.
jobs=()
for f in $FAMILIES; do
  for t in $(types_of "$f"); do
    jobs+=(--model "$S/$f-$t.gguf" --out "$S/$f-$t.llama.json")
    for keep in $KEEPS; do
      jobs+=(--model "$S/$f-$t-$keep.ref.gguf" --out "$S/$f-$t-$keep.ref.llama.json")
      case $t in f32 | q8_0 | q4_k | mxfp4) jobs+=(--model "$S/$f-$t-$keep.ms.gguf" --out "$S/$f-$t-$keep.ms.llama.json") ;; esac
    done
  done
  for keep in $KEEPS; do
    jobs+=(--model "$S/$f-f32-$keep.gguf" --out "$S/$f-f32-$keep.llama.json")
  done
done
# One thread: ggml's threads wait for each other by spinning, which on a busy 2-core machine
# (ctest -j2 beside other work) made the 56 runs take 90 s instead of 12 s.
node "$TOOLS/next_token.mjs" --corpus "$S/corpus.jsonl" --threads 1 "${jobs[@]}" && pass || fail "llama.cpp run"
# A file llama.cpp refuses: next_token.mjs exits 1 and shows llama.cpp's reason, not only
# node-llama-cpp's bare "Failed to load model".
head -c 100000 "$S/olmoe-f32.gguf" >"$S/truncated.gguf"
expect_error 1 "llama.cpp \[error\].*data is not within the file bounds" -- \
  node "$TOOLS/next_token.mjs" --corpus "$S/corpus.jsonl" --model "$S/truncated.gguf" --out "$S/truncated.json"

logits() {  # logits NAME MODEL_DIR [flags]
  local name=$1 model=$2
  shift 2
  "$MOESLICE" logits --model "$model" --corpus "$S/corpus.jsonl" --threads 2 \
    --out "$S/$name.moeslice.safetensors" "$@" >"$S/$name.log" 2>&1 ||
    fail "moeslice logits $name: $(cat "$S/$name.log")"
}
: >"$S/compare_jobs"
compare() {  # compare LLAMA_NAME MOESLICE_NAME TYPE
  echo "--llama $S/$1.llama.json --moeslice $S/$2.moeslice.safetensors $(bound "$3") --label $1" >>"$S/compare_jobs"
}
for f in $FAMILIES; do
  for t in $(types_of "$f"); do
    weights=$(source_of "$f" "$t")
    # Quantized weights: moeslice computes with the quantized GGUF itself, as llama.cpp does.
    case $t in q8_0 | q6_k | q4_k | mxfp4) weights=$S/$f-$t.gguf ;; esac
    logits "$f-$t" "$weights"
    compare "$f-$t" "$f-$t" "$t"
    for keep in $KEEPS; do
      logits "$f-$t-$keep" "$weights" --keep "$S/$f-$keep.json"
      compare "$f-$t-$keep.ref" "$f-$t-$keep" "$t"
      case $t in f32 | q8_0 | q4_k | mxfp4) compare "$f-$t-$keep.ms" "$f-$t-$keep" "$t" ;; esac
    done
  done
  for keep in $KEEPS; do
    compare "$f-f32-$keep" "$f-f32-$keep" f32
  done
done

# ---- YaRN: glm4moe (YaRN's default attention factor) and deepseek2 (mscale = mscale_all_dim
# 0.707, which also scales the softmax), at F32, on documents beyond original_max_position 16.
yarn='"type":"yarn","factor":4.0,"original_max_position_embeddings":16,"beta_fast":8,"beta_slow":1'
"$MOESLICE" make-random --family glm4_moe --layers 2 --vocab $VOCAB --kv-heads 2 --seed 11 \
  --set "rope_scaling={$yarn}" --out "$S/glm4_moe-yarn" >/dev/null || fail "make-random glm4_moe-yarn"
"$MOESLICE" make-random --family deepseek_v3 --layers 2 --vocab $VOCAB --kv-heads 4 --seed 12 \
  --set "rope_scaling={$yarn,\"mscale\":0.707,\"mscale_all_dim\":0.707}" --out "$S/deepseek_v3-yarn" >/dev/null ||
  fail "make-random deepseek_v3-yarn"
for m in glm4_moe-yarn deepseek_v3-yarn; do
  $PY "$REF/hf_to_gguf.py" --gguf-py "$GGUF_PY" --model "$S/$m" --out "$S/$m-f32.gguf" >/dev/null || fail "hf_to_gguf $m"
done
node "$TOOLS/next_token.mjs" --corpus "$S/corpus.jsonl" --threads 1 \
  --model "$S/glm4_moe-yarn-f32.gguf" --out "$S/glm4_moe-yarn-f32.llama.json" \
  --model "$S/deepseek_v3-yarn-f32.gguf" --out "$S/deepseek_v3-yarn-f32.llama.json" && pass || fail "llama.cpp run (YaRN)"
for m in glm4_moe-yarn deepseek_v3-yarn; do
  logits "$m-f32" "$S/$m"
  compare "$m-f32" "$m-f32" f32
done

# ---- comparisons (one Python process) -------------------------------------------------------
TOOLS=$TOOLS TOL_F16=$TOL_F16 KL_QUANT=$KL_QUANT $PY - "$S" "$FAMILIES" <<'EOF'
import os, sys
sys.path.insert(0, os.environ["TOOLS"])
import compare_logprobs
S = sys.argv[1]
bad = sum(compare_logprobs.main(line.split()) != 0 for line in open(os.path.join(S, "compare_jobs")))
# Teeth: llama.cpp on each full model against moeslice with half the experts dropped is far
# beyond every tolerance above.
for family in sys.argv[2].split():
    worst, _, kl = compare_logprobs.measure(os.path.join(S, f"{family}-f32.llama.json"),
                                            os.path.join(S, f"{family}-f32-keep50.moeslice.safetensors"))
    mean_kl = sum(kl) / len(kl)
    print(f"control {family} (full model against a 50% plan): max |dlogp| {worst:.3g}, mean KL {mean_kl:.3g}")
    if worst < 10 * float(os.environ["TOL_F16"]) or mean_kl < 10 * float(os.environ["KL_QUANT"]):
        print(f"FAIL control {family}: the comparison does not tell a 50% plan from the full model")
        bad += 1
sys.exit(1 if bad else 0)
EOF
[ $? -eq 0 ] && pass || fail "llama.cpp and moeslice disagree (FAIL lines above)"

finish
