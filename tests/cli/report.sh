#!/usr/bin/env bash
# `moeslice report` end to end: a random OLMoE checkpoint, a usage profile of a small corpus (with
# domain labels added to its metadata), a hand-written plan and comparison -> one self-contained
# HTML page, identical on a second run; refusals (existing output, output over an input, missing
# or corrupt usage file, plan for another layer count, malformed comparison) exit 2 and write
# nothing. Then the page is rendered the way a person would see it: headless Chromium takes a
# screenshot, which must be a real image (skipped, with a message, when Chromium is absent).
source "$(dirname "$0")/lib.bash"
SCRATCH="$(cd "$SCRATCH" && pwd)"

"$MOESLICE" make-random --family olmoe --layers 4 --experts 16 --top-k 4 --seed 3 \
  --out "$SCRATCH/model" >/dev/null

# 18 documents in three "domains" that use different token ranges (so they route differently).
awk 'BEGIN {
  seed = 12345
  for (d = 0; d < 18; d++) {
    domain = d % 3; n = 24 + (d * 7) % 40
    line = "{\"id\": \"doc-" d "\", \"input_ids\": ["
    for (t = 0; t < n; t++) {
      seed = (seed * 1103515245 + 12345) % 2147483648
      line = line (t ? ", " : "") (domain * 85 + int(seed / 65536) % 85)
    }
    print line "]}"
  }
}' > "$SCRATCH/corpus.jsonl"
"$MOESLICE" profile --model "$SCRATCH/model" --corpus "$SCRATCH/corpus.jsonl" --quiet \
  --out "$SCRATCH/usage-plain.safetensors" >/dev/null

# Label the documents' domains in the profile's metadata (the safetensors header is rewritten;
# the tensors are untouched). Without python3 the report is made from the unlabelled profile.
USAGE="$SCRATCH/usage-plain.safetensors"
if command -v python3 >/dev/null; then
  python3 - "$SCRATCH/usage-plain.safetensors" "$SCRATCH/usage.safetensors" <<'PY'
import json, struct, sys
data = open(sys.argv[1], "rb").read()
(size,) = struct.unpack("<Q", data[:8])
header = json.loads(data[8:8 + size])
info = json.loads(header["__metadata__"]["moeslice_usage"])
for i, document in enumerate(info["documents"]):
    document["domain"] = ["code", "math", "prose <&>"][i % 3]
header["__metadata__"]["moeslice_usage"] = json.dumps(info)
text = json.dumps(header).encode()
text += b" " * (-len(text) % 8)
open(sys.argv[2], "wb").write(struct.pack("<Q", len(text)) + text + data[8 + size:])
PY
  USAGE="$SCRATCH/usage.safetensors"
fi

cat > "$SCRATCH/plan.json" <<'EOF'
{"experts_kept_per_layer": [[0, 1, 2, 3], [2, 5, 8, 13], [0, 4, 9, 15], [1, 6, 7, 12]],
 "pruning_method": "frequency", "metric": "mass", "prune_keep_k": 4, "label": "mass <25%> & co"}
EOF
cat > "$SCRATCH/compare.json" <<EOF
{"schema": 1, "model": "$SCRATCH/model", "corpus": "$SCRATCH/corpus.jsonl", "tasks": null,
 "variants": [
  {"label": "full", "kind": "full", "experts_per_layer": 16, "fraction_kept": 1.0,
   "parameters": 1200000, "bytes": 4800000,
   "metrics": {"perplexity": 250.1, "top1_accuracy": 0.012, "tokens": 700, "nll": 5.52}},
  {"label": "mass 25%", "kind": "plan", "plan": "$SCRATCH/plan.json", "experts_per_layer": 4,
   "fraction_kept": 0.25, "parameters": 400000, "bytes": 1600000,
   "metrics": {"perplexity": 262.4, "top1_accuracy": 0.010, "kl": 0.08, "top1_agreement": 0.87},
   "change": {"perplexity": {"abs": 12.3, "rel": 0.049}, "top1_accuracy": {"abs": -0.002, "rel": -0.167}}},
  {"label": "mass 12.5%", "kind": "plan", "experts_per_layer": 2, "fraction_kept": 0.125,
   "metrics": {"perplexity": 281.0, "top1_accuracy": 0.008, "kl": 0.2, "top1_agreement": 0.74}}
 ]}
EOF

OUT="$SCRATCH/report.html"
expect_ok -- "$MOESLICE" report --usage "$USAGE" --plan "$SCRATCH/plan.json" \
  --compare "$SCRATCH/compare.json" --out "$OUT"
if [ -s "$OUT" ]; then pass; else fail "no report written"; fi
for needle in '<!DOCTYPE html>' 'id="usage"' 'id="coverage"' 'id="plans"' 'id="domains"' \
  'id="compare"' 'class="heatmap"' 'class="chart"' 'mass &lt;25%&gt; &amp; co' '<footer>' \
  '+12.30 (+4.9%)'; do
  if grep -qF -- "$needle" "$OUT"; then pass; else fail "report lacks $needle"; fi
