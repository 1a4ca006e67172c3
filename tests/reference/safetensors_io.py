"""Minimal safetensors reader/writer for the moeslice PyTorch reference (numpy + json + struct).

Format (https://github.com/huggingface/safetensors): u64 little-endian header length N, N bytes
of JSON {name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {str: str}},
then the data buffer. Offsets are relative to the start of the buffer (byte 8 + N); sorted, they
must tile the buffer exactly (no gaps, no overlaps, no trailing bytes).

Reading:  load_file(path) -> (dict name -> torch.Tensor, metadata dict)
          load_checkpoint(dir) -> dict name -> torch.Tensor (single `model.safetensors` or sharded
          via `model.safetensors.index.json`)
Writing:  save_file(path, tensors, metadata=None)  (header starts with `{`, space-padded to a
          multiple of 8, `__metadata__` always contains {"format": "pt"})
          save_sharded(dir, tensors, n_shards) -> writes model-0000i-of-0000n.safetensors + index

Supported dtypes: F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL, and F8_E4M3 read as its raw
codes (torch.uint8: Debian's torch has no float8 type; e4m3fn_values decodes them). BF16 is decoded exactly
(uint16 -> uint32 << 16 -> float32 view -> torch.bfloat16) and encoded from torch.bfloat16
tensors bit-exactly (from float tensors by round-to-nearest-even via torch's own conversion).
"""

import json
import os
import struct

import numpy as np
import torch

MAX_HEADER = 100_000_000

# safetensors dtype -> (numpy dtype for the raw bytes, element size)
_NP = {
    "F64": (np.dtype("<f8"), 8),
    "F32": (np.dtype("<f4"), 4),
    "F16": (np.dtype("<f2"), 2),
    "BF16": (np.dtype("<u2"), 2),
    "I64": (np.dtype("<i8"), 8),
    "I32": (np.dtype("<i4"), 4),
    "I16": (np.dtype("<i2"), 2),
    "I8": (np.dtype("i1"), 1),
    "U8": (np.dtype("u1"), 1),
    "BOOL": (np.dtype("?"), 1),
    "F8_E4M3": (np.dtype("u1"), 1),
}

_TORCH_TO_ST = {
    torch.float64: "F64",
    torch.float32: "F32",
    torch.float16: "F16",
    torch.bfloat16: "BF16",
    torch.int64: "I64",
    torch.int32: "I32",
    torch.int16: "I16",
    torch.int8: "I8",
    torch.uint8: "U8",
    torch.bool: "BOOL",
}


class SafetensorsError(ValueError):
    pass


def e4m3fn_values(codes):
    """FP8 E4M3 (e4m3fn: bias 7, subnormals, S.1111.111 NaN, no infinities) codes, a uint8
    tensor, as float64 values."""
    table = []
    for code in range(256):
        exponent, mantissa = (code >> 3) & 0x0F, code & 0x07
        if exponent == 0x0F and mantissa == 0x07:
            value = float("nan")
        elif exponent == 0:
            value = mantissa * 2.0 ** -9
        else:
            value = (8 + mantissa) * 2.0 ** (exponent - 10)
        table.append(-value if code & 0x80 else value)
    return torch.tensor(table, dtype=torch.float64)[codes.to(torch.int64)]


def _decode(raw: bytes, dtype: str, shape):
    npdt, _ = _NP[dtype]
    arr = np.frombuffer(raw, dtype=npdt).reshape(shape)
    if dtype == "BF16":
        f32 = (arr.astype(np.uint32) << 16).view(np.float32)
        return torch.from_numpy(f32.copy()).to(torch.bfloat16)
    return torch.from_numpy(arr.copy())


