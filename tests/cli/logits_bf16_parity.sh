#!/usr/bin/env bash
# Parity of `moeslice logits --compute bf16 --router` with the PyTorch reference run in bfloat16
# (tests/reference, --dtype bfloat16) on every make_tiny variant with BF16 weights, plus one F32
# checkpoint (weights rounded to BF16 block by block), gpt_oss with MXFP4 experts and one
# restricted-routing plan. Per case: at least 99% of the token
# slots choose the same experts (as sets per token: slot order does not change the output), and
# every document's logits are within 2e-2 relative (max|diff| / max|ref|) on the tokens whose
# choices all agree (a flipped near-tie changes a token's output by design). Also: bf16 results do
# not depend on the thread count, a bad --compute value is refused, and the fp32 default is
# unchanged by an explicit --compute fp32.
#
# Usage: logits_bf16_parity.sh MOESLICE_BINARY SCRATCH_DIR. Exit 77 (skip) without torch or when
# the binary was built without oneDNN.
source "$(dirname "$0")/lib.bash"
set +e  # every check reports through fail() and the run goes on to the end
require_torch
BIN=$MOESLICE
S=$SCRATCH

$PY "$REF/make_tiny.py" --all "$S/bf16" --dtype BF16 >/dev/null || { echo "make_tiny failed"; exit 1; }
$PY "$REF/make_tiny.py" --out "$S/f32_olmoe" --variant olmoe >/dev/null || exit 1
VARIANTS=$(cd "$S/bf16" && ls -d */ | tr -d /)

# Documents of 16 to 130 tokens. Shorter ones are left out on purpose: for products as tiny as
# [T, T] x [T, head_dim] with T <= 8, PyTorch 1.13 takes small-matrix CPU kernels that accumulate
# in BF16 (round after every multiply-add) instead of fp32; no real model shape reaches them, and
# moeslice (like transformers on real sizes) accumulates in fp32.
$PY - "$S" <<'EOF' || exit 1
import json, os, random, sys
S = sys.argv[1]
rng = random.Random(11)
with open(os.path.join(S, "corpus.jsonl"), "w") as f:
    for n, length in enumerate((16, 23, 40, 64, 97, 130)):
        ids = [rng.randrange(128) for _ in range(length)]
        f.write(json.dumps({"id": f"doc{n}", "input_ids": ids}) + "\n")
EOF

# Without oneDNN the bf16 mode is refused (exit 2, naming the library): skip, visibly.
probe=$("$BIN" logits --model "$S/bf16/olmoe" --corpus "$S/corpus.jsonl" --compute bf16 \
  --out "$S/probe.safetensors" 2>&1 >/dev/null)
rc=$?
if [ $rc -eq 2 ] && grep -q "oneDNN" <<<"$probe"; then
  echo "SKIP: this moeslice has no bf16 GEMM: $probe"
  exit 77
fi
[ $rc -eq 0 ] || fail "moeslice logits --compute bf16 (probe) exited $rc: $probe"

: >"$S/jobs"
run() {  # run NAME MODEL_DIR [--keep PLAN]: moeslice bf16 output; the reference gets the same flags
  local name=$1 model=$2
  shift 2
  if ! "$BIN" logits --model "$model" --corpus "$S/corpus.jsonl" --out "$S/got_$name.safetensors" \
      --router --compute bf16 --threads 2 "$@" >"$S/log_$name" 2>&1; then
    fail "moeslice logits --compute bf16 ($name): $(cat "$S/log_$name")"
    return
  fi
  echo "$name $model $*" >>"$S/jobs"
}
for v in $VARIANTS; do run "$v" "$S/bf16/$v"; done
# gpt_oss with its experts as MXFP4 blocks (dequantized, then rounded to BF16 as the weights).
$PY "$REF/make_tiny.py" --out "$S/mxfp4_gpt_oss" --variant gpt_oss --dtype BF16 --mxfp4 >/dev/null ||
  fail "make_tiny --mxfp4"
run mxfp4_gpt_oss "$S/mxfp4_gpt_oss"
run f32_olmoe "$S/f32_olmoe"
# Restricted routing: a plan dropping a different expert subset in each layer.
echo '{"experts_kept_per_layer": [[0, 1, 2, 4, 5, 7], [1, 2, 3, 5, 6], [0, 2, 3, 4, 6, 7]]}' \
  >"$S/plan_olmoe.json"
run keep_olmoe "$S/bf16/olmoe" --keep "$S/plan_olmoe.json"

