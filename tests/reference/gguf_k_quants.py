"""numpy quantizers for ggml's Q6_K and Q4_K blocks, which gguf-py can read but not write.

gguf-py (llama.cpp's Python package, extracted at test time from the node-llama-cpp bundle) has
quantizers for Q8_0 and a few others but only dequantizers for the K-quants. These write the exact
byte layouts gguf-py's `dequantize_blocks` (and llama.cpp's `dequantize_row_q6_K` / `_q4_K`) read,
so a fixture can hold K-quants without llama-quantize. The rounding is simpler than llama.cpp's
(no search for the best scales), which only changes the values, never the layout; tests compare
against the dequantized weights, not against llama-quantize.

Q6_K, block of 256 weights, 210 bytes: ql[128] (low 4 bits), qh[64] (high 2 bits), scales[16]
(int8, one per 16 weights), d (f16); weight = d * scale[j] * (q - 32) with q in 0..63.
Q4_K, block of 256 weights, 144 bytes: d, dmin (f16), scales[12] (a 6-bit scale and a 6-bit min
for each of 8 sub-blocks of 32, packed), qs[128] (4 bits); weight = d * sc[j] * q - dmin * m[j].
"""

import numpy as np

QK_K = 256
Q6_K_BYTES = 210
Q4_K_BYTES = 144


def _blocks(data, name):
    data = np.asarray(data, dtype=np.float32)
    if data.shape[-1] % QK_K:
        raise ValueError(f"{name} needs rows of a multiple of {QK_K} values, got {data.shape[-1]}")
    return data, data.reshape(-1, QK_K)


def _as_f16(x):
    """x rounded to float16, and that value as float32 (what a block stores and its reader sees)."""
    half = x.astype(np.float16)
    return half, half.astype(np.float32)


def quantize_q6_k(data):
    """float array [..., n] (n a multiple of 256) -> uint8 array [..., n / 256 * 210]."""
    data, blocks = _blocks(data, "Q6_K")
    n = blocks.shape[0]
    sub = blocks.reshape(n, 16, 16)
    # Each 16-value sub-block gets a scale that maps its largest magnitude to 31.
    sub_scale = np.abs(sub).max(axis=-1) / 31.0
    d, d32 = _as_f16(np.abs(sub_scale).max(axis=-1) / 127.0)
    d32 = d32[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        scales = np.where(d32 > 0, np.rint(sub_scale / d32), 0)
    scales = np.clip(scales, -128, 127).astype(np.int8)
    step = (d32 * scales.astype(np.float32))[:, :, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.where(step != 0, np.rint(sub / step), 0)
    q = (np.clip(q, -32, 31) + 32).astype(np.uint8).reshape(n, QK_K)
    low = (q & 0x0F).reshape(n, 2, 2, 64)  # [half, nibble, byte]
    ql = (low[:, :, 0, :] | (low[:, :, 1, :] << 4)).reshape(n, 128)
    high = (q >> 4).reshape(n, 2, 4, 32)  # [half, 2-bit field, byte]
    qh = (high[:, :, 0] | (high[:, :, 1] << 2) | (high[:, :, 2] << 4) | (high[:, :, 3] << 6)).reshape(n, 64)
    out = np.concatenate([ql, qh, scales.view(np.uint8), d.view(np.uint8).reshape(n, 2)], axis=1)
    return out.reshape(*data.shape[:-1], data.shape[-1] // QK_K * Q6_K_BYTES)


def quantize_q4_k(data):
    """float array [..., n] (n a multiple of 256) -> uint8 array [..., n / 256 * 144]."""
    data, blocks = _blocks(data, "Q4_K")
    n = blocks.shape[0]
    sub = blocks.reshape(n, 8, 32)
    # Each 32-value sub-block: value = scale * q - min with q in 0..15 and min >= 0.
    sub_min = np.maximum(0.0, -sub.min(axis=-1))
    sub_scale = (sub.max(axis=-1) + sub_min) / 15.0
    d, d32 = _as_f16(sub_scale.max(axis=-1) / 63.0)
    dmin, dmin32 = _as_f16(sub_min.max(axis=-1) / 63.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        sc = np.where(d32[:, None] > 0, np.rint(sub_scale / d32[:, None]), 0)
        mn = np.where(dmin32[:, None] > 0, np.rint(sub_min / dmin32[:, None]), 0)
    sc = np.clip(sc, 0, 63).astype(np.uint8)
    mn = np.clip(mn, 0, 63).astype(np.uint8)
    step = (d32[:, None] * sc)[:, :, None]
    offset = (dmin32[:, None] * mn)[:, :, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.where(step > 0, np.rint((sub + offset) / step), 0)
    q = np.clip(q, 0, 15).astype(np.uint8).reshape(n, 4, 2, 32)  # [chunk, nibble, byte]
    qs = (q[:, :, 0, :] | (q[:, :, 1, :] << 4)).reshape(n, 128)
    # scales[0..3]: sc[0..3] | high bits of sc[4..7]; [4..7]: the same for the mins;
    # [8..11]: low 4 bits of sc[4..7] | low 4 bits of m[4..7] << 4.
    packed = np.concatenate([sc[:, :4] | ((sc[:, 4:] >> 4) << 6), mn[:, :4] | ((mn[:, 4:] >> 4) << 6),
                             (sc[:, 4:] & 0x0F) | ((mn[:, 4:] & 0x0F) << 4)], axis=1)
    out = np.concatenate([d.view(np.uint8).reshape(n, 2), dmin.view(np.uint8).reshape(n, 2), packed, qs], axis=1)
    return out.reshape(*data.shape[:-1], data.shape[-1] // QK_K * Q4_K_BYTES)
