#!/usr/bin/env bash
# The quantized-weights benchmark of docs/benchmarks.md (issue 17) in one run: the OLMoE-width
# bench model (make_bench_model.sh) exported to an F16 GGUF with the project's converter
# (tests/reference/hf_to_gguf.py) and quantized by llama.cpp's own llama-quantize to Q8_0 and
# Q4_K_M; then, alternating, llama.cpp's prompt processing (`llama-bench -p 512 -n 0`: a 512-token
# batch, logits of the last token only) and `moeslice profile` (4 x 512 tokens, no LM head) on the
# same file, threads and tokens, ROUNDS times; also moeslice on the BF16 safetensors file. Prints
# tokens per second and the ratios, each measured in the same round.
#
# Usage: bench/run_quant_bench.sh [BUILD_DIR] [WORK_DIR]   (run it on an otherwise idle machine;
#        env: THREADS (2), ROUNDS (3), LLAMA_DIR (where build_llama_cpp.sh builds, /tmp/llama-bench),
#        TYPES (the GGUF types, "F16 Q8_0 Q4_K_M"; also F32 from the project's converter and BF16
#        or any other llama-quantize type from the F16 file))
set -euo pipefail
HERE="$(cd "$(dirname "$0")/.." && pwd)"
BUILD=${1:-build}
WORK=${2:-/tmp/moeslice-bench-forward}
THREADS=${THREADS:-2}
ROUNDS=${ROUNDS:-3}
LLAMA_BIN=$("$HERE/bench/build_llama_cpp.sh" "${LLAMA_DIR:-/tmp/llama-bench}")
MOESLICE="$BUILD/apps/moeslice"
mkdir -p "$WORK"
"$HERE/bench/make_bench_model.sh" "$MOESLICE" "$WORK/model"
/usr/bin/python3 "$HERE/bench/make_bench_corpus.py" "$WORK/corpus.jsonl" 4 512 50304
if [[ ! -f "$WORK/bench-F16.gguf" ]]; then
  GGUF_PY=$("$HERE/tests/llama/extract_gguf_py.sh" "$WORK")
  /usr/bin/python3 "$HERE/tests/reference/hf_to_gguf.py" --gguf-py "$GGUF_PY" --model "$WORK/model" \
    --out "$WORK/bench-F16.gguf" --type f16 >/dev/null
fi
TYPES=${TYPES:-F16 Q8_0 Q4_K_M}
for type in $TYPES; do
  [[ -f "$WORK/bench-$type.gguf" ]] && continue
  if [[ "$type" == F32 ]]; then
    /usr/bin/python3 "$HERE/tests/reference/hf_to_gguf.py" --gguf-py "$("$HERE/tests/llama/extract_gguf_py.sh" "$WORK")" \
      --model "$WORK/model" --out "$WORK/bench-F32.gguf" --type f32 >/dev/null
  else
    "$LLAMA_BIN/llama-quantize" "$WORK/bench-F16.gguf" "$WORK/bench-$type.gguf" "$type" "$THREADS" >/dev/null 2>&1
  fi
done

echo "# $(date -u +%FT%TZ) $(lscpu | sed -n 's/^Model name: *//p') threads=$THREADS rounds=$ROUNDS" \
  "moeslice $(git -C "$HERE" rev-parse --short HEAD)"
echo "# load before: $(cut -d' ' -f1-3 /proc/loadavg)"
RESULTS="$WORK/quant-results-$(date -u +%Y%m%dT%H%M%S).txt"
moeslice_tps() {  # model -> tokens/s of `moeslice profile`
  local start end
  start=$(date +%s.%N)
  "$MOESLICE" profile --model "$1" --corpus "$WORK/corpus.jsonl" --threads "$THREADS" --quiet \
    --force --out "$WORK/usage.safetensors" >/dev/null
  end=$(date +%s.%N)
  /usr/bin/python3 -c "print(f'{2048 / ($end - $start):.1f}')"
}
llama_tps() {  # model -> mean tokens/s of llama-bench pp512 (3 repetitions)
  "$LLAMA_BIN/llama-bench" -m "$1" -p 512 -n 0 -t "$THREADS" -r 3 -o csv 2>/dev/null |
    /usr/bin/python3 -c "import csv, sys; print(next(r for r in csv.DictReader(sys.stdin))['avg_ts'])"
}
for round in $(seq "$ROUNDS"); do
  echo "round $round BF16-safetensors moeslice $(moeslice_tps "$WORK/model")" | tee -a "$RESULTS"
  for type in $TYPES; do
    echo "round $round $type llama $(llama_tps "$WORK/bench-$type.gguf") moeslice $(moeslice_tps "$WORK/bench-$type.gguf")" |
      tee -a "$RESULTS"
  done
done
echo "# load after: $(cut -d' ' -f1-3 /proc/loadavg)"
/usr/bin/python3 - "$RESULTS" $TYPES <<'PY'
import statistics, sys
rows = [line.split() for line in open(sys.argv[1])]
types = sys.argv[2:]
print("| file | llama.cpp pp512 tok/s | moeslice profile tok/s | moeslice / llama.cpp (per round) |")
print("|---|---|---|---|")
for t in types:
    r = [x for x in rows if x[2] == t]
    llama = [float(x[4]) for x in r]
    ours = [float(x[6]) for x in r]
    ratios = ", ".join(f"{o / l:.2f}" for o, l in zip(ours, llama))
    print(f"| {t} GGUF | {statistics.median(llama):.0f} | {statistics.median(ours):.0f} | {ratios} |")
bf16 = [float(x[4]) for x in rows if x[2] == "BF16-safetensors"]
print(f"| BF16 safetensors | | {statistics.median(bf16):.0f} | |")
PY
