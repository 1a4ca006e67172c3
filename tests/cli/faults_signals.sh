#!/usr/bin/env bash
# Fault test: SIGINT, SIGTERM, SIGHUP and kill -9 at random points of `slice`, `make-random` and
# `profile --checkpoint-every`. A caught signal ends the run with 128+signal and removes its
# staging entries; after kill -9 the next run removes them. No run ever leaves a partial output:
# the output is absent or whole (equal to an uninterrupted run's), and `profile --resume` after
# an interruption writes what one uninterrupted run writes.
source "$(dirname "$0")/lib.bash"
set -m  # background jobs keep SIGINT (a shell without job control starts them ignoring it)

RANDOM=${FAULT_SEED:-15}
M="$SCRATCH/model"
big=(--family olmoe --layers 2 --hidden 256 --experts 16 --top-k 2 --expert-width 512 --vocab 512 --seed 3)
"$MOESLICE" make-random "${big[@]}" --out "$M" >/dev/null
write_plan "$SCRATCH/plan.json" "[0,2,4,6,8,10,12,14]" "[1,3,5,7,9,11,13,15]"
"$MOESLICE" slice --model "$M" --plan "$SCRATCH/plan.json" --out "$SCRATCH/slice-ref" >/dev/null

# debris DIR NAME [PID]: staging entries of NAME (and of NAME.partial) left in DIR (by PID).
debris() { find "$1" -maxdepth 1 -name ".$2*.tmp-${3:-}*" | wc -l; }
# interrupt SIGNAL DELAY command...: runs the command in the background, sends SIGNAL after
# DELAY seconds; sets RC to its exit status and PID to its process id.
interrupt() {
  local signal="$1" delay="$2"
  shift 2
  "$@" >/dev/null 2>&1 &
  PID=$!
  sleep "$delay"
  kill -s "$signal" "$PID" 2>/dev/null || true
  RC=0
  { wait "$PID" || RC=$?; } 2>/dev/null
}
signal_number() { kill -l "$1"; }
delay() { printf '0.%02d' $((RANDOM % 20)); }
INTERRUPTED=0  # runs that the signal ended (the others had finished first)

# --- slice and make-random -----------------------------------------------------------------------
for round in 1 2 3; do
  for signal in INT TERM HUP KILL; do
    out="$SCRATCH/sliced"
    rm -rf "$out"
    interrupt "$signal" "$(delay)" "$MOESLICE" slice --model "$M" --plan "$SCRATCH/plan.json" --out "$out"
    if [ "$RC" -eq 0 ]; then
      diff -r "$out" "$SCRATCH/slice-ref" >/dev/null && pass || fail "slice finished before SIG$signal but differs"
    else
      INTERRUPTED=$((INTERRUPTED + 1))
      [ "$RC" -eq $((128 + $(signal_number "$signal"))) ] && pass || fail "slice after SIG$signal exited $RC"
      # Absent, or whole when the signal came after the rename into place.
      [ ! -e "$out" ] || diff -r "$out" "$SCRATCH/slice-ref" >/dev/null && pass \
        || fail "slice after SIG$signal left a partial output"
      if [ "$signal" != KILL ]; then
        [ "$(debris "$SCRATCH" sliced "$PID-")" -eq 0 ] && pass || fail "slice after SIG$signal left staging debris"
      fi
    fi
    # The next run removes what a killed one left, and writes the same output.
    expect_ok -- "$MOESLICE" slice --model "$M" --plan "$SCRATCH/plan.json" --out "$out" --force
    [ "$(debris "$SCRATCH" sliced)" -eq 0 ] && pass || fail "staging debris after the next slice (SIG$signal)"
    diff -r "$out" "$SCRATCH/slice-ref" >/dev/null && pass || fail "slice after SIG$signal then a rerun differs"

    # Interrupting a --force run keeps the old output whole.
    interrupt "$signal" "$(delay)" "$MOESLICE" slice --model "$M" --plan "$SCRATCH/plan.json" --out "$out" --force
    diff -r "$out" "$SCRATCH/slice-ref" >/dev/null && pass || fail "slice --force after SIG$signal: output not whole"
    [ "$signal" = KILL ] || [ "$(debris "$SCRATCH" sliced "$PID-")" -eq 0 ] && pass \
      || fail "slice --force after SIG$signal left staging debris"

    rnd="$SCRATCH/random"
    rm -rf "$rnd"
    interrupt "$signal" "$(delay)" "$MOESLICE" make-random "${big[@]}" --out "$rnd"
    if [ "$RC" -eq 0 ]; then
      diff -r "$rnd" "$M" >/dev/null && pass || fail "make-random finished before SIG$signal but differs"
    else
      [ ! -e "$rnd" ] || diff -r "$rnd" "$M" >/dev/null && pass \
        || fail "make-random after SIG$signal left a partial output"
      if [ "$signal" != KILL ]; then
        [ "$(debris "$SCRATCH" random "$PID-")" -eq 0 ] && pass || fail "make-random after SIG$signal left debris"
      fi
    fi
    expect_ok -- "$MOESLICE" make-random "${big[@]}" --out "$rnd" --force
    [ "$(debris "$SCRATCH" random)" -eq 0 ] && pass || fail "debris after the next make-random (SIG$signal)"
    diff -r "$rnd" "$M" >/dev/null && pass || fail "make-random after SIG$signal then a rerun differs"
  done
done

# --- profile --checkpoint-every, resumed ----------------------------------------------------------
P="$SCRATCH/small"
"$MOESLICE" make-random --family qwen3_moe --layers 2 --hidden 32 --heads 4 --experts 8 --top-k 2 \
  --expert-width 16 --vocab 64 --seed 4 --out "$P" >/dev/null
python3 - "$SCRATCH/corpus.jsonl" <<'PY'
import json, random, sys
random.seed(3)
with open(sys.argv[1], "w") as out:
    for d in range(1500):
        out.write(json.dumps({"id": f"d{d}", "input_ids": [random.randrange(64) for _ in range(64)]}) + "\n")
PY
# An array, not a function: the signal must reach moeslice, not a subshell running a function.
profile=("$MOESLICE" profile --model "$P" --corpus "$SCRATCH/corpus.jsonl" --threads 1 --quiet)
"${profile[@]}" --out "$SCRATCH/whole.safetensors" >/dev/null
for signal in INT TERM KILL HUP; do
  out="$SCRATCH/resumed.safetensors"
  rm -f "$out" "$out.partial"
  interrupt "$signal" "0.$((1 + RANDOM % 9))" "${profile[@]}" --checkpoint-every 100 --out "$out"
  [ "$signal" = KILL ] || [ "$(debris "$SCRATCH" resumed.safetensors "$PID-")" -eq 0 ] && pass \
    || fail "profile after SIG$signal left staging debris"
  # The signal may come after the output was renamed into place: then it is whole (and
  # OUT.partial may remain, as a crash there would leave it); else the run resumes.
  if [ ! -e "$out" ]; then
    INTERRUPTED=$((INTERRUPTED + 1))
    expect_ok -- "${profile[@]}" --checkpoint-every 100 --resume --out "$out"
    [ ! -e "$out.partial" ] && pass || fail "OUT.partial left after resuming (SIG$signal)"
  fi
  [ "$(debris "$SCRATCH" resumed.safetensors)" -eq 0 ] && pass || fail "debris after resuming (SIG$signal)"
  python3 "$(dirname "$0")/same_usage.py" "$SCRATCH/whole.safetensors" "$out" && pass || fail "profile resumed after SIG$signal differs"
done
echo "$INTERRUPTED slice and profile runs interrupted by the signal"
finish
