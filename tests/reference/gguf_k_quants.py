"""A numpy quantizer for ggml's Q6_K blocks, which gguf-py can read but not write.

gguf-py (llama.cpp's Python package, extracted at test time from the node-llama-cpp bundle) has
quantizers for Q8_0 and a few others but only dequantizers for the K-quants. This writes Q6_K in
the exact byte layout gguf-py's `Q6_K.dequantize_blocks` (and llama.cpp's `dequantize_row_q6_K`)
reads, so a fixture can hold a K-quant without llama-quantize. The rounding is simpler than
llama.cpp's `quantize_row_q6_K` (no search for the best scale), which only changes the values,
never the layout; tests compare against the dequantized weights, not against llama-quantize.

Block of 256 weights, 210 bytes: ql[128] (low 4 bits), qh[64] (high 2 bits), scales[16] (int8,
one per 16 weights), d (f16); weight = d * scale[j] * (q - 32) with q in 0..63.
"""

import numpy as np

Q6_K_BLOCK = 256
Q6_K_BYTES = 210


def quantize_q6_k(data):
    """float array [..., n] (n a multiple of 256) -> uint8 array [..., n / 256 * 210]."""
    data = np.asarray(data, dtype=np.float32)
    if data.shape[-1] % Q6_K_BLOCK:
        raise ValueError(f"Q6_K needs rows of a multiple of {Q6_K_BLOCK} values, got {data.shape[-1]}")
    blocks = data.reshape(-1, Q6_K_BLOCK)
    n = blocks.shape[0]
    sub = blocks.reshape(n, 16, 16)
    # Each 16-value sub-block gets a scale that maps its largest magnitude to 31.
    sub_scale = np.abs(sub).max(axis=-1) / 31.0
    d = (np.abs(sub_scale).max(axis=-1) / 127.0).astype(np.float16)
    d32 = d.astype(np.float32)[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        scales = np.where(d32 > 0, np.rint(sub_scale / d32), 0)
    scales = np.clip(scales, -128, 127).astype(np.int8)
    step = (d32 * scales.astype(np.float32))[:, :, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.where(step != 0, np.rint(sub / step), 0)
    q = (np.clip(q, -32, 31) + 32).astype(np.uint8).reshape(n, Q6_K_BLOCK)
    low = (q & 0x0F).reshape(n, 2, 2, 64)  # [half, nibble, byte]
    ql = (low[:, :, 0, :] | (low[:, :, 1, :] << 4)).reshape(n, 128)
    high = (q >> 4).reshape(n, 2, 4, 32)  # [half, 2-bit field, byte]
    qh = (high[:, :, 0] | (high[:, :, 1] << 2) | (high[:, :, 2] << 4) | (high[:, :, 3] << 6)).reshape(n, 64)
    out = np.concatenate([ql, qh, scales.view(np.uint8), d.view(np.uint8).reshape(n, 2)], axis=1)
    return out.reshape(*data.shape[:-1], data.shape[-1] // Q6_K_BLOCK * Q6_K_BYTES)
