"""Checks moeslice's dequantizers (lib/kernels/dequant) against the reference conversions.

- ggml block types (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K ... Q6_K, IQ4_NL, IQ4_XS, MXFP4): gguf-py's
  numpy `dequantize` (gguf/quants.py, from the llama.cpp source node-llama-cpp bundles; extracted by
  tests/llama/extract_gguf_py.sh).
- gpt-oss MXFP4 (`*_blocks` / `*_scales`): transformers' gpt-oss conversion
  (convert_moe_packed_tensors: FP4_VALUES[code], even elements in the low nibble, torch.ldexp by
  scale - 127), written out here in torch.
- FP8 E4M3 with 128x128 block scales (DeepSeek-V3's weight_scale_inv): the e4m3fn value times its
  block's scale in fp32. Debian's torch (1.13) has no torch.float8_e4m3fn, so the values are
  decoded in torch from the bit layout its c10 Float8_e4m3fn defines (bias 7, subnormals, S.1111.111
  NaN, no infinities); known codes are checked first.

Blocks: random bytes with sane scales, then every combination of edge scales (zero, -0, the
smallest and largest subnormals, the largest finite f16, negative ones; E8M0 0, 1, 127, 254) with
edge codes (all bits clear, all set, 0x55, 0xaa, random). Every value must equal the reference bit
for bit (NaN equal to NaN): moeslice follows gguf-py's operations and their order in fp32, so even
formulas that round twice agree exactly (stricter than the one ulp the issue allows).

Usage: /usr/bin/python3 check_dequantize.py DEQUANTIZE_TOOL SCRATCH_DIR. Exit 77 (skip) without
numpy, torch or node-llama-cpp's bundle.
"""

import itertools
import os
import pathlib
import subprocess
import sys

HERE = pathlib.Path(__file__).resolve().parent
SRC = HERE.parent.parent

try:
    import numpy as np
    import torch
except ImportError as error:
    print(f"SKIP: {error}")
    sys.exit(77)

# Offsets of the f16 scale fields of each block type (ggml-common.h), bytes per block, elements.
F16_SCALES = {
    "Q4_0": [0], "Q4_1": [0, 2], "Q5_0": [0], "Q5_1": [0, 2], "Q8_0": [0],
    "Q2_K": [80, 82], "Q3_K": [108], "Q4_K": [0, 2], "Q5_K": [0, 2], "Q6_K": [208],
    "IQ4_NL": [0], "IQ4_XS": [0],
}
EDGE_F16 = [0x0000, 0x8000, 0x0001, 0x03FF, 0x8001, 0x7BFF, 0xFBFF, 0x3C00]
EDGE_E8M0 = [0, 1, 2, 126, 127, 128, 253, 254, 255]
CODE_FILLS = [0x00, 0xFF, 0x55, 0xAA, None]  # None: random


def sane_f16(rng, count):
    magnitude = rng.uniform(2.0 ** -10, 2.0 ** -6, count)
    sign = rng.choice([-1.0, 1.0], count)
    return (magnitude * sign).astype(np.float16).view(np.uint16)


def make_blocks(name, type_size, rng):
    """Random blocks with sane scales, then each edge scale with each edge code fill."""
    random = rng.integers(0, 256, (64, type_size), dtype=np.uint8)
    if name == "MXFP4":
        random[:, 0] = rng.integers(100, 140, 64)  # exponents near 2^0
        edges = []
        for exponent, fill in itertools.product(EDGE_E8M0, CODE_FILLS):
            block = rng.integers(0, 256, type_size, dtype=np.uint8) if fill is None else \
                np.full(type_size, fill, dtype=np.uint8)
            block[0] = exponent
            edges.append(block)
        return np.concatenate([random, np.stack(edges)])
    offsets = F16_SCALES[name]
    for offset in offsets:
        random[:, offset:offset + 2] = sane_f16(rng, 64).view(np.uint8).reshape(64, 2)
    edges = []
    for scale, fill in itertools.product(EDGE_F16, CODE_FILLS):
        block = rng.integers(0, 256, type_size, dtype=np.uint8) if fill is None else \
            np.full(type_size, fill, dtype=np.uint8)
        for i, offset in enumerate(offsets):
            # the first field takes the edge, a second (min) takes it or a sane value
            value = scale if i == 0 or fill == 0xFF else int(sane_f16(rng, 1)[0])
            block[offset:offset + 2] = np.array([value], dtype=np.uint16).view(np.uint8)
        edges.append(block)
    return np.concatenate([random, np.stack(edges)])


