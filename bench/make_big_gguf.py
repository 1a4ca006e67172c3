#!/usr/bin/env python3
"""Writes a large GGUF for the slicing benchmark (docs/benchmarks.md): an olmoe model of
OLMoE-1B-7B's shape (16 blocks, 64 experts, top 8, hidden 2048, expert width 1024, vocabulary
50304) with every matrix in Q4_K (random bytes: slicing copies blocks, it never decodes them) and
norms and routers in F32, streamed to disk (about 3.9 GB; --layers scales it).

    make_big_gguf.py OUT.gguf [--layers 16] [--experts 64]

The GGUF encoding (strings, keys, padding) is tests/cli/make_gguf.py's.
"""
import argparse
import os
import random
import struct
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "cli"))
from make_gguf import ALIGN, TYPES, kv_string, kv_u32, pad, string  # noqa: E402

HIDDEN, WIDTH, VOCAB, TOP_K = 2048, 1024, 50304, 8


def byte_size(type_name, shape):
    _, block, size = TYPES[type_name]
    count = 1
    for extent in shape:
        count *= extent
    return count // block * size


def tensors(layers, experts):
    """(name, type, shape outermost first)."""
    out = [("token_embd.weight", "Q4_K", [VOCAB, HIDDEN])]
    for layer in range(layers):
        block = f"blk.{layer}."
        out.append((block + "attn_norm.weight", "F32", [HIDDEN]))
        for kind in ("attn_q", "attn_k", "attn_v", "attn_output"):
            out.append((block + kind + ".weight", "Q4_K", [HIDDEN, HIDDEN]))
        out.append((block + "attn_q_norm.weight", "F32", [HIDDEN]))
        out.append((block + "attn_k_norm.weight", "F32", [HIDDEN]))
        out.append((block + "ffn_norm.weight", "F32", [HIDDEN]))
        out.append((block + "ffn_gate_inp.weight", "F32", [experts, HIDDEN]))
        out.append((block + "ffn_gate_exps.weight", "Q4_K", [experts, WIDTH, HIDDEN]))
        out.append((block + "ffn_up_exps.weight", "Q4_K", [experts, WIDTH, HIDDEN]))
        out.append((block + "ffn_down_exps.weight", "Q4_K", [experts, HIDDEN, WIDTH]))
    out.append(("output_norm.weight", "F32", [HIDDEN]))
    out.append(("output.weight", "Q4_K", [VOCAB, HIDDEN]))
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--layers", type=int, default=16)
    parser.add_argument("--experts", type=int, default=64)
    args = parser.parse_args()
    table = tensors(args.layers, args.experts)
    keys = [kv_string("general.architecture", "olmoe"), kv_string("general.name", "olmoe-bench"),
            kv_u32("olmoe.block_count", args.layers), kv_u32("olmoe.context_length", 4096),
            kv_u32("olmoe.embedding_length", HIDDEN), kv_u32("olmoe.feed_forward_length", WIDTH),
            kv_u32("olmoe.attention.head_count", 16), kv_u32("olmoe.attention.head_count_kv", 16),
            kv_u32("olmoe.expert_count", args.experts), kv_u32("olmoe.expert_used_count", TOP_K),
            kv_u32("general.file_type", 15)]
    infos, offset = b"", 0
    for name, type_name, shape in table:
        infos += string(name) + struct.pack("<I", len(shape))
        infos += b"".join(struct.pack("<Q", d) for d in reversed(shape))
        infos += struct.pack("<IQ", TYPES[type_name][0], offset)
        offset += byte_size(type_name, shape) + (-byte_size(type_name, shape) % ALIGN)
    header = b"GGUF" + struct.pack("<IQQ", 3, len(table), len(keys)) + b"".join(keys) + infos
    rng = random.Random(16)
    with open(args.out, "wb") as f:
        f.write(pad(header))
        for _, type_name, shape in table:
            size = byte_size(type_name, shape)
            for start in range(0, size, 64 << 20):
                f.write(rng.randbytes(min(64 << 20, size - start)))
            f.write(b"\0" * (-size % ALIGN))


if __name__ == "__main__":
    main()
