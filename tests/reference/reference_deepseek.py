#!/usr/bin/python3
"""The deepseek_v3 (DeepSeek-V3/R1, Kimi K2) and glm4_moe (GLM-4.5/4.6) families for the PyTorch
reference (reference_forward.py).

Written from the public semantics of transformers' modeling_deepseek_v3.py,
configuration_deepseek_v3.py, modeling_glm4_moe.py, configuration_glm4_moe.py and
modeling_rope_utils.py (YaRN); facts only, no code copied.
reference_forward.Config, expected_shapes and Model.load hand this family to the functions here.

- MLA attention: q = q_b(RMSNorm_1e-6(q_a(x))) with q_lora_rank, else q_proj(x);
  kv_a_proj_with_mqa(x) = [compressed kv | one shared rope key]; kv_b(RMSNorm_1e-6(compressed))
  = per head [no-rope key | value]; RoPE (head size qk_rope_head_dim) on the rope parts only,
  interleaved pairs re-laid as halves first when rope_interleave (default true); query/key per
  head [nope | rope]; softmax scale (nope + rope)^-0.5, times mscale^2 with
  mscale = 0.1 * mscale_all_dim * ln(factor) + 1 when rope_scaling sets mscale_all_dim.
- YaRN (rope_scaling type/rope_type "yarn", both families): _compute_yarn_parameters' inverse
  frequencies over the rotated dimensions (MLA: qk_rope_head_dim; glm4_moe:
  int(head_dim * partial_rotary_factor), the correction range computed with that dim too) and
  attention factor (cos and sin multiplied by it, in fp32 before any cast).
- Router: s = sigmoid(x W^T); c = s + e_score_correction_bias; a group's score is the sum of its
  two largest c; the top topk_group groups are kept and c of the others set to 0.0; top-k of c;
  weights s of the chosen, / (sum + 1e-20) when norm_topk_prob, times routed_scaling_factor.
  A keep plan sets c of dropped experts to -inf (so they leave the group scores and are never
  chosen, also in groups that are not kept). Chosen experts are listed in descending c (the
  modeling code's topk(sorted=False) leaves the order open; the MoE sum is order-free).
- glm4_moe attention: GQA with q/k/v biases when attention_bias (none on o_proj), per-head q/k
  RMSNorm (config eps) when use_qk_norm, rotate-half RoPE on the first
  int(head_dim * partial_rotary_factor) (default 0.5) dimensions of each head, scale head_dim^-0.5
  (also under YaRN: mscale_all_dim never touches the softmax scale of Glm4MoeAttention);
  its router, shared experts and MoE sum are DeepSeek-V3's (first_k_dense_replace defaults to 1,
  n_shared_experts to 1, no moe_layer_freq).
- MoE layers: i >= first_k_dense_replace and i % moe_layer_freq == 0; the routed outputs are summed
  in the weights' dtype (fp32 in a bf16 run) and cast once; the shared experts (one MLP
  of width n_shared_experts * moe_intermediate_size) are added unweighted after the routed sum.
"""

import math

import torch
import torch.nn.functional as F

FAMILIES = ("deepseek_v3", "kimi_k2", "glm4_moe")


