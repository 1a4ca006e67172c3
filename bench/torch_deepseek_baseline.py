"""PyTorch eager baseline for the DeepSeek-V3-shaped forward benchmark (not a test).

Runs a deepseek_v3 checkpoint with the maths of tests/reference/reference_deepseek.py (itself
written from transformers' modeling_deepseek_v3.py), the way an eager PyTorch forward computes it:
MLA attention (q through q_a_proj, q_a_layernorm and q_b_proj when q_lora_rank is set; the
compressed kv and the shared rope key from kv_a_proj_with_mqa; kv_b_proj into per-head no-rope
keys and values; RoPE with YaRN on the rope parts only, interleaved pairs re-laid as halves; the
softmax scale with mscale^2), the group-limited sigmoid router (correction bias for the choice,
top-2 group scores, topk_group groups, weights from the unbiased scores, normalised, scaled), a
loop over the chosen experts with index_add_ (DeepseekV3MoE.moe), the shared experts added after,
dense layers below first_k_dense_replace. The configuration is parsed by the reference's Config,
so both sides read the same numbers. Prints, as JSON lines, the measured matrix-product rate and
the tokens per wall second and CPU seconds of each repeat in --dtype (float32 or bfloat16; the
weights converted once, before timing), the LM head included.
Run with /usr/bin/python3 and OpenBLAS first on LD_LIBRARY_PATH, as bench/run_deepseek_bench.sh
does:
  LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp python3 bench/torch_deepseek_baseline.py \
      --model DIR --corpus FILE.jsonl --threads 2 --dtype float32
"""
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "reference"))
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from reference_deepseek import rope_inv_freq  # noqa: E402
from reference_forward import Config  # noqa: E402
from safetensors_io import load_checkpoint  # noqa: E402
from torch_bench_util import baseline_arguments, blas_note, gemm_rate, read_documents, rms_norm, rotate_half  # noqa: E402


