#!/usr/bin/python3
"""Byte-level comparison of two GGUF files with gguf-py: metadata and tensors.

  /usr/bin/python3 tests/llama/compare_gguf.py --gguf-py DIR A.gguf B.gguf [--ignore-key KEY ...]

Equal means: the same metadata keys in the same order with the same value types and values
(keys given with --ignore-key, and keys starting with a given prefix ending in '.', are skipped
on both sides), and the same tensors in the same order with the same names, ggml types, shapes and
data bytes. Prints the first differences and exits 1 when there are any.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reference"))
from gguf_files import import_gguf  # noqa: E402


def differences(gguf, a_file, b_file, ignore=()):
    """The differences between two GGUF files, as readable lines (empty when equal)."""

    def ignored(key):
        return key.startswith("GGUF.") or any(key == i or (i.endswith(".") and key.startswith(i)) for i in ignore)

    a, b = gguf.GGUFReader(a_file), gguf.GGUFReader(b_file)
    out = []
    a_fields = [f for f in a.fields.values() if not ignored(f.name)]
    b_fields = [f for f in b.fields.values() if not ignored(f.name)]
    if [f.name for f in a_fields] != [f.name for f in b_fields]:
        out.append(f"metadata keys differ: {[f.name for f in a_fields]} against {[f.name for f in b_fields]}")
    else:
        for fa, fb in zip(a_fields, b_fields):
            if fa.types != fb.types or fa.contents() != fb.contents():
                out.append(f"metadata '{fa.name}' differs: {str(fa.contents())[:80]} against {str(fb.contents())[:80]}")
    if [t.name for t in a.tensors] != [t.name for t in b.tensors]:
        out.append("tensor names or order differ")
        return out
    for ta, tb in zip(a.tensors, b.tensors):
        if ta.tensor_type != tb.tensor_type or list(ta.shape) != list(tb.shape):
            out.append(f"tensor '{ta.name}': {ta.tensor_type.name} {list(ta.shape)} against "
                       f"{tb.tensor_type.name} {list(tb.shape)}")
        elif ta.data.tobytes() != tb.data.tobytes():
            out.append(f"tensor '{ta.name}': data bytes differ")
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--gguf-py", required=True)
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--ignore-key", action="append", default=[])
    args = ap.parse_args(argv)
    found = differences(import_gguf(args.gguf_py), args.a, args.b, args.ignore_key)
    for line in found[:10]:
        print(f"{args.a} / {args.b}: {line}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
