"""PyTorch eager baseline for the forward-pass and profiler benchmarks (not a test).

Runs an OLMoE checkpoint the way transformers' eager OlmoeModel computes it: RMSNorm, q/k/v
projections with whole-vector q/k norms, rotate-half RoPE, causal softmax attention, and the
OlmoeSparseMoeBlock (softmax router, top-k, a loop over experts with index_add_). Prints, as JSON
lines, the measured fp32 matrix-product rate and tokens/s for float32 and bfloat16, with and
without the LM head. Run with /usr/bin/python3 and OpenBLAS first on LD_LIBRARY_PATH, e.g.
  LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp python3 bench/torch_olmoe_baseline.py \
      --model DIR --corpus FILE.jsonl --threads 2
"""
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "reference"))
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from safetensors_io import load_checkpoint  # noqa: E402
from torch_bench_util import baseline_arguments, blas_note, gemm_rate, read_documents, rms_norm, rotate_half  # noqa: E402


class Olmoe:
    def __init__(self, model_dir, dtype):
        self.config = json.load(open(os.path.join(model_dir, "config.json")))
        self.w = {k: v.to(dtype) for k, v in load_checkpoint(model_dir).items()}
        self.dtype = dtype

    def layer(self, i, h, cos, sin):
        c, w = self.config, self.w
        p = f"model.layers.{i}."
        heads = c["num_attention_heads"]
        kv = c.get("num_key_value_heads", heads)
        hd = c["hidden_size"] // heads
        eps = c["rms_norm_eps"]
        n = h.shape[0]
        x = rms_norm(h, w[p + "input_layernorm.weight"], eps)
        q = rms_norm(F.linear(x, w[p + "self_attn.q_proj.weight"]), w[p + "self_attn.q_norm.weight"], eps)
        k = rms_norm(F.linear(x, w[p + "self_attn.k_proj.weight"]), w[p + "self_attn.k_norm.weight"], eps)
        v = F.linear(x, w[p + "self_attn.v_proj.weight"])
        q = q.view(n, heads, hd).transpose(0, 1)
        k = k.view(n, kv, hd).transpose(0, 1)
        v = v.view(n, kv, hd).transpose(0, 1)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k = k.repeat_interleave(heads // kv, 0)
        v = v.repeat_interleave(heads // kv, 0)
        scores = torch.matmul(q, k.transpose(1, 2)) * hd ** -0.5
        mask = torch.full((n, n), float("-inf")).triu(1)
        probs = torch.softmax(scores.float() + mask, dim=-1).to(self.dtype)
        attn = torch.matmul(probs, v).transpose(0, 1).reshape(n, heads * hd)
        h = h + F.linear(attn, w[p + "self_attn.o_proj.weight"])
        # OlmoeSparseMoeBlock
        x = rms_norm(h, w[p + "post_attention_layernorm.weight"], eps)
        router_logits = F.linear(x, w[p + "mlp.gate.weight"])
        routing = torch.softmax(router_logits, dim=1, dtype=torch.float)
        weights, experts = torch.topk(routing, c["num_experts_per_tok"], dim=-1)
        if c.get("norm_topk_prob"):
            weights /= weights.sum(dim=-1, keepdim=True)
        weights = weights.to(self.dtype)
        out = torch.zeros_like(x)
        mask = F.one_hot(experts, num_classes=c["num_experts"]).permute(2, 1, 0)
        for e in range(c["num_experts"]):
            slot, token = torch.where(mask[e])
            if token.numel() == 0:
                continue
            xe = x[token]
            q = p + f"mlp.experts.{e}."
            ye = F.linear(F.silu(F.linear(xe, w[q + "gate_proj.weight"])) * F.linear(xe, w[q + "up_proj.weight"]),
                          w[q + "down_proj.weight"])
            out.index_add_(0, token, ye * weights[token, slot, None])
        return h + out

    def forward(self, ids, lm_head=True):
        c, w = self.config, self.w
        hd = c["hidden_size"] // c["num_attention_heads"]
        n = len(ids)
        inv = 1.0 / (c.get("rope_theta", 10000.0) ** (torch.arange(0, hd, 2).float() / hd))
        angles = torch.outer(torch.arange(n).float(), inv)
        emb = torch.cat((angles, angles), dim=-1)
        cos, sin = emb.cos().to(self.dtype), emb.sin().to(self.dtype)
        h = w["model.embed_tokens.weight"][torch.tensor(ids)]
        for i in range(c["num_hidden_layers"]):
            h = self.layer(i, h, cos, sin)
        if not lm_head:
            return h
        h = rms_norm(h, w["model.norm.weight"], c["rms_norm_eps"])
        return F.linear(h, w["lm_head.weight"])


def main():
    parser = baseline_arguments()
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    docs = read_documents(args.corpus)
    tokens = sum(len(d) for d in docs)
    print(json.dumps({"what": "torch_gemm_gflops", "dtype": "float32", "value": round(gemm_rate(torch.float32), 1),
                      "blas": blas_note()}))
    print(json.dumps({"what": "torch_gemm_gflops", "dtype": "bfloat16", "value": round(gemm_rate(torch.bfloat16), 1)}))
    for dtype in (torch.float32, torch.bfloat16):
        model = Olmoe(args.model, dtype)
        with torch.no_grad():
            for lm_head in (True, False):
                model.forward(docs[0][:16], lm_head)  # warm-up
                start = time.perf_counter()
                for _ in range(args.repeat):
                    for d in docs:
                        model.forward(d, lm_head)
                seconds = (time.perf_counter() - start) / args.repeat
                print(json.dumps({"what": "torch_forward", "dtype": str(dtype).split(".")[1], "lm_head": lm_head,
                                  "tokens": tokens, "seconds": round(seconds, 3),
                                  "tokens_per_s": round(tokens / seconds, 1)}))
        del model


if __name__ == "__main__":
    main()