class DeepseekV3:
    def __init__(self, model_dir, dtype):
        self.cfg = Config(json.load(open(os.path.join(model_dir, "config.json"))))
        if not self.cfg.mla:
            raise SystemExit(f"{model_dir}: not a deepseek_v3 model")
        self.w = load_checkpoint(model_dir)
        for name in list(self.w):  # converted one tensor at a time
            keep_fp32 = name.endswith("e_score_correction_bias")
            self.w[name] = self.w[name].to(torch.float32 if keep_fp32 else dtype)
        self.dtype = dtype

    def mlp(self, x, prefix):
        w = self.w
        return F.linear(F.silu(F.linear(x, w[prefix + "gate_proj.weight"])) * F.linear(x, w[prefix + "up_proj.weight"]),
                        w[prefix + "down_proj.weight"])

    def attention(self, x, p, cos, sin):
        cfg, w = self.cfg, self.w
        n, heads = x.shape[0], cfg.n_heads
        if cfg.q_lora:
            q = F.linear(rms_norm(F.linear(x, w[p + "q_a_proj.weight"]), w[p + "q_a_layernorm.weight"], 1e-6),
                         w[p + "q_b_proj.weight"])
        else:
            q = F.linear(x, w[p + "q_proj.weight"])
        q = q.view(n, heads, cfg.hd)
        q_pass, q_rot = q[..., :cfg.nope], q[..., cfg.nope:]
        compressed = F.linear(x, w[p + "kv_a_proj_with_mqa.weight"])
        k_pass, k_rot = compressed[:, :cfg.kv_lora], compressed[:, cfg.kv_lora:]
        kv = F.linear(rms_norm(k_pass, w[p + "kv_a_layernorm.weight"], 1e-6), w[p + "kv_b_proj.weight"])
        kv = kv.view(n, heads, cfg.nope + cfg.vd)
        k_pass, v = kv[..., :cfg.nope], kv[..., cfg.nope:]
        k_rot = k_rot.reshape(n, 1, cfg.rope_dim)
        if cfg.interleave:  # apply_rotary_pos_emb_interleave: pairs re-laid as halves
            q_rot = q_rot.reshape(n, heads, cfg.rope_dim // 2, 2).transpose(3, 2).reshape(n, heads, cfg.rope_dim)
            k_rot = k_rot.reshape(n, 1, cfg.rope_dim // 2, 2).transpose(3, 2).reshape(n, 1, cfg.rope_dim)
        q_rot = q_rot * cos + rotate_half(q_rot) * sin
        k_rot = (k_rot * cos + rotate_half(k_rot) * sin).expand(n, heads, cfg.rope_dim)
        q = torch.cat([q_pass, q_rot], dim=-1).transpose(0, 1)
        k = torch.cat([k_pass, k_rot], dim=-1).transpose(0, 1)
        v = v.transpose(0, 1)
        scores = torch.matmul(q, k.transpose(1, 2)) * cfg.attn_scale
        mask = torch.full((n, n), float("-inf")).triu(1)
        probs = torch.softmax(scores.float() + mask, dim=-1).to(self.dtype)
        out = torch.matmul(probs, v).transpose(0, 1).reshape(n, heads * cfg.vd)
        return F.linear(out, self.w[p + "o_proj.weight"])

    def moe(self, x, p, experts):
        cfg, w = self.cfg, self.w
        n = x.shape[0]
        logits = F.linear(x.float(), w[p + "gate.weight"].float())
        scores = logits.sigmoid()
        choice = scores + w[p + "gate.e_score_correction_bias"]
        groups = choice.view(n, cfg.n_group, -1).topk(2, dim=-1)[0].sum(dim=-1)
        kept_groups = groups.topk(cfg.topk_group, dim=-1, sorted=False)[1]
        group_mask = torch.zeros_like(groups).scatter_(1, kept_groups, 1)
        expert_mask = group_mask.unsqueeze(-1).expand(n, cfg.n_group, experts // cfg.n_group).reshape(n, -1)
        choice = choice.masked_fill(~expert_mask.bool(), 0.0)
        chosen = choice.topk(cfg.k, dim=-1, sorted=False)[1]
        weights = scores.gather(1, chosen)
        if cfg.norm_topk:
            weights = weights / (weights.sum(dim=-1, keepdim=True) + 1e-20)
        weights = weights * cfg.scaling
        # DeepseekV3MoE.moe: the weighted outputs summed in the weights' dtype (fp32), cast once.
        out = torch.zeros(x.shape, dtype=weights.dtype)
        mask = F.one_hot(chosen, num_classes=experts).permute(2, 1, 0)
        for e in range(experts):
            slot, token = torch.where(mask[e])
            if token.numel() == 0:
                continue
            out.index_add_(0, token, self.mlp(x[token], p + f"experts.{e}.") * weights[token, slot, None])
        out = out.to(self.dtype)
        if cfg.n_shared:
            out = out + self.mlp(x, p + "shared_experts.")
        return out

    def forward(self, ids):
        cfg, w = self.cfg, self.w
        n = len(ids)
        inv, factor = rope_inv_freq(cfg, cfg.rope_dim, torch.float32)
        angles = torch.outer(torch.arange(n).float(), inv)
        emb = torch.cat((angles, angles), dim=-1)
        cos = (emb.cos() * factor).to(self.dtype)[:, None, :]
        sin = (emb.sin() * factor).to(self.dtype)[:, None, :]
        h = w["model.embed_tokens.weight"][torch.tensor(ids)]
        for i in range(cfg.n_layers):
            p = f"model.layers.{i}."
            h = h + self.attention(rms_norm(h, w[p + "input_layernorm.weight"], cfg.eps), p + "self_attn.", cos, sin)
            x = rms_norm(h, w[p + "post_attention_layernorm.weight"], cfg.eps)
            experts = cfg.layer_E[i]
            h = h + (self.moe(x, p + "mlp.", experts) if experts else self.mlp(x, p + "mlp."))
        h = rms_norm(h, w["model.norm.weight"], cfg.eps)
        head = w["model.embed_tokens.weight"] if cfg.tie else w["lm_head.weight"]
        return F.linear(h, head)


def main():
    parser = baseline_arguments()
    parser.add_argument("--dtype", choices=("float32", "bfloat16"), required=True)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    dtype = getattr(torch, args.dtype)
    docs = read_documents(args.corpus)
    tokens = sum(len(d) for d in docs)
    print(json.dumps({"what": "torch_gemm_gflops", "dtype": args.dtype, "value": round(gemm_rate(dtype), 1),
                      "blas": blas_note()}))
    model = DeepseekV3(args.model, dtype)
    with torch.no_grad():
        model.forward(docs[0][:16])  # warm-up
        best = None
        for r in range(args.repeat):
            start, cpu_start = time.perf_counter(), time.process_time()
            for d in docs:
                model.forward(d)
            seconds = time.perf_counter() - start
            cpu = time.process_time() - cpu_start  # all threads: on a busy machine, below threads * wall
            best = seconds if best is None else min(best, seconds)
            print(json.dumps({"what": "torch_forward", "dtype": args.dtype, "repeat": r, "tokens": tokens,
                              "seconds": round(seconds, 3), "cpu_seconds": round(cpu, 3),
                              "tokens_per_s": round(tokens / seconds, 1)}),
                  flush=True)


if __name__ == "__main__":
    main()
