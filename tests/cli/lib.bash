# Shared helpers for the command-line tests (sourced, not run). Each test gets the moeslice binary
# as $1 and a scratch directory as $2.
set -euo pipefail
MOESLICE="$1"
SCRATCH="$2"
rm -rf "$SCRATCH"
mkdir -p "$SCRATCH"
FAILURES=0
PASSES=0
# The Python that sees Debian's python3-torch and python3-numpy (the first python3 on PATH may not).
PY=/usr/bin/python3
# The source tree (MOESLICE_SOURCE_DIR when set) and the PyTorch reference in it.
SRC=${MOESLICE_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
REF=$SRC/tests/reference

# require_torch: skips the test (exit 77, reported by ctest as skipped) when $PY has no torch.
require_torch() {
  if ! $PY -c 'import torch' 2>/dev/null; then
    echo "SKIP: $PY has no torch (install python3-torch)"
    exit 77
  fi
}

# require_llama_tools: skips the test (exit 77) without Node.js 20+ and tests/llama/node_modules
# (node-llama-cpp: llama.cpp's CPU binaries and its source bundle, installed by scripts/setup.sh);
# sets TOOLS (tests/llama) and GGUF_PY (gguf-py taken out of that bundle into the scratch dir).
require_llama_tools() {
  TOOLS=$SRC/tests/llama
  if ! command -v node >/dev/null || [ ! -d "$TOOLS/node_modules/node-llama-cpp" ]; then
    echo "SKIP: llama.cpp test tools missing (node, $TOOLS/node_modules/node-llama-cpp): run scripts/setup.sh"
    exit 77
  fi
  if [ "$(node -p 'process.versions.node.split(".")[0]')" -lt 20 ]; then
    echo "SKIP: node-llama-cpp 3.21.1 needs Node.js 20 or later, found $(node --version)"
    exit 77
  fi
  GGUF_PY=$("$TOOLS/extract_gguf_py.sh" "$SCRATCH/llama.cpp") || { echo "extracting gguf-py failed"; exit 1; }
}

# write_plan FILE LAYER0 LAYER1 ...: a keep plan, one entry per layer ("[0,2,5]" or null).
write_plan() {
  local file="$1"
  shift
  local entries
  entries=$(IFS=,; echo "$*")
  echo "{\"experts_kept_per_layer\": [$entries], \"pruning_method\": \"test\"}" >"$file"
}

fail() {
  echo "FAIL: $*" >&2
  FAILURES=$((FAILURES + 1))
}

pass() {
  PASSES=$((PASSES + 1))
}

# expect_error CODE PATTERN -- command...: the command must exit with CODE and print a message
# matching PATTERN (grep -E) on stderr, without crashing.
expect_error() {
  local code="$1" pattern="$2"
  shift 3
  local out rc=0
  out=$("$@" 2>&1 >/dev/null) || rc=$?
  if [ "$rc" -ne "$code" ]; then
    fail "expected exit $code, got $rc: $* :: $out"
  elif ! grep -Eq -- "$pattern" <<<"$out"; then
    fail "message does not match /$pattern/: $* :: $out"
  elif grep -Eq "AddressSanitizer|runtime error|terminate called|Segmentation" <<<"$out"; then
    fail "crash report: $* :: $out"
  else
    pass
  fi
}

# expect_ok -- command...: the command must succeed.
expect_ok() {
  shift 1
  local out rc=0
  out=$("$@" 2>&1) || rc=$?
  if [ "$rc" -ne 0 ]; then fail "exit $rc: $* :: $out"; else pass; fi
}

# check_sliced_model NAME FULL PLAN CORPUS: slicing FULL by PLAN passes the slicer's check, and the
# slice computes exactly the full model restricted to PLAN (check_sliced_logits.py: moeslice and
# the PyTorch reference). Outputs go to $SCRATCH/NAME-*.
check_sliced_model() {
  local name=$1 full=$2 plan_file=$3 corpus=$4
  local sliced="$SCRATCH/$name-sliced"
  expect_ok -- "$MOESLICE" slice --model "$full" --plan "$plan_file" --out "$sliced"
  expect_ok -- "$MOESLICE" logits --model "$full" --keep "$plan_file" --router \
    --corpus "$corpus" --out "$SCRATCH/$name-keep.safetensors"
  expect_ok -- "$MOESLICE" logits --model "$sliced" --router \
    --corpus "$corpus" --out "$SCRATCH/$name-sliced.safetensors"
  expect_ok -- $PY "$SRC/tests/cli/check_sliced_logits.py" "$full" "$sliced" "$plan_file" \
    "$corpus" "$SCRATCH/$name-keep.safetensors" "$SCRATCH/$name-sliced.safetensors"
}

finish() {
  echo "$PASSES passed, $FAILURES failed"
  [ "$FAILURES" -eq 0 ]
}
