#!/usr/bin/env bash
# Scaling of `moeslice profile` over MPI ranks on one machine (docs/scaling.md): the OLMoE-width
# bench model of run_forward_bench.sh (2 layers, hidden 2048, 64 experts, top-8, BF16) and a
# corpus of DOCS documents of 512 tokens, profiled as 1 rank x 1 thread, 1 rank x 2 threads and
# 2 ranks x 1 thread, each REPEAT times; prints tokens/s and the ratios to 1 rank x 1 thread, and
# checks that the 2-rank profile equals the 1-rank one but for the recorded sources.
#
# Usage: bench/run_mpi_scaling.sh [BUILD_DIR] [WORK_DIR]   (on an otherwise idle machine)
set -euo pipefail
BUILD=${1:-build}
WORK=${2:-/tmp/moeslice-bench-mpi}
DOCS=${DOCS:-16}
REPEAT=${REPEAT:-2}
MOESLICE="$BUILD/apps/moeslice"
"$MOESLICE" --version | grep -q "built with MPI" || { echo "moeslice was built without MPI" >&2; exit 2; }
mkdir -p "$WORK"
"$(dirname "$0")/make_bench_model.sh" "$MOESLICE" "$WORK/model"
/usr/bin/python3 - "$WORK/corpus.jsonl" "$DOCS" <<'PY'
import json, random, sys
random.seed(7)
with open(sys.argv[1], "w") as out:
    for d in range(int(sys.argv[2])):
        out.write(json.dumps({"id": f"doc{d}", "input_ids": [random.randrange(50304) for _ in range(512)]}) + "\n")
PY
MPIRUN=(mpirun --oversubscribe --bind-to none)
[ "$(id -u)" -eq 0 ] && MPIRUN+=(--allow-run-as-root)
export OMPI_MCA_btl=self,vader
tokens=$((DOCS * 512))
run() {  # run RANKS THREADS OUT: prints seconds
  local start end
  start=$(date +%s.%N)
  if [ "$1" = 1 ]; then
    "$MOESLICE" profile --model "$WORK/model" --corpus "$WORK/corpus.jsonl" --threads "$2" --quiet \
      --force --out "$3" >/dev/null
  else
    "${MPIRUN[@]}" -n "$1" "$MOESLICE" profile --model "$WORK/model" --corpus "$WORK/corpus.jsonl" \
      --threads "$2" --quiet --force --out "$3" >/dev/null
  fi
  end=$(date +%s.%N)
  echo "$end - $start" | bc
}
echo "cpu: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; $DOCS x 512 tokens"
run 1 1 "$WORK/warm.safetensors" >/dev/null  # page cache
for round in $(seq "$REPEAT"); do
  base=$(run 1 1 "$WORK/one.safetensors")
  threads=$(run 1 2 "$WORK/threads.safetensors")
  ranks=$(run 2 1 "$WORK/ranks.safetensors")
  printf "round %d: 1 rank x 1 thread %.0f tok/s; 1 rank x 2 threads %.0f tok/s (%.2fx); 2 ranks x 1 thread %.0f tok/s (%.2fx)\n" \
    "$round" "$(echo "$tokens / $base" | bc -l)" "$(echo "$tokens / $threads" | bc -l)" \
    "$(echo "$base / $threads" | bc -l)" "$(echo "$tokens / $ranks" | bc -l)" "$(echo "$base / $ranks" | bc -l)"
done
# Equal but for the sources' "ranks" (set -e stops the script when they are not).
/usr/bin/python3 "$(dirname "$0")/../tests/cli/same_usage.py" "$WORK/one.safetensors" "$WORK/ranks.safetensors"
echo "2-rank profile equals the 1-rank profile (but for the recorded sources)"
