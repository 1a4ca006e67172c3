#!/usr/bin/python3
"""The gpt_oss family (OpenAI gpt-oss) for the PyTorch reference (reference_forward.py).

Written from the public semantics of transformers' modeling_gpt_oss.py, configuration_gpt_oss.py,
masking_utils.py (sliding_window_overlay), modeling_rope_utils.py (YaRN) and
integrations/mxfp4.py (convert_moe_packed_tensors); facts only, no code copied.
reference_forward.Config, expected_shapes and Model hand this family to the functions here.

- Attention: q/k/v/o projections with biases (attention_bias, default true), GQA, rotate-half RoPE
  on whole heads (cos/sin of the first half, x1 * cos - x2 * sin | x2 * cos + x1 * sin), scale
  head_dim^-0.5. Learned sinks [heads]: each head's softmax runs over its scores and one extra
  logit, the sink, whose probability is then dropped. Layers that layer_types names
  "sliding_attention" (default: even layers) see keys kv with q - sliding_window < kv <= q.
- YaRN (rope_scaling type/rope_type "yarn"): reference_deepseek.yarn_parameters.
- Router: logits = x W^T + b; top-k of the logits; weights = softmax over those k. A keep plan sets
  the logits of dropped experts to -inf before the top-k.
- Experts (fused): gate_up = x @ gate_up_proj[e] + gate_up_proj_bias[e] ([E, H, 2I]); gate the even
  columns, up the odd; gate clamped to max swiglu_limit, up to [-limit, limit] (swiglu_limit from
  the config, default 7.0, as the MXFP4 integration reads it); glu = gate * sigmoid(1.702 gate);
  out = ((up + 1) * glu) @ down_proj[e] + down_proj_bias[e] ([E, I, H]).
- MXFP4 checkpoints (*_blocks [E, rows, cols / 32, 16] U8, *_scales [E, rows, cols / 32] U8):
  dequantized as convert_moe_packed_tensors does (low nibble the even element, value =
  FP4 * 2^(scale - 127), [E, rows, cols] transposed to [E, cols, rows]) before anything else.
- RMSNorm: weight * normalised (fp32), then cast (the norms are kept in fp32).
"""

import torch
import torch.nn.functional as F

import reference_deepseek

FAMILIES = ("gpt_oss",)

FP4_VALUES = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0,
              -0.0, -0.5, -1.0, -1.5, -2.0, -3.0, -4.0, -6.0)
MXFP4_PARTS = ("gate_up_proj", "down_proj")


