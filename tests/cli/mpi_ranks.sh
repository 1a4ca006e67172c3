#!/usr/bin/env bash
# MPI ranks (docs/scaling.md): `mpirun -n 2` runs of profile, select, eval and compare give the
# one-process outputs bit for bit (a profile's and a selection's usage file differ only in the
# recorded sources, which name the ranks), for two families, an uneven number of documents,
# --stream-layers, a rank without documents, and --checkpoint-every / --resume with one partial
# per rank. A bad corpus line stops the job with one message and no output; commands that do not
# share work refuse to run on several ranks. Skipped when moeslice was built without MPI.
source "$(dirname "$0")/lib.bash"
if ! "$MOESLICE" --version | grep -q "built with MPI" || ! command -v mpirun >/dev/null; then
  echo "SKIP: moeslice built without MPI, or no mpirun (apt-get install libopenmpi-dev openmpi-bin)"
  exit 77
fi
MPIRUN=(mpirun -n 2 --oversubscribe)
[ "$(id -u)" -eq 0 ] && MPIRUN+=(--allow-run-as-root)
# Open MPI on one machine: shared-memory and self transports only, no network probing.
export OMPI_MCA_btl=self,vader OMPI_MCA_btl_vader_single_copy_mechanism=none
ranks() { "${MPIRUN[@]}" "$MOESLICE" "$@"; }

small=(--layers 2 --hidden 32 --heads 4 --top-k 2 --expert-width 16 --vocab 4096 --seed 5)
"$MOESLICE" make-random --family olmoe --experts 8 "${small[@]}" --out "$SCRATCH/olmoe" >/dev/null
"$MOESLICE" make-random --family qwen2_moe --experts 8 "${small[@]}" --out "$SCRATCH/qwen2" >/dev/null
$PY - "$SCRATCH" <<'PY'
import json, sys
with open(f"{sys.argv[1]}/corpus.jsonl", "w") as f:  # 7 documents: ranks get 4 and 3
    for d in range(7):
        f.write(json.dumps({"id": f"d{d}", "domain": "ab"[d % 2],
                            "input_ids": [(d * 5 + i) % 64 for i in range(5 + 3 * d)]}) + "\n")
with open(f"{sys.argv[1]}/one.jsonl", "w") as f:  # rank 1 gets nothing
    f.write(json.dumps({"id": "only", "input_ids": list(range(12))}) + "\n")
with open(f"{sys.argv[1]}/tasks.jsonl", "w") as f:
    for t in range(3):
        f.write(json.dumps({"id": f"t{t}", "context": ["def main(", "The cat", "From: bob"][t],
                            "choices": [" the", " the end of it"], "answer": t % 2}) + "\n")
PY

# same_usage A B: equal tensors and metadata, but for the sources (which record the ranks).
same_usage() {
  $PY "$SRC/tests/cli/same_usage.py" "$1" "$2" && pass || fail "usage files differ: $1 $2"
}

for family in olmoe qwen2; do
  M="$SCRATCH/$family"
  for corpus in corpus one; do
    for mode in "" --stream-layers; do
      tag="$family-$corpus${mode:+-stream}"
      "$MOESLICE" profile --model "$M" --corpus "$SCRATCH/$corpus.jsonl" $mode --quiet \
        --out "$SCRATCH/$tag.1.safetensors" >/dev/null
      ranks profile --model "$M" --corpus "$SCRATCH/$corpus.jsonl" $mode --quiet \
        --out "$SCRATCH/$tag.2.safetensors" >"$SCRATCH/out.txt" 2>&1 || fail "profile $tag: $(cat "$SCRATCH/out.txt")"
      same_usage "$SCRATCH/$tag.1.safetensors" "$SCRATCH/$tag.2.safetensors"
      [ "$(grep -c "^wrote" "$SCRATCH/out.txt")" = 1 ] && pass || fail "profile $tag: not one report line"
    done
  done

  # select: the same plan; its usage file equal but for the sources.
  "$MOESLICE" select --model "$M" --corpus "$SCRATCH/corpus.jsonl" --keep 4 --quiet \
    --out "$SCRATCH/$family.plan1.json" --usage-out "$SCRATCH/$family.sel1.safetensors" >/dev/null
  ranks select --model "$M" --corpus "$SCRATCH/corpus.jsonl" --keep 4 --quiet \
    --out "$SCRATCH/$family.plan2.json" --usage-out "$SCRATCH/$family.sel2.safetensors" >/dev/null
  cmp -s "$SCRATCH/$family.plan1.json" "$SCRATCH/$family.plan2.json" && pass || fail "select $family: plans differ"
  same_usage "$SCRATCH/$family.sel1.safetensors" "$SCRATCH/$family.sel2.safetensors"

  # eval and compare: the same tables and JSON, bit for bit.
  E=(--model "$M" --corpus "$SCRATCH/corpus.jsonl" --tasks "$SCRATCH/tasks.jsonl"
    --tokenizer "$SRC/examples/models/tokenizer.json")
  "$MOESLICE" eval "${E[@]}" --json "$SCRATCH/$family.eval1.json" >"$SCRATCH/eval1.txt"
  ranks eval "${E[@]}" --json "$SCRATCH/$family.eval2.json" >"$SCRATCH/eval2.txt"
  cmp -s "$SCRATCH/$family.eval1.json" "$SCRATCH/$family.eval2.json" && pass || fail "eval $family: JSON differs"
  cmp -s "$SCRATCH/eval1.txt" "$SCRATCH/eval2.txt" && pass || fail "eval $family: tables differ"
  "$MOESLICE" compare "${E[@]}" --plan "$SCRATCH/$family.plan1.json" --json "$SCRATCH/$family.cmp1.json" >"$SCRATCH/cmp1.txt"
  ranks compare "${E[@]}" --plan "$SCRATCH/$family.plan1.json" --json "$SCRATCH/$family.cmp2.json" >"$SCRATCH/cmp2.txt"
  cmp -s "$SCRATCH/$family.cmp1.json" "$SCRATCH/$family.cmp2.json" && pass || fail "compare $family: JSON differs"
  cmp -s "$SCRATCH/cmp1.txt" "$SCRATCH/cmp2.txt" && pass || fail "compare $family: tables differ"
