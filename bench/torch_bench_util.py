"""Shared pieces of the eager PyTorch baselines (torch_olmoe_baseline.py, torch_deepseek_baseline.py):
transformers' RMSNorm (fp32 statistics, weight times the input-dtype result), rotate_half, the
measured matrix-product rate, and the corpus reader. Not a test.
"""
import argparse
import json
import time

import torch


def rms_norm(x, weight, eps):
    dtype = x.dtype
    x32 = x.float()
    x32 = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + eps)
    return weight * x32.to(dtype)


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def gemm_rate(dtype, size=2048, repeat=10):
    """GFLOP/s of a size^3 matrix product in `dtype` (the "measured peak")."""
    a = torch.randn(size, size, dtype=dtype)
    b = torch.randn(size, size, dtype=dtype)
    torch.matmul(a, b)
    start = time.perf_counter()
    for _ in range(repeat):
        torch.matmul(a, b)
    return 2 * size ** 3 * repeat / (time.perf_counter() - start) / 1e9


def blas_note():
    return torch.__config__.show().count("OpenBLAS") > 0 or "see LD_LIBRARY_PATH"


def read_documents(path):
    """The input_ids of every non-blank line of a JSON Lines corpus."""
    return [json.loads(line)["input_ids"] for line in open(path) if line.strip()]


def baseline_arguments():
    """The flags both baselines take: --model, --corpus, --threads, --repeat."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--corpus", required=True)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=1)
    return parser
