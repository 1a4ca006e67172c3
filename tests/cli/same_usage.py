"""Exits 0 when two usage files (moeslice profile outputs) hold the same tensors and the same
metadata except `sources` (which names how the corpus was read, e.g. by a resumed run)."""
import json
import struct
import sys


def load(path):
    data = open(path, "rb").read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    info = json.loads(header.pop("__metadata__")["moeslice_usage"])
    info.pop("sources")
    tensors = {k: data[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]] for k, v in header.items()}
    return info, tensors


sys.exit(0 if load(sys.argv[1]) == load(sys.argv[2]) else 1)
