#!/usr/bin/env bash
# The OLMoE-width bench model of docs/benchmarks.md (2 layers, hidden 2048, 64 experts of width
# 1024, top 8, vocabulary 50304, BF16, seed 1), written to DIR once: an existing DIR/config.json
# is kept. Used by run_forward_bench.sh, run_quant_bench.sh, run_command_bench.sh and
# run_mpi_scaling.sh.
# Usage: bench/make_bench_model.sh MOESLICE_BINARY DIR
set -euo pipefail
MOESLICE=${1:?usage: make_bench_model.sh MOESLICE_BINARY DIR}
DIR=${2:?usage: make_bench_model.sh MOESLICE_BINARY DIR}
if [[ ! -f "$DIR/config.json" ]]; then
  "$MOESLICE" make-random --family olmoe --out "$DIR" --dtype bf16 --seed 1 \
    --set hidden_size=2048 --set num_attention_heads=16 --set num_key_value_heads=16 \
    --set num_experts=64 --set intermediate_size=1024 --set num_experts_per_tok=8 \
    --set vocab_size=50304 --set num_hidden_layers=2 >/dev/null
fi
