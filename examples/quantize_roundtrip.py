#!/usr/bin/python3
"""Writes a checkpoint whose weight matrices hold what a GGUF quantized to TYPE holds: each matrix
quantized block by block along its rows with gguf-py (llama.cpp's own quantizers) and dequantized
back, stored as F32; norms and routers kept as they are (llama.cpp's converter keeps them F32).
For examples/quantized_plans.sh: the example models are EMO-family, which no GGUF architecture
expresses, and moeslice's forward pass on a GGUF equals its forward pass on the checkpoint of the
GGUF's dequantized weights bit for bit (tests/cli/gguf_forward.sh), so profiling this checkpoint
is profiling the quantized file. Run with /usr/bin/python3 (torch + numpy).

  /usr/bin/python3 examples/quantize_roundtrip.py --gguf-py DIR --model HF_DIR --type q4_0 --out DIR

TYPE: any type gguf-py quantizes whose block divides the rows (q8_0, q5_0, q5_1, q4_0, q4_1;
the example's rows of 128 are too short for K-quants, so llama.cpp's Q4_K_M stores them as Q5_0).
"""
import argparse
import json
import os
import shutil
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "reference"))
from safetensors_io import load_checkpoint, save_file  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--gguf-py", required=True, help="gguf-py directory (tests/llama/extract_gguf_py.sh)")
    ap.add_argument("--model", required=True)
    ap.add_argument("--type", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    sys.path.insert(0, args.gguf_py)
    import gguf  # noqa: E402

    qtype = gguf.GGMLQuantizationType[args.type.upper()]
    tensors = load_checkpoint(args.model)
    out = {}
    for name, tensor in tensors.items():
        data = tensor.to(torch.float32)
        keep = data.dim() != 2 or "norm" in name or name.endswith("mlp.gate.weight")
        if not keep:
            blocks = gguf.quants.quantize(data.numpy().astype(np.float32), qtype)
            data = torch.from_numpy(np.ascontiguousarray(gguf.quants.dequantize(blocks, qtype)))
        out[name] = data.contiguous()
    os.makedirs(args.out, exist_ok=True)
    save_file(os.path.join(args.out, "model.safetensors"), out)
    config = json.load(open(os.path.join(args.model, "config.json")))
    config["torch_dtype"] = "float32"
    json.dump(config, open(os.path.join(args.out, "config.json"), "w"), indent=2)
    shutil.copy(os.path.join(args.model, "tokenizer.json"), args.out)


if __name__ == "__main__":
    main()
