#!/usr/bin/env python3
"""A minimal GGUF reader for the command-line tests, independent of moeslice (from the GGUF
specification): metadata in order as (key, type id, value) and tensors as (name, ggml type, ne,
data bytes), split parts read one by one.

    from gguf_read import read_gguf
    keys, tensors = read_gguf("model.gguf")
"""
import struct

SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q",
           11: "<q", 12: "<d"}
# ggml type id: (elements per block, bytes per block)
BLOCKS = {0: (1, 4), 1: (1, 2), 8: (32, 34), 12: (256, 144), 39: (32, 17)}


def read_gguf(path):
    data = open(path, "rb").read()
    at = 0

    def take(fmt):
        nonlocal at
        value = struct.unpack_from(fmt, data, at)[0]
        at += struct.calcsize(fmt)
        return value

    def string():
        nonlocal at
        n = take("<Q")
        at += n
        return data[at - n:at].decode()

    def value(type_id):
        if type_id == 8:
            return string()
        if type_id == 9:
            element, n = take("<I"), take("<Q")
            return (element, [value(element) for _ in range(n)])
        return take(SCALARS[type_id])

    assert data[:4] == b"GGUF", path
    at = 4
    take("<I")
    n_tensors, n_keys = take("<Q"), take("<Q")
    keys = []
    for _ in range(n_keys):
        key = string()
        type_id = take("<I")
        keys.append((key, type_id, value(type_id)))
    alignment = dict((k, v) for k, _, v in keys).get("general.alignment", 32)
    infos = []
    for _ in range(n_tensors):
        name = string()
        ne = [take("<Q") for _ in range(take("<I"))]
        infos.append((name, take("<I"), ne, take("<Q")))
    start = at + (-at % alignment)
    tensors = []
    for name, type_id, ne, offset in infos:
        elements, size = BLOCKS[type_id]
        count = 1
        for extent in ne:
            count *= extent
        tensors.append((name, type_id, ne, data[start + offset:start + offset + count // elements * size]))
    return keys, tensors
