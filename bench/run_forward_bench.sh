#!/usr/bin/env bash
# The forward-pass benchmark of docs/benchmarks.md in one run: builds the OLMoE-width random
# checkpoint and the 4 x 512-token corpus (once, under $WORK), then runs bench_forward in fp32 and
# bf16 and, in the same run, the eager PyTorch baseline on OpenBLAS, and prints the ratios.
#
# Usage: bench/run_forward_bench.sh [BUILD_DIR] [WORK_DIR]   (run it on an otherwise idle machine)
#        PROFILE=1 bench/run_forward_bench.sh ...   profiling throughput instead: no LM head on
#        either side (what `moeslice profile` runs), plus `moeslice profile` itself, timed.
set -euo pipefail
BUILD=${1:-build}
WORK=${2:-/tmp/moeslice-bench-forward}
THREADS=${THREADS:-2}
REPEAT=${REPEAT:-3}
OPENBLAS_DIR=/usr/lib/x86_64-linux-gnu/openblas-openmp
mkdir -p "$WORK"

"$(dirname "$0")/make_bench_model.sh" "$BUILD/apps/moeslice" "$WORK/model"
/usr/bin/python3 "$(dirname "$0")/make_bench_corpus.py" "$WORK/corpus.jsonl" 4 512 50304

RESULTS="$WORK/results-$(date -u +%Y%m%dT%H%M%S).jsonl"
echo "# $(date -u +%FT%TZ) $(uname -n) $(lscpu | sed -n 's/^Model name: *//p') threads=$THREADS repeat=$REPEAT"
PROFILE=${PROFILE:-0}
LM_HEAD_FLAG=()
[[ "$PROFILE" == 1 ]] && LM_HEAD_FLAG=(--skip-lm-head)
# The machine's GEMM peaks, measured now (moeslice's own fp32 and bf16 GEMMs on large products).
"$BUILD/bench/bench_kernels" --peak "$THREADS" | tee -a "$RESULTS"
for compute in fp32 bf16; do
  "$BUILD/bench/bench_forward" --model "$WORK/model" --corpus "$WORK/corpus.jsonl" \
    --compute "$compute" --threads "$THREADS" --repeat "$REPEAT" "${LM_HEAD_FLAG[@]}" |
    tee -a "$RESULTS"
  if [[ "$PROFILE" == 1 ]]; then
    /usr/bin/time -f '{"what": "moeslice_profile_command", "compute": "'"$compute"'", "seconds": %e, "peak_rss_kb": %M}' \
      "$BUILD/apps/moeslice" profile --model "$WORK/model" --corpus "$WORK/corpus.jsonl" \
      --compute "$compute" --threads "$THREADS" --quiet --force --out "$WORK/usage.safetensors" \
      2>&1 >/dev/null | tail -n 1 | tee -a "$RESULTS"
  fi
done
LD_LIBRARY_PATH="$OPENBLAS_DIR${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" OMP_NUM_THREADS=$THREADS \
  /usr/bin/python3 "$(dirname "$0")/torch_olmoe_baseline.py" --model "$WORK/model" \
  --corpus "$WORK/corpus.jsonl" --threads "$THREADS" --repeat "$REPEAT" | tee -a "$RESULTS"

# Ratios from this run only: mean seconds over the repeats on both sides.
/usr/bin/python3 - "$RESULTS" <<'PY'
import json, statistics, sys
rows = [json.loads(line) for line in open(sys.argv[1]) if line.startswith("{")]
ours = {c: statistics.mean(r["seconds"] for r in rows if r["what"] == "moeslice_forward" and r["compute"] == c)
        for c in ("fp32", "bf16")}
gflop = next(r["gflop"] for r in rows if r["what"] == "moeslice_forward")
tokens = next(r["tokens"] for r in rows if r["what"] == "moeslice_forward")
profile = any(r["what"] == "moeslice_forward" and r["lm_head"] is False for r in rows)
torch = {r["dtype"]: r["seconds"] for r in rows if r["what"] == "torch_forward" and r["lm_head"] != profile}
# The peak of each arithmetic: the best GEMM rate measured in this run, moeslice's or torch's.
peak = {r["dtype"]: r["value"] for r in rows if r["what"] == "torch_gemm_gflops"}
for r in rows:
    if r["what"] == "gemm_peak":
        key = {"fp32": "float32", "bf16": "bfloat16"}[r["compute"]]
        peak[key] = max(peak.get(key, 0.0), r["gflops_per_s"])
rss = {r["compute"]: r["peak_rss_mb"] for r in rows if r["what"] == "moeslice_forward_best"}
print("profiling (no LM head on either side)" if profile else "forward with the LM head")
print(f"| side | tokens/s | GFLOP/s | of measured GEMM peak | peak RSS MB |")
print(f"|---|---|---|---|---|")
for c, peak_key in (("fp32", "float32"), ("bf16", "bfloat16")):
    print(f"| moeslice {c} | {tokens / ours[c]:.0f} | {gflop / ours[c]:.0f} | "
          f"{gflop / ours[c] / peak[peak_key]:.0%} of {peak[peak_key]:.0f} | {rss[c]:.0f} |")
for d in ("float32", "bfloat16"):
    print(f"| torch {d} | {tokens / torch[d]:.0f} | {gflop / torch[d]:.0f} | "
          f"{gflop / torch[d] / peak[d]:.0%} of {peak[d]:.0f} | |")
print()
print(f"fp32 / torch float32:  {torch['float32'] / ours['fp32']:.2f}x  (target >= 1)")
print(f"bf16 / torch bfloat16: {torch['bfloat16'] / ours['bf16']:.2f}x  (target >= 1)")
print(f"bf16 / torch float32:  {torch['float32'] / ours['bf16']:.2f}x  (target >= 2)")
for r in rows:
    if r["what"] == "moeslice_profile_command":
        print(f"moeslice profile --compute {r['compute']}: {tokens / r['seconds']:.0f} tok/s including "
              f"start-up and writing ({gflop / r['seconds']:.0f} GFLOP/s, "
              f"{gflop / r['seconds'] / peak[{'fp32': 'float32', 'bf16': 'bfloat16'}[r['compute']]]:.0%} "
              f"of the peak), peak RSS {r['peak_rss_kb'] / 1024:.0f} MB")
PY