def run_tool(tool, scratch, args, count):
    out = scratch / "out.f32"
    subprocess.run([tool, *args, str(out)], check=True)
    values = np.fromfile(out, dtype=np.float32)
    if values.size != count:
        raise SystemExit(f"{args}: the tool wrote {values.size} values, expected {count}")
    return values


def compare(label, ours, reference):
    ours = np.ascontiguousarray(ours, dtype=np.float32).ravel()
    reference = np.ascontiguousarray(reference, dtype=np.float32).ravel()
    same = (ours.view(np.uint32) == reference.view(np.uint32)) | (np.isnan(ours) & np.isnan(reference))
    if same.all():
        print(f"ok   {label}: {ours.size} values equal bit for bit")
        return True
    bad = np.flatnonzero(~same)
    print(f"FAIL {label}: {bad.size} of {ours.size} values differ; first:")
    for i in bad[:8]:
        print(f"     [{i}] moeslice {ours[i]!r} ({ours.view(np.uint32)[i]:#010x}) "
              f"reference {reference[i]!r} ({reference.view(np.uint32)[i]:#010x})")
    return False


def check_ggml(tool, scratch, gguf, rng):
    ok = True
    types = list(F16_SCALES) + ["MXFP4"]
    for name in types:
        qtype = gguf.GGMLQuantizationType[name]
        block_size, type_size = gguf.GGML_QUANT_SIZES[qtype]
        blocks = make_blocks(name, type_size, rng)
        per_row = 2 if block_size == 256 else 4
        blocks = blocks[: len(blocks) // per_row * per_row]
        rows = blocks.reshape(-1, per_row * type_size)
        data = scratch / f"{name}.bin"
        rows.tofile(data)
        with np.errstate(all="ignore"):
            reference = gguf.quants.dequantize(rows, qtype)
        ours = run_tool(tool, scratch, ["ggml", name, str(per_row * block_size), str(data)],
                        reference.size)
        ok &= compare(f"{name} ({len(blocks)} blocks)", ours, reference)
    return ok


FP4_VALUES = [+0.0, +0.5, +1.0, +1.5, +2.0, +3.0, +4.0, +6.0,
              -0.0, -0.5, -1.0, -1.5, -2.0, -3.0, -4.0, -6.0]


def transformers_mxfp4(blocks, scales):
    """convert_moe_packed_tensors (transformers' gpt-oss integration) in fp32, before its
    transpose: blocks [rows, G, 16], scales [rows, G] -> [rows, G * 32]."""
    blocks = torch.from_numpy(blocks)
    exponents = torch.from_numpy(scales).to(torch.int32) - 127
    lut = torch.tensor(FP4_VALUES, dtype=torch.float32)
    rows, groups, _ = blocks.shape
    out = torch.empty(rows, groups, 32, dtype=torch.float32)
    out[..., 0::2] = lut[(blocks & 0x0F).long()]
    out[..., 1::2] = lut[(blocks >> 4).long()]
    out = torch.ldexp(out, exponents.unsqueeze(-1))
    return out.reshape(rows, groups * 32).numpy()


def check_mxfp4_split(tool, scratch, rng):
    # torch.ldexp multiplies by 2.0 ** e, which overflows for E8M0 255 (OCP's NaN code): left out.
    exponents = [e for e in EDGE_E8M0 if e != 255] + list(rng.integers(100, 140, 24))
    rows, groups = len(exponents), 3
    blocks = rng.integers(0, 256, (rows, groups, 16), dtype=np.uint8)
    blocks[0] = 0x00
    blocks[1] = 0xFF
    blocks[2] = 0x88  # -0.0 codes
    scales = np.repeat(np.array(exponents, dtype=np.uint8)[:, None], groups, axis=1)
    scales[:, 1] = np.roll(scales[:, 1], 1)
    blocks.tofile(scratch / "blocks.bin")
    scales.tofile(scratch / "scales.bin")
    reference = transformers_mxfp4(blocks, scales)
    ours = run_tool(tool, scratch, ["mxfp4-split", str(groups * 32), str(scratch / "blocks.bin"),
                                    str(scratch / "scales.bin")], reference.size)
    return compare(f"MXFP4 gpt-oss blocks/scales ({rows} rows)", ours, reference)


def torch_e4m3fn(codes):
    """e4m3fn codes (uint8 tensor) -> float32, as c10::detail::fp8e4m3fn_to_fp32_value."""
    b = codes.to(torch.int32)
    exponent, mantissa = (b >> 3) & 0x0F, b & 0x07
    normal = torch.ldexp((8 + mantissa).to(torch.float32), exponent - 10)
    subnormal = torch.ldexp(mantissa.to(torch.float32), torch.full_like(b, -9))
    value = torch.where(exponent == 0, subnormal, normal)
    value = torch.where((exponent == 0x0F) & (mantissa == 0x07), torch.tensor(float("nan")), value)
    return torch.where((b & 0x80) != 0, -value, value)


def check_fp8(tool, scratch, rng):
    known = {0x00: 0.0, 0x01: 2.0 ** -9, 0x07: 7 * 2.0 ** -9, 0x08: 2.0 ** -6, 0x38: 1.0,
             0x7E: 448.0, 0xFE: -448.0, 0xB8: -1.0}
    decoded = torch_e4m3fn(torch.tensor(list(known), dtype=torch.uint8))
    assert decoded.tolist() == list(known.values()), "the E4M3 reference decodes known codes wrongly"
    ok = True
    for scale_type, rows, cols in [("F32", 300, 260), ("BF16", 130, 128)]:
        data = rng.integers(0, 256, (rows, cols), dtype=np.uint8)
        data[0] = np.arange(cols) % 256  # every code, NaN included
        shape = (-(-rows // 128), -(-cols // 128))
        scales = torch.tensor(rng.uniform(1e-4, 1e-2, shape), dtype=torch.float32)
        edges = torch.tensor([0.0, 1e-40, 3.0e38, -2.5])  # zero, subnormal, huge, negative
        scales.view(-1)[:4] = edges[: min(4, scales.numel())]
        if scale_type == "BF16":
            scales = scales.to(torch.bfloat16)
            scales.view(torch.int16).numpy().tofile(scratch / "fp8_scales.bin")
        else:
            scales.numpy().tofile(scratch / "fp8_scales.bin")
        data.tofile(scratch / "fp8.bin")
        full = scales.to(torch.float32).repeat_interleave(128, 0)[:rows].repeat_interleave(128, 1)
        reference = (torch_e4m3fn(torch.from_numpy(data)) * full[:, :cols]).numpy()
        ours = run_tool(tool, scratch, ["fp8", str(cols), scale_type, str(scratch / "fp8.bin"),
                                        str(scratch / "fp8_scales.bin")], reference.size)
        ok &= compare(f"FP8 E4M3, {scale_type} 128x128 scales ({rows}x{cols})", ours, reference)
    return ok


def main():
    tool, scratch = sys.argv[1], pathlib.Path(sys.argv[2])
    scratch.mkdir(parents=True, exist_ok=True)
    bundle = SRC / "tests/llama/node_modules/node-llama-cpp/llama/gitRelease.bundle"
    if not bundle.is_file():
        print(f"SKIP: {bundle} missing (run scripts/setup.sh, or cd tests/llama && npm ci --offline)")
        return 77
    gguf_py = subprocess.run([SRC / "tests/llama/extract_gguf_py.sh", scratch / "llama.cpp"],
                             check=True, capture_output=True, text=True).stdout.strip()
    sys.path.insert(0, gguf_py)
    import gguf  # noqa: E402  (gguf-py, just extracted)
    import gguf.quants  # noqa: E402

    rng = np.random.default_rng(17)
    ok = check_ggml(tool, scratch, gguf, rng)
    ok &= check_mxfp4_split(tool, scratch, rng)
    ok &= check_fp8(tool, scratch, rng)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