# One Python process runs every reference and comparison (torch loads once). A token whose expert
# choice flipped in some layer (a near-tie that one BF16 rounding decides) is out of the logits
# check by design; the flips themselves are bounded by the 99% slot rule and reported.
REF_DIR=$REF $PY - "$S" <<'EOF'
import contextlib, io, os, sys
sys.path.insert(0, os.environ["REF_DIR"])
import torch
import reference_forward, safetensors_io
S = sys.argv[1]
LOGIT_TOL, SLOT_MIN = 2e-2, 0.99
bad = 0
for line in open(os.path.join(S, "jobs")):
    name, model, *extra = line.split()
    ref_path = os.path.join(S, f"ref_{name}.safetensors")
    with contextlib.redirect_stdout(io.StringIO()):
        rc = reference_forward.main(["--model", model, "--corpus", os.path.join(S, "corpus.jsonl"),
                                     "--out", ref_path, "--dtype", "bfloat16", "--threads", "2"]
                                    + extra)
    if rc != 0:
        print(f"FAIL {name}: reference run failed ({rc})")
        bad += 1
        continue
    ref, _ = safetensors_io.load_file(ref_path)
    got, _ = safetensors_io.load_file(os.path.join(S, f"got_{name}.safetensors"))
    worst = worst_flipped = 0.0
    slots = same = flipped_tokens = 0
    problems = []
    docs = sorted(int(n.split(".")[1]) for n in ref if n.count(".") == 1)
    for d in docs:
        r, g = ref[f"doc.{d}"].double(), got.get(f"doc.{d}")
        if g is None or g.shape != r.shape:
            problems.append(f"doc.{d}: logits missing or misshapen")
            continue
        flipped = torch.zeros(r.shape[0], dtype=torch.bool)
        for n in ref:
            if not (n.startswith(f"doc.{d}.layer.") and n.endswith(".experts")):
                continue
            re_, ge = ref[n].tolist(), got[n].tolist() if n in got else None
            if ge is None or len(ge) != len(re_):
                problems.append(f"{n}: missing or misshapen")
                continue
            for t, (rt, gt) in enumerate(zip(re_, ge)):
                slots += len(rt)
                same += len(set(rt) & set(gt))
                flipped[t] |= set(rt) != set(gt)
        scale = r.abs().max()
        token_diff = (g.double() - r).abs().max(dim=1).values / scale
        kept = token_diff[~flipped]
        diff = kept.max().item() if kept.numel() else 0.0
        worst = max(worst, diff)
        if flipped.any():
            worst_flipped = max(worst_flipped, token_diff[flipped].max().item())
        flipped_tokens += int(flipped.sum())
        if diff > LOGIT_TOL:
            problems.append(f"doc.{d}: logits max|diff|/max|ref| = {diff:.3g} > {LOGIT_TOL:g}")
    frac = same / slots if slots else 0.0
    if frac < SLOT_MIN:
        problems.append(f"same experts in {frac:.4f} of {slots} slots < {SLOT_MIN}")
    status = "OK" if not problems else "FAIL"
    print(f"{status} bf16 {name}: logits max rel diff {worst:.2e}; same experts {same}/{slots} "
          f"slots ({100 * frac:.2f}%); {flipped_tokens} token(s) with a flipped choice "
          f"(their logits: {worst_flipped:.2e})")
    for p in problems[:8]:
        print(f"  {p}")
    bad += bool(problems)
sys.exit(1 if bad else 0)
EOF
[ $? -eq 0 ] || fail "bf16 parity with the reference (see FAIL lines above)"

# The thread count does not change a single bit in bf16 mode either.
for t in 1 3; do
  "$BIN" logits --model "$S/bf16/qwen2_moe" --corpus "$S/corpus.jsonl" --router --compute bf16 \
    --threads $t --out "$S/threads_$t.safetensors" >/dev/null 2>&1 || fail "--threads $t run"
done
cmp -s "$S/threads_1.safetensors" "$S/threads_3.safetensors" ||
  fail "bf16: --threads 1 and --threads 3 outputs differ"

# --compute fp32 is the default, bit for bit.
"$BIN" logits --model "$S/bf16/olmoe" --corpus "$S/corpus.jsonl" --router \
  --out "$S/default.safetensors" >/dev/null 2>&1 || fail "default run"
"$BIN" logits --model "$S/bf16/olmoe" --corpus "$S/corpus.jsonl" --router --compute fp32 \
  --out "$S/fp32.safetensors" >/dev/null 2>&1 || fail "--compute fp32 run"
cmp -s "$S/default.safetensors" "$S/fp32.safetensors" || fail "--compute fp32 differs from the default"

# A bad value is refused before anything is computed.
"$BIN" logits --model "$S/bf16/olmoe" --corpus "$S/corpus.jsonl" --compute fp16 \
  --out "$S/bad.safetensors" >/dev/null 2>"$S/bad_err"
rc=$?
[ $rc -ne 0 ] || fail "--compute fp16 was accepted"
[ ! -e "$S/bad.safetensors" ] || fail "--compute fp16 wrote an output"

finish