def init_config(cfg, c, req, error):
    """Fill a reference_forward.Config for this family from the config dict c."""
    act = c.get("hidden_act", "silu")
    if act != "silu":
        raise error(f"hidden_act: only 'silu' is supported, got {act!r}")
    cfg.H = int(req("hidden_size"))
    cfg.n_layers = int(req("num_hidden_layers"))
    cfg.n_heads = int(req("num_attention_heads"))
    cfg.n_kv = int(c.get("num_key_value_heads") or cfg.n_heads)
    if cfg.n_heads % cfg.n_kv:
        raise error("num_key_value_heads: must divide num_attention_heads")
    cfg.hd = int(c.get("head_dim") or cfg.H // cfg.n_heads)
    cfg.rope_dim = cfg.hd
    cfg.qkv_bias = bool(c.get("attention_bias", True))
    cfg.o_bias = cfg.qkv_bias
    cfg.eps = float(c.get("rms_norm_eps") or 1e-5)
    cfg.theta = float(c.get("rope_theta") or 150000.0)
    cfg.vocab = int(req("vocab_size"))
    cfg.tie = bool(c.get("tie_word_embeddings", False))
    cfg.max_pos = c.get("max_position_embeddings")
    cfg.clip_qkv = None
    cfg.sliding_window = None  # per layer below, never refused
    cfg.k = int(req("num_experts_per_tok"))
    E = int(req("num_local_experts"))
    cfg.I = int(req("intermediate_size"))
    cfg.limit = float(c.get("swiglu_limit", 7.0))
    cfg.norm_topk = False
    types = c.get("layer_types")
    if types is None:
        types = ["sliding_attention" if (i + 1) % 2 else "full_attention" for i in range(cfg.n_layers)]
    if len(types) != cfg.n_layers or any(t not in ("sliding_attention", "full_attention") for t in types):
        raise error(f"layer_types: {types!r}")
    window = c.get("sliding_window")
    cfg.windows = [window if t == "sliding_attention" else None for t in types]
    if any(t == "sliding_attention" for t in types) and not (isinstance(window, int) and window >= 1):
        raise error(f"sliding_window: {window!r}")
    cfg.layer_E = [E] * cfg.n_layers
    cfg.layer_S = [0] * cfg.n_layers
    if not 1 <= cfg.k <= E:
        raise error(f"num_experts_per_tok: {cfg.k} invalid with {E} experts")
    rs = c.get("rope_scaling")
    cfg.yarn = None
    if rs is not None:
        if rs.get("rope_type", rs.get("type")) != "yarn":
            raise error(f"rope_scaling: only yarn is supported, got {rs!r}")
        cfg.yarn = rs
    cfg.mxfp4 = False  # set by expected_shapes' caller when the checkpoint holds blocks


def expected_shapes(cfg, mxfp4=None):
    H, nh, hd, nkv, E, I = cfg.H, cfg.n_heads, cfg.hd, cfg.n_kv, cfg.layer_E[0], cfg.I
    mxfp4 = cfg.mxfp4 if mxfp4 is None else mxfp4
    s = {"model.embed_tokens.weight": [cfg.vocab, H], "model.norm.weight": [H]}
    if not cfg.tie:
        s["lm_head.weight"] = [cfg.vocab, H]
    for i in range(cfg.n_layers):
        L = f"model.layers.{i}."
        A = L + "self_attn."
        for name, rows in (("q", nh * hd), ("k", nkv * hd), ("v", nkv * hd)):
            s[A + f"{name}_proj.weight"] = [rows, H]
            if cfg.qkv_bias:
                s[A + f"{name}_proj.bias"] = [rows]
        s[A + "o_proj.weight"] = [H, nh * hd]
        if cfg.o_bias:
            s[A + "o_proj.bias"] = [H]
        s[A + "sinks"] = [nh]
        s[L + "input_layernorm.weight"] = [H]
        s[L + "post_attention_layernorm.weight"] = [H]
        M = L + "mlp."
        s[M + "router.weight"] = [E, H]
        s[M + "router.bias"] = [E]
        if mxfp4:
            s[M + "experts.gate_up_proj_blocks"] = [E, 2 * I, H // 32, 16]
            s[M + "experts.gate_up_proj_scales"] = [E, 2 * I, H // 32]
            s[M + "experts.down_proj_blocks"] = [E, H, I // 32, 16]
            s[M + "experts.down_proj_scales"] = [E, H, I // 32]
        else:
            s[M + "experts.gate_up_proj"] = [E, H, 2 * I]
            s[M + "experts.down_proj"] = [E, I, H]
        s[M + "experts.gate_up_proj_bias"] = [E, 2 * I]
        s[M + "experts.down_proj_bias"] = [E, H]
    return s


def dequantize_mxfp4(blocks, scales):
    """convert_moe_packed_tensors: [E, rows, G, 16] U8 and [E, rows, G] U8 -> [E, G * 32, rows]."""
    lut = torch.tensor(FP4_VALUES, dtype=torch.float64)
    b = blocks.to(torch.int64)
    lo, hi = lut[b & 0x0F], lut[b >> 4]
    vals = torch.stack([lo, hi], dim=-1).reshape(*blocks.shape[:-1], 32)  # even = low nibble
    vals = vals * torch.pow(2.0, scales.to(torch.float64) - 127)[..., None]
    E, rows, G = scales.shape
    return vals.reshape(E, rows, G * 32).transpose(1, 2).contiguous()


def prepare_tensors(cfg, tensors):
    """Replace MXFP4 blocks/scales by the plain fused tensors they encode (in place)."""
    names = [n for n in tensors if n.endswith("_blocks")]
    cfg.mxfp4 = bool(names)
    for n in names:
        base = n[: -len("_blocks")]
        tensors[base] = dequantize_mxfp4(tensors.pop(n), tensors.pop(base + "_scales"))
    return tensors


def make_model_class(Model):
    """The family's Model: reference_forward.Model with sinks, windows and fused experts."""

    class GptOssModel(Model):
        def rms(self, x, weight):
            xf = x.to(self.cd)
            y = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.cfg.eps)
            return (weight.to(self.cd) * y).to(x.dtype)

        def rope_tables(self, T):
            inv, scale = reference_deepseek.rope_inv_freq(self.cfg, self.cfg.hd, self.cd)
            freqs = torch.arange(T, dtype=torch.int64).to(self.cd)[:, None] * inv[None, :]
            return freqs.cos() * scale, freqs.sin() * scale  # [T, hd / 2]

        def rope(self, x, cos, sin):
            c, s = cos[:, None, :].to(x.dtype), sin[:, None, :].to(x.dtype)
            x1, x2 = torch.chunk(x, 2, dim=-1)
            return torch.cat([x1 * c - x2 * s, x2 * c + x1 * s], dim=-1)

        def attention(self, x, W, cos, sin):
            cfg = self.cfg
            T, hd = x.shape[0], cfg.hd
            q = F.linear(x, W["q"], W.get("qb")).view(T, cfg.n_heads, hd)
            k = F.linear(x, W["k"], W.get("kb")).view(T, cfg.n_kv, hd)
            v = F.linear(x, W["v"], W.get("vb")).view(T, cfg.n_kv, hd)
            q, k = self.rope(q, cos, sin), self.rope(k, cos, sin)
            g = cfg.n_heads // cfg.n_kv
            q = q.transpose(0, 1)
            k = k.transpose(0, 1).repeat_interleave(g, dim=0)
            v = v.transpose(0, 1).repeat_interleave(g, dim=0)
            scores = torch.matmul(q, k.transpose(1, 2)) * hd ** -0.5
            qi = torch.arange(T)[:, None]
            ki = torch.arange(T)[None, :]
            masked = ki > qi
            if W["window"] is not None:
                masked = masked | ~(ki > qi - W["window"])
            scores = scores.masked_fill(masked, float("-inf"))
            sinks = W["sinks"].reshape(cfg.n_heads, 1, 1).expand(cfg.n_heads, T, 1).to(scores.dtype)
            combined = torch.cat([scores, sinks], dim=-1)
            combined = combined - combined.max(dim=-1, keepdim=True).values
            p = torch.softmax(combined, dim=-1, dtype=combined.dtype)[..., :-1]
            o = torch.matmul(p, v).transpose(0, 1).reshape(T, cfg.n_heads * hd)
            return F.linear(o, W["o"], W.get("ob"))

        def moe(self, x, W, layer, kept):
            cfg = self.cfg
            E = cfg.layer_E[layer]
            T, H = x.shape
            logits = F.linear(x, W["router"], W["router_bias"])
            masked = logits
            n_kept = E
            if kept is not None:
                drop = torch.ones(E, dtype=torch.bool)
                drop[kept] = False
                masked = logits.masked_fill(drop[None, :], float("-inf"))
                n_kept = len(kept)
            kk = min(cfg.k, n_kept)
            top, ids = torch.topk(masked, kk, dim=-1)
            weights = torch.softmax(top, dim=1, dtype=top.dtype)
            out = torch.zeros(T, H, dtype=self.act)
            norms = torch.zeros(ids.shape, dtype=self.cd)
            gu, gub, dn, dnb = W["gate_up"], W["gate_up_bias"], W["down"], W["down_bias"]
            for e in range(E):
                tok, pos = torch.where(ids == e)
                if tok.numel() == 0:
                    continue
                h = x[tok] @ gu[e] + gub[e]
                gate, up = h[..., ::2], h[..., 1::2]
                gate = gate.clamp(max=cfg.limit)
                up = up.clamp(min=-cfg.limit, max=cfg.limit)
                glu = gate * torch.sigmoid(gate * 1.702)
                y = ((up + 1) * glu) @ dn[e] + dnb[e]
                norms[tok, pos] = y.to(self.cd).norm(dim=-1)
                out.index_add_(0, tok, (y * weights[tok, pos, None]).to(self.act))
            rec = {"router_logits": logits.to(self.cd), "experts": ids.to(torch.int32),
                   "weights": weights.to(self.cd), "expert_out_norm": norms}
            return out, rec

        def layer_weights(self, i):
            cfg = self.cfg
            L = f"model.layers.{i}."
            A = L + "self_attn."
            W = {}
            for key in ("q", "k", "v", "o"):
                W[key] = self.w(A + f"{key}_proj.weight")
                if A + f"{key}_proj.bias" in self.t:
                    W[key + "b"] = self.w(A + f"{key}_proj.bias")
            W["sinks"] = self.w(A + "sinks")
            W["window"] = cfg.windows[i]
            W["n1"] = self.w(L + "input_layernorm.weight")
            W["n2"] = self.w(L + "post_attention_layernorm.weight")
            M = L + "mlp."
            W["router"] = self.w(M + "router.weight")
            W["router_bias"] = self.w(M + "router.bias")
            W["gate_up"] = self.w(M + "experts.gate_up_proj")
            W["gate_up_bias"] = self.w(M + "experts.gate_up_proj_bias")
            W["down"] = self.w(M + "experts.down_proj")
            W["down_bias"] = self.w(M + "experts.down_proj_bias")
            return W

    return GptOssModel
