#!/usr/bin/env bash
# Forward throughput of a DeepSeek-V3-shaped model (docs/benchmarks.md), moeslice beside eager
# PyTorch with the same maths (bench/torch_deepseek_baseline.py), in one run. The model: 2 layers,
# both MoE, DeepSeek-V3's real widths (hidden 7168, 128 heads, MLA with q_lora_rank 1536,
# kv_lora_rank 512, qk_nope/rope 128/64, v_head 128; experts of width 2048, top-8, one shared
# expert, routed_scaling_factor 2.5, its released YaRN rope_scaling), the expert count cut to 12
# in 4 groups (3 kept per token) and the vocabulary to 8192 so the BF16 file is ~3.3 GB; 2
# documents x 512 random tokens. ROUNDS rounds, each running moeslice fp32, torch float32,
# moeslice bf16, torch bfloat16 in turn (a shared machine's load falls on both sides), then the
# tokens per wall second and per CPU second, and the ratios, of every round and their medians.
# The model is deleted at the end unless KEEP_MODEL=1 (it is 3.3 GB).
#
# Usage: bench/run_deepseek_bench.sh [BUILD_DIR] [WORK_DIR]
set -euo pipefail
HERE=$(dirname "$0")
BUILD=${1:-build} WORK=${2:-/tmp/moeslice-bench-deepseek}
THREADS=${THREADS:-2} ROUNDS=${ROUNDS:-3}
mkdir -p "$WORK"
[[ "${KEEP_MODEL:-0}" == 1 ]] || trap 'rm -rf "$WORK/model"' EXIT

if [[ ! -f "$WORK/model/config.json" ]]; then
  "$BUILD/apps/moeslice" make-random --family deepseek_v3 --out "$WORK/model" --dtype bf16 --seed 1 \
    --layers 2 --hidden 7168 --heads 128 --kv-heads 128 --experts 12 --top-k 8 \
    --expert-width 2048 --vocab 8192 \
    --set q_lora_rank=1536 --set kv_lora_rank=512 --set qk_nope_head_dim=128 \
    --set qk_rope_head_dim=64 --set v_head_dim=128 --set intermediate_size=18432 \
    --set first_k_dense_replace=0 --set n_group=4 --set topk_group=3 --set n_shared_experts=1 \
    --set routed_scaling_factor=2.5 --set max_position_embeddings=163840 \
    --set 'rope_scaling={"beta_fast": 32, "beta_slow": 1, "factor": 40, "mscale": 1.0, "mscale_all_dim": 1.0, "original_max_position_embeddings": 4096, "type": "yarn"}' \
    >/dev/null
fi
/usr/bin/python3 "$HERE/make_bench_corpus.py" "$WORK/corpus.jsonl" 2 512 8192

RESULTS="$WORK/results-$(date -u +%Y%m%dT%H%M%S).jsonl"
echo "# $(date -u +%FT%TZ) $(uname -n) $(lscpu | sed -n 's/^Model name: *//p') threads=$THREADS rounds=$ROUNDS"
echo "# commit $(git -C "$HERE" rev-parse --short HEAD 2>/dev/null || echo unknown) OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset} load $(cut -d" " -f1-3 /proc/loadavg)"
moeslice() {  # moeslice ROUND COMPUTE
  "$BUILD/bench/bench_forward" --model "$WORK/model" --corpus "$WORK/corpus.jsonl" \
    --compute "$2" --threads "$THREADS" --repeat 1 | sed "s/^{/{\"round\": $1, /" | tee -a "$RESULTS"
}
torch() {  # torch ROUND DTYPE, on OpenBLAS (first on LD_LIBRARY_PATH)
  local openblas=/usr/lib/x86_64-linux-gnu/openblas-openmp
  LD_LIBRARY_PATH="$openblas${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" OMP_NUM_THREADS=$THREADS \
    /usr/bin/python3 "$HERE/torch_deepseek_baseline.py" --model "$WORK/model" \
    --corpus "$WORK/corpus.jsonl" --threads "$THREADS" --dtype "$2" |
    sed "s/^{/{\"round\": $1, /" | tee -a "$RESULTS"
}
for round in $(seq 1 "$ROUNDS"); do
  moeslice "$round" fp32
  torch "$round" float32
  moeslice "$round" bf16
  torch "$round" bfloat16
done

# Ratios of each round (the programs of a round ran back to back) and their medians.
/usr/bin/python3 - "$RESULTS" <<'PY'
import json, statistics, sys
rows = [json.loads(line) for line in open(sys.argv[1]) if line.startswith("{")]
rounds = sorted({r["round"] for r in rows})
def row(what, key, value, rnd):
    return next(r for r in rows if r["what"] == what and r.get(key) == value and r["round"] == rnd)
# tokens per wall second, and per CPU second of the process (all its threads): on a machine shared
# with other jobs the second is the steadier measure of the work each side does.
for title, rate in (("tokens per second (wall)", lambda r: r["tokens"] / r["seconds"]),
                    ("tokens per CPU second", lambda r: r["tokens"] / r["cpu_seconds"])):
    table = []
    for rnd in rounds:
        t = {"ms_fp32": rate(row("moeslice_forward", "compute", "fp32", rnd)),
             "torch_fp32": rate(row("torch_forward", "dtype", "float32", rnd)),
             "ms_bf16": rate(row("moeslice_forward", "compute", "bf16", rnd)),
             "torch_bf16": rate(row("torch_forward", "dtype", "bfloat16", rnd))}
        t["r_fp32"] = t["ms_fp32"] / t["torch_fp32"]
        t["r_bf16"] = t["ms_bf16"] / t["torch_bf16"]
        t["r_bf16_fp32"] = t["ms_bf16"] / t["torch_fp32"]
        table.append(t)
    print(f"\n{title}\n")
    print("| round | moeslice fp32 | torch float32 | moeslice bf16 | torch bfloat16 "
          "| fp32 / torch float32 | bf16 / torch bfloat16 | bf16 / torch float32 |")
    print("|---|---|---|---|---|---|---|---|")
    med = {k: statistics.median(t[k] for t in table) for k in table[0]}
    for name, t in [*zip(rounds, table), ("median", med)]:
        print(f"| {name} | {t['ms_fp32']:.1f} | {t['torch_fp32']:.1f} | {t['ms_bf16']:.1f} | {t['torch_bf16']:.1f} "
              f"| {t['r_fp32']:.2f}x | {t['r_bf16']:.2f}x | {t['r_bf16_fp32']:.2f}x |")
peak = {r["dtype"]: r["value"] for r in rows if r["what"] == "torch_gemm_gflops"}
print(f"torch's 2048^3 matrix product in the last round: float32 {peak['float32']} GFLOP/s, "
      f"bfloat16 {peak['bfloat16']} GFLOP/s")
PY
