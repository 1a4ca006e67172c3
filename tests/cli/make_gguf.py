#!/usr/bin/env python3
"""Writes tiny GGUF files for the command-line tests, independently of moeslice's own writer (a
second implementation of the layout, from the GGUF specification), and broken variants of them.

    make_gguf.py OUT.gguf [--type F32|F16|Q8_0|Q4_K|MXFP4] [--parts N] [--corrupt KIND]

The model is olmoe-like: 2 layers, 4 experts (top 2), hidden size 64, stacked expert tensors
blk.N.ffn_{gate,up,down}_exps.weight in --type (Q8_0 blocks get finite f16 scales; Q4_K and
MXFP4 blocks are random bytes, and their rows 256 elements wide since a Q4_K block is). --parts N
writes OUT-00001-of-0000N.gguf ... with split.* keys instead. --corrupt KIND writes one defect
(see CORRUPTIONS).
"""
import argparse
import random
import struct

ALIGN = 32
# id, elements per block, bytes per block
TYPES = {"F32": (0, 1, 4), "F16": (1, 1, 2), "Q8_0": (8, 32, 34), "Q4_K": (12, 256, 144),
         "MXFP4": (39, 32, 17)}


def string(text):
    data = text.encode()
    return struct.pack("<Q", len(data)) + data


def kv_u32(key, value):
    return string(key) + struct.pack("<II", 4, value)


def kv_string(key, value):
    return string(key) + struct.pack("<I", 8) + string(value)


def kv_string_array(key, values):
    return string(key) + struct.pack("<IIQ", 9, 8, len(values)) + b"".join(map(string, values))