done
if [ "$USAGE" = "$SCRATCH/usage.safetensors" ]; then
  grep -qF 'By domain' "$OUT" && grep -qF 'prose &lt;&amp;&gt;' "$OUT" && pass ||
    fail "report lacks the per-domain figures"
fi
# Self-contained: nothing fetched from anywhere, no raw label.
for needle in 'http://' 'https://' '<script src' '<link' 'mass <25%>'; do
  if grep -qF -- "$needle" "$OUT"; then fail "report contains $needle"; else pass; fi
done

# Deterministic, refuses to overwrite without --force, replaces with it.
expect_ok -- "$MOESLICE" report --usage "$USAGE" --plan "$SCRATCH/plan.json" \
  --compare "$SCRATCH/compare.json" --out "$SCRATCH/again.html"
cmp -s "$OUT" "$SCRATCH/again.html" && pass || fail "two runs gave different pages"
expect_error 2 "already exists" -- "$MOESLICE" report --usage "$USAGE" --out "$OUT"
cmp -s "$OUT" "$SCRATCH/again.html" && pass || fail "a refused run changed the report"
expect_ok -- "$MOESLICE" report --usage "$USAGE" --out "$SCRATCH/again.html" --force --title "Only usage"
grep -qF '<title>Only usage</title>' "$SCRATCH/again.html" && pass || fail "--force did not replace"

# Refusals: exit 2, a message naming the file, nothing written.
X="$SCRATCH/x.html"
expect_error 2 "overlaps the input" -- "$MOESLICE" report --usage "$USAGE" --out "$USAGE" --force
expect_error 2 "missing.safetensors" -- "$MOESLICE" report --usage "$SCRATCH/missing.safetensors" --out "$X"
echo "not a safetensors file" > "$SCRATCH/corrupt.safetensors"
expect_error 2 "corrupt.safetensors" -- "$MOESLICE" report --usage "$SCRATCH/corrupt.safetensors" --out "$X"
echo '{"experts_kept_per_layer": [[0, 1], [0, 1]]}' > "$SCRATCH/short.json"
expect_error 2 "short.json: experts_kept_per_layer needs one entry per layer of the usage profile \(4\), found 2" \
  -- "$MOESLICE" report --usage "$USAGE" --plan "$SCRATCH/short.json" --out "$X"
echo '{"experts_kept_per_layer": [[0, 16], null, null, null]}' > "$SCRATCH/range.json"
expect_error 2 "range.json: layer 0: expert id 16 is out of range" \
  -- "$MOESLICE" report --usage "$USAGE" --plan "$SCRATCH/range.json" --out "$X"
echo '{"variants": [' > "$SCRATCH/broken.json"
expect_error 2 "broken.json: not valid JSON" \
  -- "$MOESLICE" report --usage "$USAGE" --compare "$SCRATCH/broken.json" --out "$X"
echo '{"schema": 1, "variants": [{"kind": "full"}]}' > "$SCRATCH/nolabel.json"
expect_error 2 "nolabel.json: variants\[0\] needs a string 'label'" \
  -- "$MOESLICE" report --usage "$USAGE" --compare "$SCRATCH/nolabel.json" --out "$X"
expect_error 2 "nope.json does not exist" \
  -- "$MOESLICE" report --usage "$USAGE" --compare "$SCRATCH/nope.json" --out "$X"
[ ! -e "$X" ] && pass || fail "a refused report left output behind"
leftovers=$(find "$SCRATCH" -maxdepth 1 -name '*.tmp*' | wc -l)
[ "$leftovers" -eq 0 ] && pass || fail "temporary files left behind"

# Look at it: render headless and check the screenshot is a real, non-trivial image.
CHROMIUM=/usr/bin/chromium
if [ -x "$CHROMIUM" ]; then
  PROFILE_DIR=$(mktemp -d)
  timeout 180 "$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$PROFILE_DIR" --screenshot="$SCRATCH/report.png" --window-size=1280,2000 \
    "file://$OUT" >/dev/null 2>&1 || true
  rm -rf "$PROFILE_DIR"
  if [ -f "$SCRATCH/report.png" ] && [ "$(head -c 8 "$SCRATCH/report.png" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] &&
    [ "$(stat -c %s "$SCRATCH/report.png")" -gt 50000 ]; then
    pass
    echo "screenshot: $SCRATCH/report.png ($(stat -c %s "$SCRATCH/report.png") bytes)"
  else
    fail "chromium did not produce a non-trivial screenshot of $OUT"
  fi
else
  echo "SKIP: chromium not installed (screenshot check only)"
fi

finish