done

# --checkpoint-every / --resume: one partial per rank, resumed equal to an uninterrupted run.
M="$SCRATCH/olmoe"
ranks profile --model "$M" --corpus "$SCRATCH/corpus.jsonl" --quiet --checkpoint-every 1 \
  --out "$SCRATCH/ck.safetensors" >/dev/null
same_usage "$SCRATCH/olmoe-corpus.1.safetensors" "$SCRATCH/ck.safetensors"
[ -z "$(find "$SCRATCH" -name 'ck.safetensors*partial')" ] && pass || fail "partials left behind"
# A partial per rank as an interrupted job leaves them: rank 0 had done 2 documents, rank 1 one.
"$MOESLICE" profile --model "$M" --corpus <(sed -n '1p;3p' "$SCRATCH/corpus.jsonl") --quiet \
  --out "$SCRATCH/r0.safetensors" >/dev/null
"$MOESLICE" profile --model "$M" --corpus <(sed -n '2p' "$SCRATCH/corpus.jsonl") --quiet \
  --out "$SCRATCH/r1.safetensors" >/dev/null
mv "$SCRATCH/r0.safetensors" "$SCRATCH/res.safetensors.rank-0-of-2.partial"
mv "$SCRATCH/r1.safetensors" "$SCRATCH/res.safetensors.rank-1-of-2.partial"
ranks profile --model "$M" --corpus "$SCRATCH/corpus.jsonl" --quiet --resume \
  --out "$SCRATCH/res.safetensors" >/dev/null 2>"$SCRATCH/resume.txt"
grep -q "rank 1 of 2: resuming after 1 documents" "$SCRATCH/resume.txt" && pass || fail "resume: $(cat "$SCRATCH/resume.txt")"
same_usage "$SCRATCH/olmoe-corpus.1.safetensors" "$SCRATCH/res.safetensors"

# A bad corpus line: every rank meets it; one message, exit 2, no output.
{ head -3 "$SCRATCH/corpus.jsonl"; echo '{"id": "bad", "input_ids": [1, 99999]}'; } >"$SCRATCH/bad.jsonl"
rc=0
out=$(ranks profile --model "$M" --corpus "$SCRATCH/bad.jsonl" --quiet --out "$SCRATCH/bad.safetensors" 2>&1) || rc=$?
[ $rc -eq 2 ] && pass || fail "bad line: exit $rc :: $out"
[ "$(grep -c "moeslice: .*error: .*bad.jsonl:4" <<<"$out")" -ge 1 ] && pass || fail "bad line: no message :: $out"
[ ! -e "$SCRATCH/bad.safetensors" ] && pass || fail "bad line: output written"
# Only the commands that share work run on several ranks.
rc=0
out=$(ranks slice --model "$M" --plan "$SCRATCH/olmoe.plan1.json" --out "$SCRATCH/s" 2>&1) || rc=$?
[ $rc -eq 2 ] && grep -q "'slice' runs as one process" <<<"$out" && pass || fail "slice on ranks: exit $rc :: $out"
[ ! -e "$SCRATCH/s" ] && pass || fail "slice on ranks wrote output"
rc=0
out=$(ranks eval --model "$M" --corpus - <"$SCRATCH/corpus.jsonl" 2>&1) || rc=$?
[ $rc -eq 2 ] && grep -q "cannot be shared by 2 ranks" <<<"$out" && pass || fail "stdin corpus: exit $rc :: $out"
finish