def tensor_bytes(type_name, shape, rng):
    type_id, block, size = TYPES[type_name]
    count = 1
    for extent in shape:
        count *= extent
    if type_name == "F32":
        return struct.pack(f"<{count}f", *[rng.uniform(-1, 1) for _ in range(count)])
    if type_name == "F16":
        return struct.pack(f"<{count}e", *[rng.uniform(-1, 1) for _ in range(count)])
    if type_name != "Q8_0":
        return bytes(rng.randrange(256) for _ in range(count // block * size))
    out = bytearray()
    for _ in range(count // block):
        out += struct.pack("<e", rng.uniform(0.001, 0.01))
        out += bytes(rng.randrange(256) for _ in range(block))
    return bytes(out)


def model_tensors(type_name, rng):
    """(name, type, shape outermost first, bytes) of the tiny model."""
    tensors = [("token_embd.weight", "F32", [16, 64])]
    for layer in range(2):
        block = f"blk.{layer}."
        tensors.append((block + "attn_norm.weight", "F32", [64]))
        tensors.append((block + "ffn_gate_inp.weight", "F32", [4, 64]))
        for kind in ("ffn_gate_exps", "ffn_up_exps", "ffn_down_exps"):
            tensors.append((block + kind + ".weight", type_name, [4, 64, max(64, TYPES[type_name][1])]))
    tensors.append(("output_norm.weight", "F32", [64]))
    return [(name, t, shape, tensor_bytes(t, shape, rng)) for name, t, shape in tensors]


def metadata(extra=()):
    keys = [kv_string("general.architecture", "olmoe"), kv_string("general.name", "tiny"),
            kv_u32("olmoe.block_count", 2), kv_u32("olmoe.embedding_length", 64),
            kv_u32("olmoe.expert_count", 4), kv_u32("olmoe.expert_used_count", 2),
            kv_u32("olmoe.expert_feed_forward_length", 64),
            kv_string_array("tokenizer.ggml.tokens", [chr(97 + i) for i in range(16)])]
    return keys + list(extra)


def pad(data):
    return data + b"\0" * (-len(data) % ALIGN)


def gguf(keys, tensors, corrupt=None):
    """The bytes of a file: tensors are (name, type, shape, bytes)."""
    infos, data = b"", b""
    for index, (name, type_name, shape, payload) in enumerate(tensors):
        type_id = TYPES[type_name][0]
        dims = list(reversed(shape))
        offset = len(data)
        if corrupt == "misaligned-offset" and index == 1:
            offset += 8
        if corrupt == "overlapping" and index == 1:
            offset = 0
        if corrupt == "unknown-type" and index == 0:
            type_id = 43
        if corrupt == "wrong-size" and name.endswith("ffn_gate_exps.weight"):
            dims[0] = 48  # not a multiple of Q8_0's 32 (or a different size for F32)
        if corrupt == "n-dims-5" and index == 0:
            dims = dims + [1, 1, 1]
        infos += string(name) + struct.pack("<I", len(dims))
        infos += b"".join(struct.pack("<Q", d) for d in dims) + struct.pack("<IQ", type_id, offset)
        data += pad(payload)
    tensor_count, key_count = len(tensors), len(keys)
    if corrupt == "huge-tensor-count":
        tensor_count = 1 << 40
    if corrupt == "huge-key-count":
        key_count = 1 << 40
    version = 4 if corrupt == "bad-version" else 3
    magic = b"GGML" if corrupt == "bad-magic" else b"GGUF"
    header = magic + struct.pack("<IQQ", version, tensor_count, key_count) + b"".join(keys) + infos
    out = pad(header) + data
    if corrupt == "truncated-header":
        out = out[:len(header) // 2]
    if corrupt == "data-outside":
        out = out[:len(out) - 100]
    return out


CORRUPTIONS = {
    "truncated-header": "the header cut in half",
    "bad-magic": "GGML instead of GGUF",
    "bad-version": "version 4",
    "huge-tensor-count": "2^40 tensors",
    "huge-key-count": "2^40 metadata keys",
    "bad-string-length": "a metadata string claiming 2^60 bytes",
    "deep-array": "arrays nested 12 deep",
    "huge-array": "an array claiming 2^40 elements",
    "misaligned-offset": "the second tensor at an offset off the alignment",
    "overlapping": "the second tensor at the first one's offset",
    "data-outside": "the last tensor's bytes cut off",
    "wrong-size": "an expert tensor whose ne0 is not a whole number of blocks",
    "unknown-type": "a tensor of ggml type 43",
    "n-dims-5": "a tensor with 5 dimensions",
    "split-missing": "split parts with the second one missing",
    "split-mismatch": "split parts whose second says split.count 3",
}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--type", default="Q8_0", choices=sorted(TYPES))
    parser.add_argument("--parts", type=int, default=1)
    parser.add_argument("--corrupt", choices=sorted(CORRUPTIONS))
    args = parser.parse_args()
    rng = random.Random(7)
    tensors = model_tensors(args.type, rng)
    corrupt = args.corrupt
    extra = []
    if corrupt == "bad-string-length":
        extra.append(string("bad") + struct.pack("<IQ", 8, 1 << 60))
    if corrupt == "deep-array":
        extra.append(string("deep") + struct.pack("<I", 9) + struct.pack("<IQ", 9, 1) * 12 +
                     struct.pack("<IQ", 4, 0))
    if corrupt == "huge-array":
        extra.append(string("huge") + struct.pack("<IIQ", 9, 4, 1 << 40))
    if corrupt in ("split-missing", "split-mismatch"):
        args.parts = 2
    if args.parts == 1:
        with open(args.out, "wb") as f:
            f.write(gguf(metadata(extra), tensors, corrupt))
        return
    prefix = args.out[:-len(".gguf")] if args.out.endswith(".gguf") else args.out
    per_part = -(-len(tensors) // args.parts)
    for part in range(args.parts):
        count = args.parts + 1 if corrupt == "split-mismatch" and part == 1 else args.parts
        split = [string("split.no") + struct.pack("<IH", 2, part),
                 string("split.count") + struct.pack("<IH", 2, count),
                 string("split.tensors.count") + struct.pack("<Ii", 5, len(tensors))]
        keys = metadata(extra) + split if part == 0 else split
        if corrupt == "split-missing" and part == 1:
            continue
        with open(f"{prefix}-{part + 1:05d}-of-{args.parts:05d}.gguf", "wb") as f:
            f.write(gguf(keys, tensors[part * per_part:(part + 1) * per_part], corrupt))


if __name__ == "__main__":
    main()