def read_header(path):
    """Return (header dict without __metadata__, metadata dict, data start offset, file size)."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise SafetensorsError(f"{path}: file shorter than 8 bytes")
        (n,) = struct.unpack("<Q", head)
        if n > MAX_HEADER or 8 + n > size:
            raise SafetensorsError(f"{path}: header length {n} invalid for file size {size}")
        header = json.loads(f.read(n).decode("utf-8"))
    if not isinstance(header, dict):
        raise SafetensorsError(f"{path}: header is not a JSON object")
    meta = header.pop("__metadata__", {}) or {}
    return header, meta, 8 + n, size


def load_file(path):
    """Read one .safetensors file. Returns (dict name -> torch.Tensor, metadata)."""
    header, meta, start, size = read_header(path)
    spans = []
    for name, info in header.items():
        dt = info.get("dtype")
        if dt not in _NP:
            raise SafetensorsError(f"{path}: tensor '{name}' has unsupported dtype {dt}")
        shape = [int(s) for s in info["shape"]]
        b, e = (int(x) for x in info["data_offsets"])
        nbytes = int(np.prod(shape, dtype=np.int64)) * _NP[dt][1] if shape else _NP[dt][1]
        if e - b != nbytes or b > e:
            raise SafetensorsError(
                f"{path}: tensor '{name}' spans {e - b} bytes, expected {nbytes} for {dt}{shape}")
        spans.append((b, e, name))
    spans.sort()
    pos = 0
    for b, e, name in spans:
        if b != pos:
            raise SafetensorsError(f"{path}: tensor '{name}' starts at {b}, expected {pos} (gap/overlap)")
        pos = e
    if start + pos != size:
        raise SafetensorsError(f"{path}: data ends at {start + pos} but file has {size} bytes")
    out = {}
    with open(path, "rb") as f:
        for b, e, name in spans:
            f.seek(start + b)
            info = header[name]
            out[name] = _decode(f.read(e - b), info["dtype"], [int(s) for s in info["shape"]])
    return out, meta


def load_checkpoint(model_dir):
    """Load all tensors of a HF checkpoint directory (single file or sharded with an index)."""
    index = os.path.join(model_dir, "model.safetensors.index.json")
    single = os.path.join(model_dir, "model.safetensors")
    if os.path.exists(index):
        with open(index) as f:
            wmap = json.load(f)["weight_map"]
        tensors = {}
        for shard in sorted(set(wmap.values())):
            part, _ = load_file(os.path.join(model_dir, shard))
            for name, t in part.items():
                if wmap.get(name) != shard:
                    raise SafetensorsError(
                        f"{shard}: tensor '{name}' not listed for this shard in the index")
                tensors[name] = t
        missing = [n for n in wmap if n not in tensors]
        if missing:
            raise SafetensorsError(f"index lists tensors absent from shards: {missing[:5]}")
        return tensors
    if os.path.exists(single):
        return load_file(single)[0]
    raise SafetensorsError(f"{model_dir}: neither model.safetensors nor model.safetensors.index.json")


def _encode(t):
    if isinstance(t, np.ndarray):
        t = torch.from_numpy(np.ascontiguousarray(t))
    t = t.detach().contiguous().cpu()
    if t.dtype not in _TORCH_TO_ST:
        raise SafetensorsError(f"cannot store dtype {t.dtype}")
    dt = _TORCH_TO_ST[t.dtype]
    if dt == "BF16":
        raw = t.view(torch.int16).numpy().astype("<i2").tobytes()
    else:
        raw = t.numpy().astype(_NP[dt][0], copy=False).tobytes()
    return dt, list(t.shape), raw


def save_file(path, tensors, metadata=None):
    """Write tensors (name -> torch.Tensor or numpy array) in name order."""
    meta = {"format": "pt"}
    for k, v in (metadata or {}).items():
        meta[str(k)] = str(v)
    header = {"__metadata__": meta}
    blobs = []
    pos = 0
    for name in sorted(tensors):
        dt, shape, raw = _encode(tensors[name])
        header[name] = {"dtype": dt, "shape": shape, "data_offsets": [pos, pos + len(raw)]}
        blobs.append(raw)
        pos += len(raw)
    hb = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hb += b" " * ((8 - len(hb) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hb)))
        f.write(hb)
        for raw in blobs:
            f.write(raw)
    return pos


def save_sharded(model_dir, tensors, n_shards=2):
    """Split tensors (in name order) into n_shards files plus model.safetensors.index.json."""
    names = sorted(tensors)
    per = -(-len(names) // n_shards)
    wmap = {}
    total = 0
    for i in range(n_shards):
        chunk = names[i * per:(i + 1) * per]
        fname = f"model-{i + 1:05d}-of-{n_shards:05d}.safetensors"
        total += save_file(os.path.join(model_dir, fname), {n: tensors[n] for n in chunk})
        for n in chunk:
            wmap[n] = fname
    with open(os.path.join(model_dir, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": wmap}, f, indent=2, sort_keys=True)