def init_config(cfg, c, req, error):
    """Fill a reference_forward.Config for this family from the config dict c."""
    act = c.get("hidden_act", "silu")
    if act != "silu":
        raise error(f"hidden_act: only 'silu' is supported, got {act!r}")
    glm = cfg.family == "glm4_moe"
    cfg.mla = not glm
    cfg.H = int(req("hidden_size"))
    cfg.n_layers = int(req("num_hidden_layers"))
    cfg.n_heads = int(req("num_attention_heads"))
    cfg.n_kv = int(c.get("num_key_value_heads") or cfg.n_heads)
    if glm:
        if cfg.n_heads % cfg.n_kv:
            raise error("num_key_value_heads: must divide num_attention_heads")
        cfg.hd = int(c.get("head_dim") or cfg.H // cfg.n_heads)
        cfg.rope_dim = int(cfg.hd * float(c.get("partial_rotary_factor", 0.5)))
        cfg.qkv_bias = bool(c.get("attention_bias", False))
        cfg.qk_norm = bool(c.get("use_qk_norm", False))
        if cfg.rope_dim % 2 or cfg.rope_dim < 2:
            raise error("partial_rotary_factor: RoPE must rotate an even number of dimensions")
    else:
        if c.get("attention_bias"):
            raise error("attention_bias: MLA biases are not supported by the reference")
        if cfg.n_kv != cfg.n_heads:
            raise error("num_key_value_heads: MLA needs one key/value head per query head")
        cfg.q_lora = c.get("q_lora_rank")
        cfg.kv_lora = int(req("kv_lora_rank"))
        cfg.nope = int(req("qk_nope_head_dim"))
        cfg.rope_dim = int(req("qk_rope_head_dim"))
        cfg.vd = int(req("v_head_dim"))
        cfg.hd = cfg.nope + cfg.rope_dim
        if cfg.rope_dim % 2:
            raise error("qk_rope_head_dim: must be even")
        cfg.interleave = bool(c.get("rope_interleave", True))
        cfg.qkv_bias = False
    cfg.eps = float(c.get("rms_norm_eps") or (1e-5 if glm else 1e-6))
    cfg.theta = float(c.get("rope_theta") or 10000.0)
    cfg.vocab = int(req("vocab_size"))
    cfg.tie = bool(c.get("tie_word_embeddings", False))
    cfg.max_pos = c.get("max_position_embeddings")
    cfg.o_bias = False
    cfg.clip_qkv = None
    cfg.sliding_window = None
    cfg.k = int(req("num_experts_per_tok"))
    E = int(req("n_routed_experts"))
    cfg.norm_topk = bool(c.get("norm_topk_prob", True))
    cfg.scaling = float(c.get("routed_scaling_factor") or 1.0)
    cfg.n_group = int(c.get("n_group") or 1)
    cfg.topk_group = int(c.get("topk_group") or 1)
    if E % cfg.n_group or not 1 <= cfg.topk_group <= cfg.n_group:
        raise error("n_group/topk_group: experts must split into n_group groups, topk_group <= n_group")
    cfg.I = int(req("moe_intermediate_size"))
    cfg.dense_I = int(req("intermediate_size"))
    shared = c.get("n_shared_experts")
    cfg.n_shared = (1 if glm else 0) if shared is None else int(shared)
    first = c.get("first_k_dense_replace")
    first = (1 if glm else 3) if first is None else int(first)
    freq = int(c.get("moe_layer_freq") or 1)
    cfg.layer_E = [E if (i >= first and i % freq == 0) else 0 for i in range(cfg.n_layers)]
    cfg.layer_S = [0] * cfg.n_layers
    if not 1 <= cfg.k <= E:
        raise error(f"num_experts_per_tok: {cfg.k} invalid with {E} experts")

    # RoPE scaling
    rs = c.get("rope_scaling")
    cfg.yarn = None
    cfg.attn_scale = cfg.hd ** -0.5
    if rs is not None:
        kind = rs.get("rope_type", rs.get("type"))
        if kind != "yarn":
            raise error(f"rope_scaling: only yarn is supported, got {rs!r}")
        cfg.yarn = rs
        # DeepseekV3Attention alone scales the softmax by mscale(factor, mscale_all_dim)^2;
        # Glm4MoeAttention keeps head_dim^-0.5 (YaRN reaches it through cos/sin only).
        mscale_all_dim = rs.get("mscale_all_dim", 0)
        if mscale_all_dim and not glm:
            m = yarn_get_mscale(rs["factor"], mscale_all_dim)
            cfg.attn_scale = cfg.attn_scale * m * m


def yarn_get_mscale(scale, mscale=1.0):
    return 1.0 if scale <= 1 else 0.1 * mscale * math.log(scale) + 1.0


def yarn_parameters(rs, dim, base, max_pos, dtype):
    """Inverse frequencies and attention factor of _compute_yarn_parameters (in `dtype`)."""
    factor = rs["factor"]
    attention_factor = rs.get("attention_factor")
    mscale, mscale_all_dim = rs.get("mscale"), rs.get("mscale_all_dim")
    if attention_factor is None:
        if mscale and mscale_all_dim:
            attention_factor = yarn_get_mscale(factor, mscale) / yarn_get_mscale(factor, mscale_all_dim)
        else:
            attention_factor = yarn_get_mscale(factor)
    beta_fast = rs.get("beta_fast") or 32
    beta_slow = rs.get("beta_slow") or 1
    original = rs.get("original_max_position_embeddings") or max_pos

    def correction_dim(rotations):
        return (dim * math.log(original / (rotations * 2 * math.pi))) / (2 * math.log(base))

    low, high = correction_dim(beta_fast), correction_dim(beta_slow)
    if rs.get("truncate", True):
        low, high = math.floor(low), math.ceil(high)
    low, high = max(low, 0), min(high, dim - 1)
    if low == high:
        high += 0.001
    pos_freqs = base ** (torch.arange(0, dim, 2, dtype=torch.int64).to(dtype) / dim)
    extrapolation = 1.0 / pos_freqs
    interpolation = 1.0 / (factor * pos_freqs)
    ramp = ((torch.arange(dim // 2, dtype=torch.int64).to(dtype) - low) / (high - low)).clamp(0, 1)
    extrapolation_factor = 1 - ramp
    inv = interpolation * (1 - extrapolation_factor) + extrapolation * extrapolation_factor
    return inv, attention_factor


def rope_inv_freq(cfg, dim, dtype):
    """Inverse frequencies and the cos/sin factor: YaRN's when cfg.yarn is set, else theta's."""
    if cfg.yarn is not None:
        return yarn_parameters(cfg.yarn, dim, cfg.theta, cfg.max_pos, dtype)
    return 1.0 / (cfg.theta ** (torch.arange(0, dim, 2, dtype=torch.int64).to(dtype) / dim)), 1.0


def expected_shapes(cfg):
    H, nh = cfg.H, cfg.n_heads
    s = {"model.embed_tokens.weight": [cfg.vocab, H], "model.norm.weight": [H]}
    if not cfg.tie:
        s["lm_head.weight"] = [cfg.vocab, H]
    for i in range(cfg.n_layers):
        L = f"model.layers.{i}."
        A = L + "self_attn."
        if not cfg.mla:
            for name, rows in (("q", nh * cfg.hd), ("k", cfg.n_kv * cfg.hd), ("v", cfg.n_kv * cfg.hd)):
                s[A + f"{name}_proj.weight"] = [rows, H]
                if cfg.qkv_bias:
                    s[A + f"{name}_proj.bias"] = [rows]
            s[A + "o_proj.weight"] = [H, nh * cfg.hd]
            if cfg.qk_norm:
                s[A + "q_norm.weight"] = [cfg.hd]
                s[A + "k_norm.weight"] = [cfg.hd]
        elif cfg.q_lora:
            s[A + "q_a_proj.weight"] = [cfg.q_lora, H]
            s[A + "q_a_layernorm.weight"] = [cfg.q_lora]
            s[A + "q_b_proj.weight"] = [nh * cfg.hd, cfg.q_lora]
        else:
            s[A + "q_proj.weight"] = [nh * cfg.hd, H]
        if cfg.mla:
            s[A + "kv_a_proj_with_mqa.weight"] = [cfg.kv_lora + cfg.rope_dim, H]
            s[A + "kv_a_layernorm.weight"] = [cfg.kv_lora]
            s[A + "kv_b_proj.weight"] = [nh * (cfg.nope + cfg.vd), cfg.kv_lora]
            s[A + "o_proj.weight"] = [H, nh * cfg.vd]
        s[L + "input_layernorm.weight"] = [H]
        s[L + "post_attention_layernorm.weight"] = [H]
        E = cfg.layer_E[i]
        if E:
            s[L + "mlp.gate.weight"] = [E, H]
            s[L + "mlp.gate.e_score_correction_bias"] = [E]
            for e in range(E):
                P = L + f"mlp.experts.{e}."
                s[P + "gate_proj.weight"] = [cfg.I, H]
                s[P + "up_proj.weight"] = [cfg.I, H]
                s[P + "down_proj.weight"] = [H, cfg.I]
            if cfg.n_shared:
                W = cfg.n_shared * cfg.I
                P = L + "mlp.shared_experts."
                s[P + "gate_proj.weight"] = [W, H]
                s[P + "up_proj.weight"] = [W, H]
                s[P + "down_proj.weight"] = [H, W]
        else:
            s[L + "mlp.gate_proj.weight"] = [cfg.dense_I, H]
            s[L + "mlp.up_proj.weight"] = [cfg.dense_I, H]
            s[L + "mlp.down_proj.weight"] = [H, cfg.dense_I]
    return s


_MODEL_CLASS = {}


def make_model_class(Model):
    """The family's Model: reference_forward.Model with MLA, YaRN and the group router."""
    if Model in _MODEL_CLASS:
        return _MODEL_CLASS[Model]

    class DeepseekModel(Model):
        def rms_eps(self, x, weight, eps):
            xf = x.to(self.cd)
            y = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)
            return weight * y.to(x.dtype)

        def rms(self, x, weight):
            return self.rms_eps(x, weight, self.cfg.eps)

        def rope_tables(self, T):
            inv, scale = rope_inv_freq(self.cfg, self.cfg.rope_dim, self.cd)
            freqs = torch.arange(T, dtype=torch.int64).to(self.cd)[:, None] * inv[None, :]
            emb = torch.cat([freqs, freqs], dim=-1)
            return emb.cos() * scale, emb.sin() * scale

        def rope(self, x, cos, sin):
            half = x.shape[-1] // 2
            rot = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
            c, s = cos[:, None, :].to(x.dtype), sin[:, None, :].to(x.dtype)
            return x * c + rot * s

        def deinterleave(self, x):
            if not self.cfg.interleave:
                return x
            T, h, d = x.shape
            return x.view(T, h, d // 2, 2).transpose(3, 2).reshape(T, h, d)

        def glm_attention(self, x, W, cos, sin):
            cfg = self.cfg
            T, hd, r = x.shape[0], cfg.hd, cfg.rope_dim
            q = F.linear(x, W["q"], W.get("qb")).view(T, cfg.n_heads, hd)
            k = F.linear(x, W["k"], W.get("kb")).view(T, cfg.n_kv, hd)
            v = F.linear(x, W["v"], W.get("vb")).view(T, cfg.n_kv, hd)
            if cfg.qk_norm:  # per head, before RoPE
                q = self.rms(q, W["qn"])
                k = self.rms(k, W["kn"])
            q = torch.cat([self.rope(q[..., :r], cos, sin), q[..., r:]], dim=-1)
            k = torch.cat([self.rope(k[..., :r], cos, sin), k[..., r:]], dim=-1)
            g = cfg.n_heads // cfg.n_kv
            q = q.transpose(0, 1)
            k = k.transpose(0, 1).repeat_interleave(g, dim=0)
            v = v.transpose(0, 1).repeat_interleave(g, dim=0)
            scores = torch.matmul(q, k.transpose(1, 2)) * cfg.attn_scale
            causal = torch.ones(T, T, dtype=torch.bool).triu(1)
            scores = scores.masked_fill(causal, float("-inf"))
            p = torch.softmax(scores.to(self.cd), dim=-1).to(self.act)
            o = torch.matmul(p, v).transpose(0, 1).reshape(T, cfg.n_heads * hd)
            return F.linear(o, W["o"])

        def attention(self, x, W, cos, sin):
            cfg = self.cfg
            if not cfg.mla:
                return self.glm_attention(x, W, cos, sin)
            T, nh = x.shape[0], cfg.n_heads
            if cfg.q_lora:
                q = F.linear(self.rms_eps(F.linear(x, W["q_a"]), W["q_a_norm"], 1e-6), W["q_b"])
            else:
                q = F.linear(x, W["q"])
            q = q.view(T, nh, cfg.hd)
            q_pass, q_rot = q[..., :cfg.nope], q[..., cfg.nope:]
            ckv = F.linear(x, W["kv_a"])
            k_pass, k_rot = ckv[:, :cfg.kv_lora], ckv[:, cfg.kv_lora:]
            kv = F.linear(self.rms_eps(k_pass, W["kv_a_norm"], 1e-6), W["kv_b"]).view(T, nh, cfg.nope + cfg.vd)
            k_pass, v = kv[..., :cfg.nope], kv[..., cfg.nope:]
            k_rot = k_rot.reshape(T, 1, cfg.rope_dim)
            q_rot = self.rope(self.deinterleave(q_rot), cos, sin)
            k_rot = self.rope(self.deinterleave(k_rot), cos, sin).expand(T, nh, cfg.rope_dim)
            q = torch.cat([q_pass, q_rot], dim=-1).transpose(0, 1)      # [nh, T, hd]
            k = torch.cat([k_pass, k_rot], dim=-1).transpose(0, 1)
            v = v.transpose(0, 1)
            scores = torch.matmul(q, k.transpose(1, 2)) * cfg.attn_scale
            causal = torch.ones(T, T, dtype=torch.bool).triu(1)
            scores = scores.masked_fill(causal, float("-inf"))
            p = torch.softmax(scores.to(self.cd), dim=-1).to(self.act)
            o = torch.matmul(p, v).transpose(0, 1).reshape(T, nh * cfg.vd)
            return F.linear(o, W["o"])

        def moe(self, x, W, layer, kept):
            cfg = self.cfg
            E = cfg.layer_E[layer]
            T, H = x.shape
            logits = F.linear(x.to(self.cd), W["router"].to(self.cd))
            scores = logits.sigmoid()
            choice = scores + W["bias"].to(self.cd)[None, :]
            dropped = torch.zeros(E, dtype=torch.bool)
            if kept is not None:
                dropped[:] = True
                dropped[kept] = False
                choice = choice.masked_fill(dropped[None, :], float("-inf"))
            G = cfg.n_group
            group_scores = choice.view(T, G, E // G).topk(min(2, E // G), dim=-1)[0].sum(dim=-1)
            # topk over groups: descending, ties to the lower group (stable sort).
            order = torch.sort(group_scores, dim=-1, descending=True, stable=True)[1]
            group_keep = torch.zeros(T, G, dtype=torch.bool)
            group_keep.scatter_(1, order[:, :cfg.topk_group], True)
            expert_keep = group_keep[:, :, None].expand(T, G, E // G).reshape(T, E)
            outside = ~expert_keep & ~dropped[None, :]
            choice = choice.masked_fill(outside, 0.0)
            kk = min(cfg.k, E if kept is None else len(kept))
            order = torch.sort(choice, dim=-1, descending=True, stable=True)[1]
            ids = order[:, :kk]
            weights = scores.gather(1, ids)
            if cfg.norm_topk:
                weights = weights / (weights.sum(dim=-1, keepdim=True) + 1e-20)
            weights = weights * cfg.scaling
            # DeepseekV3MoE.moe: the weighted outputs summed in the weights' dtype (fp32 in a bf16
            # run), cast to the activation dtype once at the end.
            out = torch.zeros(T, H, dtype=weights.dtype)
            norms = torch.zeros(ids.shape, dtype=self.cd)
            for e in range(E):
                tok, pos = torch.where(ids == e)
                if tok.numel() == 0:
                    continue
                y = self.mlp(x[tok], *W["experts"][e])
                norms[tok, pos] = y.to(self.cd).norm(dim=-1)
                out.index_add_(0, tok, y * weights[tok, pos, None])
            out = out.to(self.act)
            if "shared" in W:
                out = out + self.mlp(x, *W["shared"])
            rec = {"router_logits": logits, "experts": ids.to(torch.int32), "weights": weights,
                   "expert_out_norm": norms}
            return out, rec

        def layer_weights(self, i):
            cfg = self.cfg
            L = f"model.layers.{i}."
            A = L + "self_attn."
            W = {}
            if not cfg.mla:
                for key in ("q", "k", "v", "o"):
                    W[key] = self.w(A + f"{key}_proj.weight")
                    if A + f"{key}_proj.bias" in self.t:
                        W[key + "b"] = self.w(A + f"{key}_proj.bias")
                if cfg.qk_norm:
                    W["qn"] = self.w(A + "q_norm.weight")
                    W["kn"] = self.w(A + "k_norm.weight")
            elif cfg.q_lora:
                W["q_a"] = self.w(A + "q_a_proj.weight")
                W["q_a_norm"] = self.w(A + "q_a_layernorm.weight")
                W["q_b"] = self.w(A + "q_b_proj.weight")
            else:
                W["q"] = self.w(A + "q_proj.weight")
            if cfg.mla:
                W["kv_a"] = self.w(A + "kv_a_proj_with_mqa.weight")
                W["kv_a_norm"] = self.w(A + "kv_a_layernorm.weight")
                W["kv_b"] = self.w(A + "kv_b_proj.weight")
                W["o"] = self.w(A + "o_proj.weight")
            W["n1"] = self.w(L + "input_layernorm.weight")
            W["n2"] = self.w(L + "post_attention_layernorm.weight")
            if cfg.is_moe(i):
                W["router"] = self.w(L + "mlp.gate.weight")
                W["bias"] = self.w(L + "mlp.gate.e_score_correction_bias")
                W["experts"] = [tuple(self.w(L + f"mlp.experts.{e}.{p}_proj.weight")
                                      for p in ("gate", "up", "down"))
                                for e in range(cfg.layer_E[i])]
                if cfg.n_shared:
                    W["shared"] = tuple(self.w(L + f"mlp.shared_experts.{p}_proj.weight")
                                        for p in ("gate", "up", "down"))
            else:
                W["dense"] = tuple(self.w(L + f"mlp.{p}_proj.weight") for p in ("gate", "up", "down"))
            return W

    _MODEL_CLASS[Model] = DeepseekModel
    return DeepseekModel
