#!/usr/bin/env bash
# Forward throughput on a gpt-oss-20b-shaped model cut to 2 layers (issue 19), three programs on the
# same weights in the same run, alternated (A B C A B C A B C):
#   - `moeslice profile` on the GGUF (MXFP4 experts as llama.cpp stores them, the rest F32), the
#     layers without the LM head, whole command timed (start-up and writing the usage file included);
#   - llama.cpp's llama-bench (native build, bench/build_llama_cpp.sh) on the same GGUF, prompt
#     processing of 512 tokens (-p 512 -n 0: logits of the last token only);
#   - PyTorch eager, float32, on the dequantized weights (bench/torch_gpt_oss_baseline.py, OpenBLAS
#     first on LD_LIBRARY_PATH), layers only, model loading not timed.
# The model: hidden 2880, 64 heads of 64 (8 KV heads), 32 experts of width 2880, top-4, sliding
# window 128 on layer 0, sinks, YaRN (factor 32 of 4096, truncated as llama.cpp computes it), MXFP4
# experts; the vocabulary cut to 32768 (201088 in the release) so that PyTorch's float32 copy fits
# in memory beside the others on this machine; one document of 512 random tokens.
#
# Usage: bench/run_gpt_oss_bench.sh [BUILD_DIR] [WORK_DIR]   (needs tests/llama/node_modules for
# gguf-py and /work/llama-bench/build/bin/llama-bench, or LLAMA_BENCH=path)
set -euo pipefail
BUILD=${1:-build}
WORK=${2:-/tmp/moeslice-bench-gpt-oss}
THREADS=${THREADS:-2}
ROUNDS=${ROUNDS:-3}
LLAMA_BENCH=${LLAMA_BENCH:-/work/llama-bench/build/bin/llama-bench}
OPENBLAS_DIR=/usr/lib/x86_64-linux-gnu/openblas-openmp
SRC=$(cd "$(dirname "$0")/.." && pwd)
MOESLICE=$BUILD/apps/moeslice
mkdir -p "$WORK"

if [[ ! -f "$WORK/model/config.json" ]]; then
  "$MOESLICE" make-random --family gpt_oss --layers 2 --hidden 2880 --heads 64 --kv-heads 8 \
    --experts 32 --top-k 4 --expert-width 2880 --vocab 32768 --dtype mxfp4 --seed 20 \
    --set head_dim=64 --set sliding_window=128 --set 'rope_scaling={"rope_type": "yarn",
    "factor": 32.0, "original_max_position_embeddings": 4096, "beta_fast": 32.0, "beta_slow": 1.0,
    "truncate": true}' --out "$WORK/model" >/dev/null
fi
if [[ ! -f "$WORK/model.gguf" ]]; then
  GGUF_PY=$("$SRC/tests/llama/extract_gguf_py.sh" "$WORK/llama.cpp")
  /usr/bin/python3 "$SRC/tests/reference/hf_to_gguf.py" --gguf-py "$GGUF_PY" --model "$WORK/model" \
    --out "$WORK/model.gguf" --type f32
fi
/usr/bin/python3 - "$WORK/corpus.jsonl" <<'PY'
import json, random, sys
random.seed(20)
with open(sys.argv[1], "w") as out:
    out.write(json.dumps({"id": "doc0", "input_ids": [random.randrange(32768) for _ in range(512)]}) + "\n")
PY

RESULTS="$WORK/results-$(date -u +%Y%m%dT%H%M%S).jsonl"
echo "# $(date -u +%FT%TZ) $(uname -n) $(lscpu | sed -n 's/^Model name: *//p') threads=$THREADS rounds=$ROUNDS (shared machine: load $(cut -d' ' -f1-3 /proc/loadavg))"
for round in $(seq "$ROUNDS"); do
  start=$(date +%s.%N)
  "$MOESLICE" profile --model "$WORK/model.gguf" --corpus "$WORK/corpus.jsonl" --threads "$THREADS" \
    --quiet --force --out "$WORK/usage.safetensors" >/dev/null
  end=$(date +%s.%N)
  echo "{\"what\": \"moeslice_profile\", \"round\": $round, \"tokens\": 512, \"seconds\": $(echo "$end - $start" | bc)}" |
    tee -a "$RESULTS"
  "$LLAMA_BENCH" -m "$WORK/model.gguf" -p 512 -n 0 -t "$THREADS" -r 1 -o jsonl 2>/dev/null |
    /usr/bin/python3 -c 'import json, sys
for line in sys.stdin:
    r = json.loads(line)
    print(json.dumps({"what": "llama_bench_pp512", "round": int(sys.argv[1]), "tokens": r["n_prompt"],
                      "seconds": r["avg_ns"] / 1e9, "build": r.get("build_commit")}))' "$round" |
    tee -a "$RESULTS"
  LD_LIBRARY_PATH="$OPENBLAS_DIR${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" OMP_NUM_THREADS=$THREADS \
    /usr/bin/python3 "$SRC/bench/torch_gpt_oss_baseline.py" --model "$WORK/model" \
    --corpus "$WORK/corpus.jsonl" --threads "$THREADS" |
    /usr/bin/python3 -c 'import json, sys
for line in sys.stdin:
    r = json.loads(line); r["round"] = int(sys.argv[1]); print(json.dumps(r))' "$round" |
    tee -a "$RESULTS"
done

# Tokens/s per program (median of the rounds) and the ratios of the same run.
/usr/bin/python3 - "$RESULTS" <<'PY'
import json, statistics, sys
rows = [json.loads(line) for line in open(sys.argv[1]) if line.startswith("{")]
rate = {}
for what in ("moeslice_profile", "llama_bench_pp512", "torch_forward"):
    runs = [r["tokens"] / r["seconds"] for r in rows if r["what"] == what]
    rate[what] = statistics.median(runs)
    print(f"| {what} | {rate[what]:.1f} tok/s | rounds: {', '.join(f'{x:.1f}' for x in runs)} |")
print(f"moeslice / llama.cpp: {rate['moeslice_profile'] / rate['llama_bench_pp512']:.2f}x; "
      f"moeslice / torch: {rate['moeslice_profile'] / rate['torch_forward']:.2f}x")
PY
