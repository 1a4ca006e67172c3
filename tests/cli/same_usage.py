#!/usr/bin/env python3
"""Exits 0 when two usage files hold the same tensors and metadata but for the recorded sources'
"ranks" (what an MPI run adds, docs/scaling.md); else prints what differs and exits 1.

Usage: same_usage.py A.safetensors B.safetensors"""
import json
import struct
import sys


def read(path):
    data = open(path, "rb").read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    meta = json.loads(header.pop("__metadata__")["moeslice_usage"])
    for source in meta.get("sources", []):
        source.pop("ranks", None)
    return header, data[8 + n:], meta


a, b = read(sys.argv[1]), read(sys.argv[2])
if a[0] != b[0] or a[1] != b[1]:
    sys.exit(f"{sys.argv[1]} and {sys.argv[2]}: tensors differ")
if a[2] != b[2]:
    sys.exit(f"{sys.argv[1]} and {sys.argv[2]}: metadata differs: {a[2]} / {b[2]}")
