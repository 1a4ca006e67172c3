#!/usr/bin/env python3
"""Exits 0 when two usage files hold the same tensors and metadata but for the recorded sources'
"ranks" (what an MPI run adds, docs/scaling.md) and any metadata key named with --ignore (e.g.
"sources" when the runs read their corpus through different tokenizer files, "model" when they
ran different files of the same weights); else prints what differs and exits 1.

Usage: same_usage.py [--ignore KEY]... A.safetensors B.safetensors"""
import argparse
import json
import struct
import sys


def read(path, ignored):
    data = open(path, "rb").read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    meta = json.loads(header.pop("__metadata__")["moeslice_usage"])
    for source in meta.get("sources", []):
        source.pop("ranks", None)
    for key in ignored:
        meta.pop(key, None)
    return header, data[8 + n:], meta


ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
ap.add_argument("--ignore", action="append", default=[], help="a usage metadata key not compared")
ap.add_argument("a")
ap.add_argument("b")
args = ap.parse_args()
a, b = read(args.a, args.ignore), read(args.b, args.ignore)
if a[0] != b[0] or a[1] != b[1]:
    sys.exit(f"{args.a} and {args.b}: tensors differ")
if a[2] != b[2]:
    sys.exit(f"{args.a} and {args.b}: metadata differs: {a[2]} / {b[2]}")
