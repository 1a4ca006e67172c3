#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz (clang-14, ASan + UBSan, assertions on) into
# build-fuzz/ and runs each from its seed corpus (tests/fuzz/corpus/<target>/) for a bounded time.
# Fails on any finding: a crash, a sanitizer report, a leak, an input slower than --timeout
# seconds or one that needs more than --rss-mb of memory; the input is saved as
# build-fuzz/findings/<target>-{crash,leak,timeout,oom}-*, ready to become a regression seed.
#
#   scripts/fuzz.sh                      # CI: every target for 25 s, two at a time
#   scripts/fuzz.sh --seconds 600        # a longer local run
#   scripts/fuzz.sh --seconds 60 tokenizer corpus_lines    # some targets only
#
# New inputs that reach new code are kept in build-fuzz/corpus/<target>/ (not checked in), so a
# second run continues where the first stopped.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=25
jobs="$(nproc)"
timeout=10
rss_mb=2048
build_dir=build-fuzz
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds="$2"; shift 2 ;;
    --jobs) jobs="$2"; shift 2 ;;
    --timeout) timeout="$2"; shift 2 ;;
    --rss-mb) rss_mb="$2"; shift 2 ;;
    --build-dir) build_dir="$2"; shift 2 ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    -*) echo "fuzz.sh: unknown option $1" >&2; exit 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done

case "$build_dir" in /*) ;; *) build_dir="$PWD/$build_dir" ;; esac
compiler="${CXX_FUZZ:-clang++-14}"
if ! command -v "$compiler" >/dev/null; then
  echo "fuzz.sh: $compiler not found (Debian: apt-get install clang-14 libclang-rt-14-dev)" >&2
  exit 2
fi

echo "== fuzz build ($compiler, ASan + UBSan + libFuzzer) in $build_dir =="
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
cmake -S . -B "$build_dir" -G Ninja -DMOESLICE_FUZZ=ON -DCMAKE_CXX_COMPILER="$compiler" \
  -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-O1 -g" "${launcher[@]}" >/dev/null
cmake --build "$build_dir" -j"$(nproc)"

if [ ${#targets[@]} -eq 0 ]; then
  for source in tests/fuzz/fuzz_*.cpp; do
    name="$(basename "$source" .cpp)"
    targets+=("${name#fuzz_}")
  done
fi

mkdir -p "$build_dir/findings" "$build_dir/logs" "$build_dir/tmp"
# The targets write the fuzzed bytes to scratch files for readers that take a path.
export TMPDIR="$build_dir/tmp"
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:symbolize=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"

# Runs one target; its log is build-fuzz/logs/<target>.log.
run_target() {
  local name="$1"
  local binary="$build_dir/tests/fuzz/fuzz_$name"
  local seeds="tests/fuzz/corpus/$name"
  local work="$build_dir/corpus/$name"
  [ -x "$binary" ] || { echo "fuzz.sh: no target $name ($binary)" >&2; return 2; }
  [ -d "$seeds" ] || { echo "fuzz.sh: no seed corpus $seeds" >&2; return 2; }
  mkdir -p "$work"
  "$binary" "$work" "$seeds" -max_total_time="$seconds" -timeout="$timeout" \
    -rss_limit_mb="$rss_mb" -print_final_stats=1 \
    -artifact_prefix="$build_dir/findings/$name-" >"$build_dir/logs/$name.log" 2>&1
}
export -f run_target
export build_dir seconds timeout rss_mb

echo "== fuzzing ${#targets[@]} targets for ${seconds}s each, $jobs at a time =="
status=0
printf '%s\n' "${targets[@]}" | xargs -P "$jobs" -I{} bash -c 'run_target "$1"' _ {} || status=$?

# One line per target: executions, coverage (edges) and features at the end, the corpus size.
printf '%-22s %12s %8s %8s %8s  %s\n' target executions exec/s cov ft result
for name in "${targets[@]}"; do
  log="$build_dir/logs/$name.log"
  execs="$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*$' || true)"
  rate="$(grep -oE 'stat::average_exec_per_sec: +[0-9]+' "$log" | tail -1 | grep -o '[0-9]*$' || true)"
  cov="$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*$' || true)"
  ft="$(grep -o 'ft: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*$' || true)"
  result=ok
  if grep -qE '^==[0-9]+==ERROR|^SUMMARY: |runtime error:|Test unit written|deadly signal' "$log"; then
    result="FINDING (see $log)"
    status=1
  fi
  printf '%-22s %12s %8s %8s %8s  %s\n' "$name" "${execs:--}" "${rate:--}" "${cov:--}" "${ft:--}" "$result"
done
if [ "$status" -ne 0 ]; then
  echo "fuzz.sh: findings; inputs in $build_dir/findings/, logs in $build_dir/logs/" >&2
  for log in "$build_dir"/logs/*.log; do
    grep -qE '^==[0-9]+==ERROR|^SUMMARY: |runtime error:|deadly signal' "$log" || continue
    echo "--- $log" >&2
    grep -E -m 30 'ERROR|SUMMARY|runtime error|#[0-9]+ 0x|what\(\)|Test unit written' "$log" >&2 || true
  done
fi
exit "$status"
