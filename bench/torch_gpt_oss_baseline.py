"""PyTorch eager baseline for the gpt-oss forward benchmark (bench/run_gpt_oss_bench.sh; not a test).

Runs a gpt_oss checkpoint (MXFP4 experts as released, dequantized once to float32 before timing,
as transformers' convert_moe_packed_tensors does) with the reference maths of
tests/reference/reference_gpt_oss.py (attention with sinks and sliding windows, YaRN RoPE, top-k
softmax router, a loop over the chosen experts with the clamped SwiGLU) in float32, layers only:
no LM head, as `moeslice profile` and llama-bench's prompt processing (logits of the last token
only). Prints one JSON line per repeat: {"what": "torch_forward", "seconds", "tokens"}.
Run with /usr/bin/python3 and OpenBLAS first on LD_LIBRARY_PATH:
  LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp python3 bench/torch_gpt_oss_baseline.py \\
      --model DIR --corpus FILE.jsonl --threads 2
"""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "reference"))
import torch  # noqa: E402
import reference_forward  # noqa: E402
import reference_gpt_oss  # noqa: E402
from safetensors_io import load_checkpoint  # noqa: E402


def dequantize_f32(blocks, scales):
    """MXFP4 [E, rows, G, 16] / [E, rows, G] -> float32 [E, G * 32, rows], one expert at a time
    (exact: FP4 values times powers of two)."""
    lut = torch.tensor(reference_gpt_oss.FP4_VALUES, dtype=torch.float32)
    E, rows, G = scales.shape
    out = torch.empty(E, G * 32, rows, dtype=torch.float32)
    for e in range(E):
        b = blocks[e].to(torch.int64)
        vals = torch.stack([lut[b & 0x0F], lut[b >> 4]], dim=-1).reshape(rows, G, 32)
        vals = vals * torch.pow(2.0, scales[e].to(torch.float32) - 127)[..., None]
        out[e] = vals.reshape(rows, G * 32).t()
    return out


def load(model_dir):
    cfg = reference_forward.Config(json.load(open(os.path.join(model_dir, "config.json"))))
    tensors = load_checkpoint(model_dir)
    for name in [n for n in tensors if n.endswith("_blocks")]:
        base = name[: -len("_blocks")]
        tensors[base] = dequantize_f32(tensors.pop(name), tensors.pop(base + "_scales"))
    cfg.mxfp4 = False
    tensors = {n: t.to(torch.float32) for n, t in tensors.items()}
    return reference_forward.Model(cfg, tensors, "float32")


@torch.no_grad()
def layers_only(model, doc):
    """reference_forward.Model.forward without the LM head, one document."""
    cfg = model.cfg
    x = model.w("model.embed_tokens.weight")[torch.tensor(doc, dtype=torch.long)]
    cos, sin = model.rope_tables(len(doc))
    for i in range(cfg.n_layers):
        W = model.layer_weights(i)
        x = x + model.attention(model.rms(x, W["n1"]), W, cos, sin)
        m, _ = model.ffn(model.rms(x, W["n2"]), W, i, None)
        x = x + m
    return model.rms(x, model.w("model.norm.weight"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    model = load(a.model)
    docs = [json.loads(line)["input_ids"] for line in open(a.corpus) if line.strip()]
    tokens = sum(len(d) for d in docs)
    layers_only(model, docs[0][:16])  # warm-up
    for _ in range(a.repeat):
        start = time.perf_counter()
        for d in docs:
            layers_only(model, d)
        print(json.dumps({"what": "torch_forward", "dtype": "float32", "threads": a.threads,
                          "tokens": tokens, "seconds": time.perf_counter() - start}), flush=True)


if __name__ == "__main__":
    main()
