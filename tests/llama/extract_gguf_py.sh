#!/usr/bin/env bash
# Takes gguf-py (llama.cpp's Python GGUF reader/writer and numpy (de)quantizers) out of the
# llama.cpp source that node-llama-cpp bundles as a git bundle, offline, into DEST/gguf-py.
# Used at test time; gguf-py is never vendored into this repository. Idempotent: an extraction of
# the same bundle commit is reused. Prints DEST/gguf-py.
#
# Usage: tests/llama/extract_gguf_py.sh DEST
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
BUNDLE="$HERE/node_modules/node-llama-cpp/llama/gitRelease.bundle"
DEST="${1:?usage: extract_gguf_py.sh DEST}"
if [ ! -f "$BUNDLE" ]; then
  echo "extract_gguf_py: $BUNDLE not found (run scripts/setup.sh, which installs node-llama-cpp)" >&2
  exit 1
fi
COMMIT=$(git bundle list-heads "$BUNDLE" | awk '$2 == "HEAD" {print $1}')
if [ -f "$DEST/gguf-py/.bundle-commit" ] && [ "$(cat "$DEST/gguf-py/.bundle-commit")" = "$COMMIT" ]; then
  echo "$DEST/gguf-py"
  exit 0
fi
mkdir -p "$DEST"
TMP=$(mktemp -d "$DEST/.extract.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
git clone -q --no-checkout "$BUNDLE" "$TMP/src"
git -C "$TMP/src" checkout -q "$COMMIT" -- gguf-py
echo "$COMMIT" >"$TMP/src/gguf-py/.bundle-commit"
rm -rf "$DEST/gguf-py"
mv "$TMP/src/gguf-py" "$DEST/gguf-py"
echo "$DEST/gguf-py"
