#!/usr/bin/env bash
# Fault test: a shard of the model changes while a command reads it. Truncated while `profile
# --stream-layers` runs: the SIGBUS that reading the vanished pages raises becomes a message
# naming the shard, exit 1, no output and no staging debris. Rewritten in place (a new
# modification time, same size) or replaced while `profile` or `logits` runs: refused before the
# output is written (check_unchanged), naming the shard and what changed.
source "$(dirname "$0")/lib.bash"
set -m

M="$SCRATCH/model"
"$MOESLICE" make-random --family olmoe --layers 2 --hidden 128 --experts 16 --top-k 2 \
  --expert-width 256 --vocab 512 --seed 3 --max-shard-size 600KB --out "$M" >/dev/null
SHARD=model-00005-of-00026.safetensors  # a layer's experts, read for every block of documents
[ -f "$M/$SHARD" ] && pass || fail "make-random did not write $SHARD"
$PY - "$SCRATCH/corpus.jsonl" <<'PY'
import json, random, sys
random.seed(3)
with open(sys.argv[1], "w") as out:
    for d in range(100):
        out.write(json.dumps({"id": f"d{d}", "input_ids": [random.randrange(512) for _ in range(64)]}) + "\n")
PY

# during CHANGE OUT command...: runs the command in the background on a fresh copy of the model
# ($COPY) with its corpus on standard input, through a FIFO that this script holds open. The
# command opens (maps) the model before it reads the corpus, so: wait until the shard is mapped,
# run CHANGE (a shell snippet on $COPY/$SHARD), and only then write the corpus and close the FIFO.
# The change always comes after the opening and before the computing, whatever the timing. Sets
# RC and MESSAGE to the command's exit status and stderr.
during() {
  local change="$1" out="$2"
  shift 2
  COPY="$SCRATCH/copy"
  rm -rf "$COPY" "$out" "$SCRATCH/feed"
  cp -r "$M" "$COPY"
  mkfifo "$SCRATCH/feed"
  "$@" --corpus - --out "$out" <"$SCRATCH/feed" 2>"$SCRATCH/stderr" >/dev/null &
  local pid=$!
  exec 3>"$SCRATCH/feed"
  local mapped=no
  for _ in $(seq 400); do
    grep -q "$SHARD" "/proc/$pid/maps" 2>/dev/null && mapped=yes && break
    sleep 0.05
  done
  [ $mapped = yes ] || fail "the command did not map $SHARD: $*"
  (eval "$change")
  cat "$SCRATCH/corpus.jsonl" >&3 2>/dev/null || true  # the command may be gone already
  exec 3>&-
  RC=0
  { wait "$pid" || RC=$?; } 2>/dev/null
  MESSAGE=$(cat "$SCRATCH/stderr")
}
debris() { find "$SCRATCH" -maxdepth 1 -name ".*tmp-*" | wc -l; }
check() {  # check CODE PATTERN OUT WHAT
  [ "$RC" -eq "$1" ] && pass || fail "$4: exit $RC, expected $1 :: $MESSAGE"
  grep -Eq -- "$2" <<<"$MESSAGE" && pass || fail "$4: message does not match /$2/ :: $MESSAGE"
  grep -Eq "internal error|Bus error|core dumped|terminate called" <<<"$MESSAGE" \
    && fail "$4: crash report :: $MESSAGE" || pass
  [ ! -e "$3" ] && pass || fail "$4: an output was written"
  [ "$(debris)" -eq 0 ] && pass || fail "$4: staging debris: $(ls -A "$SCRATCH")"
}

profile=("$MOESLICE" profile --threads 1 --quiet)
stream=(--stream-layers --stream-block-tokens 256)

# --- truncated: SIGBUS named -----------------------------------------------------------------------
for size in 100 300000; do
  during 'truncate -s '$size' "$COPY/$SHARD"' "$SCRATCH/u.safetensors" \
    "${profile[@]}" "${stream[@]}" --model "$SCRATCH/copy"
  check 1 "error: .*copy/$SHARD changed while being read \(truncated or unreadable: SIGBUS\); nothing was written" \
    "$SCRATCH/u.safetensors" "profile, shard truncated to $size bytes"
done
# Also with several threads reading, and with checkpoints of the partial profile.
during 'truncate -s 0 "$COPY/$SHARD"' "$SCRATCH/u.safetensors" \
  "$MOESLICE" profile --threads 2 --quiet "${stream[@]}" \
  --checkpoint-every 50 --model "$SCRATCH/copy"
check 1 "copy/$SHARD changed while being read \(truncated" "$SCRATCH/u.safetensors" "profile --threads 2"

# --- rewritten in place or replaced: check_unchanged -------------------------------------------------
during 'touch -d "2001-01-01 00:00" "$COPY/$SHARD"' "$SCRATCH/u.safetensors" \
  "${profile[@]}" --model "$SCRATCH/copy"
check 2 "copy/$SHARD changed while being read \(rewritten in place: its modification time changed\)" \
  "$SCRATCH/u.safetensors" "profile, shard touched"
during 'dd if=/dev/zero of="$COPY/$SHARD" bs=1 seek=200000 count=4096 conv=notrunc status=none' \
  "$SCRATCH/u.safetensors" "${profile[@]}" "${stream[@]}" --model "$SCRATCH/copy"
check 2 "copy/$SHARD changed while being read \(rewritten in place" "$SCRATCH/u.safetensors" \
  "profile --stream-layers, bytes overwritten"
during 'cp "$COPY/$SHARD" "$SCRATCH/other" && mv "$SCRATCH/other" "$COPY/$SHARD"' \
  "$SCRATCH/logits.safetensors" "$MOESLICE" logits --threads 1 \
  --model "$SCRATCH/copy"
check 2 "copy/$SHARD changed while being read \(replaced by another file\)" \
  "$SCRATCH/logits.safetensors" "logits, shard replaced"

# Every change above was made to a copy: the model itself still profiles.
"${profile[@]}" --model "$M" --corpus "$SCRATCH/corpus.jsonl" --out "$SCRATCH/u.safetensors" >/dev/null \
  && pass || fail "profile of the intact model"
finish
