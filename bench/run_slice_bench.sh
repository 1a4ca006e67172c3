#!/usr/bin/env bash
# Slicing a large checkpoint against `cp -r` of its output, cold cache. Each round: an untimed
# slice (the source cp copies), `cp -r` of the sliced directory, `slice` (verifying) with each
# moeslice binary given, then `slice --no-verify` with each. The page cache is dropped before
# every run (so run it as root, on an otherwise idle machine). Prints wall seconds, CPU seconds (user + system), peak RSS and each time's ratio to
# the cp of the same round. The order matters on this project's virtual machine: a run right
# after an O_DIRECT copy (slice --no-verify) takes a third more wall time and half again the CPU
# time, whoever runs it (measured: 27.8 s instead of 20.6 s for the same verifying slice), even
# after a pause; a run through the page cache resets it. So the --no-verify runs come last, and
# each round starts with the untimed slice; list a page-cache baseline binary before an O_DIRECT
# one. Before each timed run the script also waits SETTLE seconds for the previous run's writes.
#
# Usage: bench/run_slice_bench.sh [MOESLICE_BIN...]   (default build/apps/moeslice; give two
#        binaries to A/B them, interleaved within each round)
# Env:   MODEL (/tmp/big30), PLAN (/tmp/big30-p25.json), OUT (/tmp/big30-s25),
#        CP_OUT (/tmp/big30-cp), ROUNDS (3), VERIFY (1; 0 skips the verifying slice),
#        CP_SYNC (0; 1 also times `cp -r && sync`, which like slice has the bytes on disk when done),
#        SETTLE (10 seconds).
# Disk: needs room for OUT and CP_OUT (each the size of the sliced checkpoint); both are removed
# (untimed) before being written again, so no more than these two exist at once.
set -euo pipefail
BINS=("$@")
[[ ${#BINS[@]} -eq 0 ]] && BINS=(build/apps/moeslice)
MODEL=${MODEL:-/tmp/big30}
PLAN=${PLAN:-/tmp/big30-p25.json}
OUT=${OUT:-/tmp/big30-s25}
CP_OUT=${CP_OUT:-/tmp/big30-cp}
ROUNDS=${ROUNDS:-3}
VERIFY=${VERIFY:-1}
CP_SYNC=${CP_SYNC:-0}
SETTLE=${SETTLE:-10}
[[ $(id -u) -eq 0 ]] || { echo "run as root: the page cache is dropped before every run" >&2; exit 1; }

drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches; }
# timed LABEL COMMAND...: runs the command cold; leaves "LABEL seconds cpu_seconds peak_rss_mb" in
# $LINE and the seconds in $SECONDS_TAKEN.
timed() {
  local label=$1 stats user system
  shift
  sleep "$SETTLE"
  drop_caches
  stats=$(mktemp)
  /usr/bin/time -f '%e %M %U %S' -o "$stats" "$@" >/dev/null
  read -r SECONDS_TAKEN rss_kb user system <"$stats"
  rm -f "$stats"
  printf -v LINE '%-44s %7.2f s %6.1f cpu-s %6d MB' "$label" "$SECONDS_TAKEN" \
    "$(echo "$user + $system" | bc -l)" "$((rss_kb / 1024))"
}

echo "# $(date -u +%FT%TZ) $(uname -n) nproc=$(nproc) model=$MODEL plan=$PLAN rounds=$ROUNDS"
echo "# output: $(du -sh "$OUT" 2>/dev/null | cut -f1) in $OUT (size of the last slice, if any)"
for round in $(seq 1 "$ROUNDS"); do
  declare -a lines=() times=()
  # Untimed: a slice through the page cache, which also gives cp its source.
  rm -rf "$OUT"
  "${BINS[0]}" slice --model "$MODEL" --plan "$PLAN" --out "$OUT" --force >/dev/null
  rm -rf "$CP_OUT"
  timed "cp -r" cp -r "$OUT" "$CP_OUT"
  cp_line=$LINE
  cp_seconds=$SECONDS_TAKEN
  if [[ "$CP_SYNC" == 1 ]]; then
    rm -rf "$CP_OUT"
    # shellcheck disable=SC2016  # expanded by the inner shell
    timed "cp -r && sync" sh -c 'cp -r "$1" "$2" && sync' sh "$OUT" "$CP_OUT"
    cp_sync_line=$LINE
  fi
  modes=()
  [[ "$VERIFY" == 1 ]] && modes+=("")
  modes+=(--no-verify)
  for mode in "${modes[@]}"; do
    for bin in "${BINS[@]}"; do
      rm -rf "$OUT"
      timed "slice ${mode:---verify} $bin" "$bin" slice --model "$MODEL" --plan "$PLAN" \
        --out "$OUT" --force ${mode:+"$mode"}
      lines+=("$LINE")
      times+=("$SECONDS_TAKEN")
    done
  done
  echo "round $round"
  echo "  $cp_line"
  [[ "$CP_SYNC" == 1 ]] && echo "  $cp_sync_line"
  for i in "${!lines[@]}"; do
    printf '  %s  %5.2fx cp\n' "${lines[$i]}" "$(echo "${times[$i]} / $cp_seconds" | bc -l)"
  done
done
