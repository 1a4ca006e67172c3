#!/usr/bin/python3
"""Independent PyTorch reference forward pass for six MoE families (moeslice parity tests).

Families: emo, olmoe, flex_olmo, mixtral, qwen2_moe, qwen3_moe. Written from the public modeling
semantics (transformers' modeling_{olmoe,flex_olmo,mixtral,qwen2_moe,qwen3_moe}.py and the EMO
release's trust_remote_code modeling_emo.py); see README.md next to this file for every decision.

CLI:
  /usr/bin/python3 tests/reference/reference_forward.py --model DIR --corpus FILE.jsonl \
      --out OUT.safetensors [--keep PLAN.json] [--dtype float64|float32|bfloat16]

Corpus: JSON Lines, one document per line: {"input_ids": [...]} (optional "id"); each document
is an independent sequence with positions restarting at 0.
Plan (--keep): {"experts_kept_per_layer": [[ids...] | null, ...]} (one entry per layer; null =
no restriction; must be null for layers without experts). Router logits of experts not kept are
set to -inf before the softmax.

Output tensors (F64 for --dtype float64, else F32; expert ids I32), for document i:
  doc.<i>                               [T, vocab] logits
  doc.<i>.layer.<l>.router_logits       [T, E]  raw router logits (before the -inf mask)
  doc.<i>.layer.<l>.experts             [T, k'] chosen expert ids, in torch.topk order
  doc.<i>.layer.<l>.weights             [T, k'] gate weights (routing dtype, before the cast
                                                to the activation dtype)
  doc.<i>.layer.<l>.expert_out_norm     [T, k'] L2 norm of each chosen expert's output before
                                                gate weighting
for every layer l that has experts. k' is the per-layer effective top-k (== num_experts_per_tok
unless a plan keeps fewer experts; see README).

Library use: Model.load(dir, dtype).forward(docs, plan) -> list of per-document result dicts.
"""

import argparse
import json
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402
import reference_deepseek  # noqa: E402
import reference_gpt_oss  # noqa: E402

# Families with a file of their own beside this one.
FAMILY_MODULES = (reference_deepseek, reference_gpt_oss)


def family_module(family):
    for module in FAMILY_MODULES:
        if family in module.FAMILIES:
            return module
    return None

DTYPES = {"float64": torch.float64, "float32": torch.float32, "bfloat16": torch.bfloat16}


class ConfigError(ValueError):
    pass


# Per-family structure. norm: "llama" = weight * normed.to(input dtype); "olmo2" = (weight *
# normed_fp32).to(input dtype). rope: "llama" = cos/sin cast to the activation dtype before the
# rotation; "olmo2" = rotation computed against fp32 cos/sin, result cast back.
FAMILIES = {
    "olmoe": dict(norm="llama", rope="llama", qk="whole", block="pre",
                  lnorms=("input_layernorm", "post_attention_layernorm"),
                  router="mlp.gate", experts="mlp.experts.{e}",
                  proj=("gate_proj", "up_proj", "down_proj"), n_experts_key="num_experts",
                  eps=1e-5, theta=10000.0),
    "flex_olmo": dict(norm="olmo2", rope="olmo2", qk="whole", block="post",
                      lnorms=("post_attention_layernorm", "post_feedforward_layernorm"),
                      router="mlp.gate", experts="mlp.experts.{e}",
                      proj=("gate_proj", "up_proj", "down_proj"), n_experts_key="num_experts",
                      eps=1e-6, theta=500000.0),
    "emo": dict(norm="olmo2", rope="olmo2", qk="none", block="pre",
                lnorms=("pre_attention_layernorm", "pre_feedforward_layernorm"),
                router="mlp.gate", experts="mlp.experts.{e}",
                proj=("gate_proj", "up_proj", "down_proj"), n_experts_key="num_experts",
                eps=1e-6, theta=500000.0),
    "mixtral": dict(norm="llama", rope="llama", qk="none", block="pre",
                    lnorms=("input_layernorm", "post_attention_layernorm"),
                    router="block_sparse_moe.gate", experts="block_sparse_moe.experts.{e}",
                    proj=("w1", "w3", "w2"), n_experts_key="num_local_experts",
                    eps=1e-5, theta=1e6),
    "qwen2_moe": dict(norm="llama", rope="llama", qk="none", block="pre",
                      lnorms=("input_layernorm", "post_attention_layernorm"),
                      router="mlp.gate", experts="mlp.experts.{e}",
                      proj=("gate_proj", "up_proj", "down_proj"), n_experts_key="num_experts",
                      eps=1e-6, theta=10000.0),
    "qwen3_moe": dict(norm="llama", rope="llama", qk="per_head", block="pre",
                      lnorms=("input_layernorm", "post_attention_layernorm"),
                      router="mlp.gate", experts="mlp.experts.{e}",
                      proj=("gate_proj", "up_proj", "down_proj"), n_experts_key="num_experts",
                      eps=1e-6, theta=10000.0),
}


class Config:
    """Parsed, validated family configuration (from the HF config.json dict)."""

    def __init__(self, raw):
        c = dict(raw["text_config"]) if raw.get("text_config") else dict(raw)
        if c.get("model_type") not in FAMILIES and raw.get("model_type") in FAMILIES:
            c["model_type"] = raw["model_type"]  # nested text_config without its own type
        fam = c.get("model_type")
        known = sorted(FAMILIES) + [f for m in FAMILY_MODULES for f in m.FAMILIES]
        if fam not in known:
            raise ConfigError(f"model_type: unsupported family {fam!r} (want one of {known})")
        self.family = fam
        self.raw = c

        def req(key):
            if c.get(key) is None:
                raise ConfigError(f"{key}: required config key missing")
            return c[key]

        if family_module(fam) is not None:  # reference_deepseek.py, reference_gpt_oss.py
            self.f = {"block": "pre"}
            family_module(fam).init_config(self, c, req, ConfigError)
            return
        self.f = FAMILIES[fam]

        act = c.get("hidden_act", "silu")
        if act != "silu":
            raise ConfigError(f"hidden_act: only 'silu' is supported, got {act!r}")
        if c.get("rope_scaling") is not None:
            raise ConfigError(f"rope_scaling: only null is supported, got {c['rope_scaling']!r}")
        theta = c.get("rope_theta")
        rp = c.get("rope_parameters")
        if rp is not None:  # transformers v5 style
            if rp.get("rope_type", "default") != "default":
                raise ConfigError(f"rope_parameters.rope_type: only 'default' is supported, got {rp!r}")
            theta = rp.get("rope_theta", theta)
        self.theta = float(theta if theta is not None else self.f["theta"])

        self.H = int(req("hidden_size"))
        self.n_layers = int(req("num_hidden_layers"))
        self.n_heads = int(req("num_attention_heads"))
        self.n_kv = int(c.get("num_key_value_heads") or self.n_heads)
        if self.n_heads % self.n_kv:
            raise ConfigError("num_key_value_heads: must divide num_attention_heads")
        if fam == "olmoe":
            # OlmoeAttention sizes q_norm by hidden_size and k_norm by (H / heads) * kv heads.
            self.hd = self.H // self.n_heads
            if c.get("head_dim") not in (None, self.hd):
                raise ConfigError(f"head_dim: olmoe requires hidden_size/num_attention_heads = {self.hd}")
        elif fam == "qwen3_moe":
            self.hd = int(req("head_dim"))
        else:
            self.hd = int(c.get("head_dim") or self.H // self.n_heads)
        if self.hd % 2:
            raise ConfigError("head_dim: must be even for rotate-half RoPE")
        self.eps = float(c.get("rms_norm_eps") or self.f["eps"])
        self.vocab = int(req("vocab_size"))
        self.tie = bool(c.get("tie_word_embeddings", False))
        self.max_pos = c.get("max_position_embeddings")

        # attention biases
        self.qkv_bias = self.o_bias = False
        if fam == "qwen2_moe":
            self.qkv_bias = bool(c.get("qkv_bias", True))
        elif fam == "mixtral":
            if c.get("attention_bias"):
                raise ConfigError("attention_bias: mixtral has no attention biases")
        else:
            self.qkv_bias = self.o_bias = bool(c.get("attention_bias", False))
        self.clip_qkv = c.get("clip_qkv")
        if self.clip_qkv is not None and fam != "olmoe":
            raise ConfigError(f"clip_qkv: only olmoe applies clip_qkv; {fam} config has {self.clip_qkv!r}")

        # sliding window: refuse only when it could matter (checked per document length)
        self.sliding_window = None
        sw = c.get("sliding_window")
        if fam in ("qwen2_moe", "qwen3_moe"):
            if c.get("use_sliding_window") and sw is not None:
                self.sliding_window = int(sw)
        elif sw is not None:
            self.sliding_window = int(sw)

        # experts
        self.k = int(req("num_experts_per_tok"))
        E = int(req(self.f["n_experts_key"]))
        self.norm_topk = True if fam == "mixtral" else bool(c.get("norm_topk_prob", False))
        self.I = int(req("moe_intermediate_size" if fam.startswith("qwen") else "intermediate_size"))
        S = int(c.get("num_shared_experts") or 0) if fam == "emo" else 0
        self.shared_I = int(req("shared_expert_intermediate_size")) if fam == "qwen2_moe" else 0
        self.dense_I = None

        per_layer_E = [E] * self.n_layers
        per_layer_S = [S] * self.n_layers
        if fam == "emo":
            for key in ("always_active_experts", "always_active_experts_per_layer"):
                if c.get(key):
                    raise ConfigError(f"{key}: not supported by the reference")
            if c.get("ghost_extend_eval") not in (None, False, "false"):
                raise ConfigError("ghost_extend_eval: not supported by the reference")
            if c.get("dense_mlp_bias"):
                raise ConfigError("dense_mlp_bias: not supported by the reference")
            if c.get("num_experts_per_layer") is not None:
                per_layer_E = [int(x) for x in c["num_experts_per_layer"]]
                if len(per_layer_E) != self.n_layers:
                    raise ConfigError("num_experts_per_layer: length differs from num_hidden_layers")
                if c.get("num_shared_experts_per_layer") is not None:
                    per_layer_S = [int(x) for x in c["num_shared_experts_per_layer"]]
                else:
                    per_layer_S = [min(S, e) for e in per_layer_E]
            if any(e == 0 for e in per_layer_E):
                self.dense_I = int(req("dense_intermediate_size"))
            if self.norm_topk and any(s > 0 for s in per_layer_S):
                raise ConfigError("norm_topk_prob: EMO does not define it together with shared experts")
        if fam in ("qwen2_moe", "qwen3_moe"):
            mlp_only = set(c.get("mlp_only_layers") or [])
            step = int(c.get("decoder_sparse_step") or 1)
            for i in range(self.n_layers):
                if not (i not in mlp_only and E > 0 and (i + 1) % step == 0):
                    per_layer_E[i] = 0
            if any(e == 0 for e in per_layer_E):
                self.dense_I = int(req("intermediate_size"))
        self.layer_E = per_layer_E
        self.layer_S = per_layer_S
        for i, (e, s) in enumerate(zip(per_layer_E, per_layer_S)):
            if e and not (s <= self.k <= e):
                raise ConfigError(f"num_experts_per_tok: {self.k} invalid for layer {i} with {e} experts")

    def is_moe(self, layer):
        return self.layer_E[layer] > 0


def expected_shapes(cfg):
    """Tensor name -> shape for a checkpoint of this config (exact HF on-disk layout)."""
    if family_module(cfg.family) is not None:
        return family_module(cfg.family).expected_shapes(cfg)
    H, hd, nh, nkv = cfg.H, cfg.hd, cfg.n_heads, cfg.n_kv
    f = cfg.f
    s = {"model.embed_tokens.weight": [cfg.vocab, H], "model.norm.weight": [H]}
    if not cfg.tie:
        s["lm_head.weight"] = [cfg.vocab, H]
    for i in range(cfg.n_layers):
        L = f"model.layers.{i}."
        s[L + "self_attn.q_proj.weight"] = [nh * hd, H]
        s[L + "self_attn.k_proj.weight"] = [nkv * hd, H]
        s[L + "self_attn.v_proj.weight"] = [nkv * hd, H]
        s[L + "self_attn.o_proj.weight"] = [H, nh * hd]
        if cfg.qkv_bias:
            s[L + "self_attn.q_proj.bias"] = [nh * hd]
            s[L + "self_attn.k_proj.bias"] = [nkv * hd]
            s[L + "self_attn.v_proj.bias"] = [nkv * hd]
        if cfg.o_bias:
            s[L + "self_attn.o_proj.bias"] = [H]
        if f["qk"] == "whole":
            s[L + "self_attn.q_norm.weight"] = [nh * hd]
            s[L + "self_attn.k_norm.weight"] = [nkv * hd]
        elif f["qk"] == "per_head":
            s[L + "self_attn.q_norm.weight"] = [hd]
            s[L + "self_attn.k_norm.weight"] = [hd]
        for n in f["lnorms"]:
            s[L + n + ".weight"] = [H]
        E = cfg.layer_E[i]
        g, u, d = f["proj"]
        if E:
            s[L + f["router"] + ".weight"] = [E, H]
            for e in range(E):
                P = L + f["experts"].format(e=e) + "."
                s[P + g + ".weight"] = [cfg.I, H]
                s[P + u + ".weight"] = [cfg.I, H]
                s[P + d + ".weight"] = [H, cfg.I]
            if cfg.family == "qwen2_moe":
                P = L + "mlp.shared_expert."
                s[P + "gate_proj.weight"] = [cfg.shared_I, H]
                s[P + "up_proj.weight"] = [cfg.shared_I, H]
                s[P + "down_proj.weight"] = [H, cfg.shared_I]
                s[L + "mlp.shared_expert_gate.weight"] = [1, H]
        else:
            s[L + "mlp.gate_proj.weight"] = [cfg.dense_I, H]
            s[L + "mlp.up_proj.weight"] = [cfg.dense_I, H]
            s[L + "mlp.down_proj.weight"] = [H, cfg.dense_I]
    return s


def dequantize_fp8(raw_config, tensors):
    """Block-scaled FP8 checkpoints (quantization_config quant_method "fp8"): every weight with a
    `<name>_scale_inv` companion becomes e4m3 value x its block's scale in float64 (DeepSeek's
    inference/kernel.py weight_dequant, transformers' finegrained_fp8), and the scales go."""
    q = raw_config.get("quantization_config")
    if not q or q.get("quant_method") != "fp8":  # gpt-oss's mxfp4: reference_gpt_oss
        return tensors
    if len(q.get("weight_block_size") or []) != 2:
        raise ConfigError(f"quantization_config {q}: fp8 without a weight_block_size")
    br, bc = q["weight_block_size"]
    out = dict(tensors)
    for name in [n for n in tensors if n.endswith("_scale_inv")]:
        weight = name[: -len("_scale_inv")]
        codes, scale = out[weight], out.pop(name).to(torch.float64)
        rows, cols = codes.shape
        if codes.dtype != torch.uint8 or list(scale.shape) != [-(-rows // br), -(-cols // bc)]:
            raise ConfigError(f"tensor '{name}': scales {list(scale.shape)} for {weight} {list(codes.shape)}")
        full = scale.repeat_interleave(br, 0)[:rows].repeat_interleave(bc, 1)[:, :cols]
        out[weight] = safetensors_io.e4m3fn_values(codes) * full
    return out


def without_mtp_layers(cfg, tensors):
    """DeepSeek-V3 / GLM-4.5 store num_nextn_predict_layers multi-token-prediction layers after
    the decoder layers; transformers ignores their weights (_keys_to_ignore_on_load_unexpected),
    and so does the reference."""
    mtp = cfg.raw.get("num_nextn_predict_layers") or 0
    if not mtp:
        return tensors
    mtp_prefixes = tuple(f"model.layers.{cfg.n_layers + i}." for i in range(mtp))
    return {n: t for n, t in tensors.items() if not n.startswith(mtp_prefixes)}


def check_tensors(cfg, tensors):
    """Every expected tensor present with the right shape, and nothing unexpected."""
    exp = expected_shapes(cfg)
    missing = [n for n in exp if n not in tensors]
    extra = [n for n in tensors if n not in exp]
    if cfg.tie and "lm_head.weight" in extra:
        # Tied heads: transformers ignores a stored lm_head; accept it only if it is the embedding.
        if torch.equal(tensors["lm_head.weight"].float(), tensors["model.embed_tokens.weight"].float()):
            extra.remove("lm_head.weight")
    if missing or extra:
        raise ConfigError(f"checkpoint layout mismatch: missing {missing[:6]}, unexpected {extra[:6]}")
    for n, shp in exp.items():
        if list(tensors[n].shape) != shp:
            raise ConfigError(f"tensor '{n}': expected shape {shp}, found {list(tensors[n].shape)}")


def load_plan(path_or_obj, cfg):
    """Validate a keep plan; returns list (per layer) of sorted kept ids or None."""
    if path_or_obj is None:
        return [None] * cfg.n_layers
    plan = path_or_obj
    if isinstance(plan, str):
        with open(plan) as f:
            plan = json.load(f)
    kept = plan.get("experts_kept_per_layer")
    if not isinstance(kept, list) or len(kept) != cfg.n_layers:
        raise ConfigError("experts_kept_per_layer: must be a list with one entry per layer")
    out = []
    for i, ids in enumerate(kept):
        if ids is None:
            out.append(None)
            continue
        E = cfg.layer_E[i]
        if not E:
            raise ConfigError(f"experts_kept_per_layer[{i}]: layer {i} has no experts, entry must be null")
        ids = [int(x) for x in ids]
        if not ids or len(set(ids)) != len(ids) or min(ids) < 0 or max(ids) >= E:
            raise ConfigError(f"experts_kept_per_layer[{i}]: ids must be unique, non-empty, in [0, {E})")
        S = cfg.layer_S[i]
        if S and any(e not in ids for e in range(E - S, E)):
            raise ConfigError(f"experts_kept_per_layer[{i}]: EMO shared experts {list(range(E - S, E))} must be kept")
        out.append(sorted(ids))
    return out


class Model:
    """Weights stay in their stored dtype; each layer is converted once per forward call."""

    def __new__(cls, cfg=None, *args, **kwargs):
        module = family_module(getattr(cfg, "family", None))
        if cls is Model and module is not None:
            cls = module.make_model_class(Model)  # the family's own subclass
        return super().__new__(cls)

    def __init__(self, cfg, tensors, dtype):
        self.cfg = cfg
        self.t = tensors
        self.act = DTYPES[dtype]
        # routing / normalisation / softmax compute dtype
        self.cd = torch.float64 if self.act == torch.float64 else torch.float32

    @classmethod
    def load(cls, model_dir, dtype="float64"):
        with open(os.path.join(model_dir, "config.json")) as f:
            cfg = Config(json.load(f))
        tensors = dequantize_fp8(cfg.raw, safetensors_io.load_checkpoint(model_dir))
        tensors = without_mtp_layers(cfg, tensors)
        if cfg.family in reference_gpt_oss.FAMILIES:  # MXFP4 experts: dequantized first
            names = set(tensors)
            cfg.mxfp4 = any(n.endswith("_blocks") for n in names)
            check_tensors(cfg, tensors)
            reference_gpt_oss.prepare_tensors(cfg, tensors)
            return cls(cfg, tensors, dtype)
        check_tensors(cfg, tensors)
        return cls(cfg, tensors, dtype)

    def w(self, name):
        return self.t[name].to(self.act)

    # ---- numerics -------------------------------------------------------------------------
    def rms(self, x, weight):
        xf = x.to(self.cd)
        y = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.cfg.eps)
        if self.cfg.f["norm"] == "llama":
            return weight * y.to(x.dtype)
        return (weight * y).to(x.dtype)

    def rope_tables(self, T):
        hd = self.cfg.hd
        inv = 1.0 / (self.cfg.theta ** (torch.arange(0, hd, 2, dtype=torch.int64).to(self.cd) / hd))
        freqs = torch.arange(T, dtype=torch.int64).to(self.cd)[:, None] * inv[None, :]
        emb = torch.cat([freqs, freqs], dim=-1)
        return emb.cos(), emb.sin()

    def rope(self, x, cos, sin):
        """x: [T, heads, hd]; cos/sin: [T, hd] in the compute dtype."""
        half = x.shape[-1] // 2
        rot = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
        c, s = cos[:, None, :], sin[:, None, :]
        if self.cfg.f["rope"] == "llama":
            c, s = c.to(x.dtype), s.to(x.dtype)
            return x * c + rot * s
        return (x * c + rot * s).to(x.dtype)

    @staticmethod
    def mlp(x, g, u, d):
        return F.linear(F.silu(F.linear(x, g)) * F.linear(x, u), d)

    # ---- blocks ---------------------------------------------------------------------------
    def attention(self, x, W, cos, sin):
        cfg = self.cfg
        T = x.shape[0]
        q = F.linear(x, W["q"], W.get("qb"))
        k = F.linear(x, W["k"], W.get("kb"))
        v = F.linear(x, W["v"], W.get("vb"))
        if cfg.f["qk"] == "whole":  # over the whole projected vector, before the head split
            q = self.rms(q, W["qn"])
            k = self.rms(k, W["kn"])
        if cfg.clip_qkv is not None:  # olmoe: after the q/k norms, on q, k and v
            c = float(cfg.clip_qkv)
            q, k, v = q.clamp(-c, c), k.clamp(-c, c), v.clamp(-c, c)
        q = q.view(T, cfg.n_heads, cfg.hd)
        k = k.view(T, cfg.n_kv, cfg.hd)
        v = v.view(T, cfg.n_kv, cfg.hd)
        if cfg.f["qk"] == "per_head":  # qwen3: per head, after the split, before RoPE
            q = self.rms(q, W["qn"])
            k = self.rms(k, W["kn"])
        q = self.rope(q, cos, sin)
        k = self.rope(k, cos, sin)
        g = cfg.n_heads // cfg.n_kv
        q = q.transpose(0, 1)                                  # [nh, T, hd]
        k = k.transpose(0, 1).repeat_interleave(g, dim=0)      # kv head j serves q heads j*g..
        v = v.transpose(0, 1).repeat_interleave(g, dim=0)
        scores = torch.matmul(q, k.transpose(1, 2)) * (cfg.hd ** -0.5)
        causal = torch.ones(T, T, dtype=torch.bool).triu(1)
        scores = scores.masked_fill(causal, float("-inf"))
        p = torch.softmax(scores.to(self.cd), dim=-1).to(self.act)
        o = torch.matmul(p, v).transpose(0, 1).reshape(T, cfg.n_heads * cfg.hd)
        return F.linear(o, W["o"], W.get("ob"))

    def route(self, logits_masked, layer, n_kept):
        """Routing weights/ids from (masked) router logits in the compute dtype."""
        cfg = self.cfg
        E, S, k = cfg.layer_E[layer], cfg.layer_S[layer], cfg.k
        if S > 0:  # EMO split softmax: routed experts first, shared experts last (weight 1 if S=1)
            Er = E - S
            k_std = min(k - S, n_kept - S)
            ws, ids = [], []
            if k_std > 0:
                p_std = torch.softmax(logits_masked[:, :Er], dim=-1)
                w1, i1 = torch.topk(p_std, k_std, dim=-1)
                ws.append(w1)
                ids.append(i1)
            p_sh = torch.softmax(logits_masked[:, Er:], dim=-1)
            w2, i2 = torch.topk(p_sh, S, dim=-1)
            ws.append(w2)
            ids.append(i2 + Er)
            return torch.cat(ws, dim=1), torch.cat(ids, dim=1)
        kk = min(k, n_kept)
        p = torch.softmax(logits_masked, dim=-1)
        w, ids = torch.topk(p, kk, dim=-1)
        if cfg.norm_topk:
            w = w / w.sum(dim=-1, keepdim=True)
        return w, ids

    def moe(self, x, W, layer, kept):
        """Loop-over-experts MoE block (as transformers does). Returns (out, record)."""
        cfg = self.cfg
        E = cfg.layer_E[layer]
        T, H = x.shape
        logits = F.linear(x, W["router"])                       # activation dtype
        lm = logits.to(self.cd)
        n_kept = E
        if kept is not None:
            mask = torch.ones(E, dtype=torch.bool)
            mask[kept] = False
            lm = lm.masked_fill(mask[None, :], float("-inf"))
            n_kept = len(kept)
        weights, ids = self.route(lm, layer, n_kept)
        w_act = weights.to(self.act)
        out = torch.zeros(T, H, dtype=self.act)
        norms = torch.zeros(ids.shape, dtype=self.cd)
        for e in range(E):  # ascending expert id == transformers' accumulation order
            tok, pos = torch.where(ids == e)
            if tok.numel() == 0:
                continue
            g, u, d = W["experts"][e]
            y = self.mlp(x[tok], g, u, d)
            norms[tok, pos] = y.to(self.cd).norm(dim=-1)
            out.index_add_(0, tok, (y * w_act[tok, pos, None]).to(self.act))
        if "shared" in W:  # qwen2_moe shared expert, gated by sigmoid(x . w)
            sh = self.mlp(x, *W["shared"])
            out = out + torch.sigmoid(F.linear(x, W["shared_gate"])) * sh
        rec = {"router_logits": logits.to(self.cd), "experts": ids.to(torch.int32),
               "weights": weights, "expert_out_norm": norms}
        return out, rec

    def layer_weights(self, i):
        cfg, f = self.cfg, self.cfg.f
        L = f"model.layers.{i}."
        W = {}
        for key, name in (("q", "q_proj"), ("k", "k_proj"), ("v", "v_proj"), ("o", "o_proj")):
            W[key] = self.w(L + f"self_attn.{name}.weight")
            if L + f"self_attn.{name}.bias" in self.t:
                W[key + "b"] = self.w(L + f"self_attn.{name}.bias")
        if f["qk"] != "none":
            W["qn"] = self.w(L + "self_attn.q_norm.weight")
            W["kn"] = self.w(L + "self_attn.k_norm.weight")
        W["n1"] = self.w(L + f["lnorms"][0] + ".weight")
        W["n2"] = self.w(L + f["lnorms"][1] + ".weight")
        g, u, d = f["proj"]
        if cfg.is_moe(i):
            W["router"] = self.w(L + f["router"] + ".weight")
            W["experts"] = []
            for e in range(cfg.layer_E[i]):
                P = L + f["experts"].format(e=e) + "."
                W["experts"].append((self.w(P + g + ".weight"), self.w(P + u + ".weight"),
                                     self.w(P + d + ".weight")))
            if cfg.family == "qwen2_moe":
                P = L + "mlp.shared_expert."
                W["shared"] = (self.w(P + "gate_proj.weight"), self.w(P + "up_proj.weight"),
                               self.w(P + "down_proj.weight"))
                W["shared_gate"] = self.w(L + "mlp.shared_expert_gate.weight")
        else:
            W["dense"] = (self.w(L + "mlp.gate_proj.weight"), self.w(L + "mlp.up_proj.weight"),
                          self.w(L + "mlp.down_proj.weight"))
        return W

    def ffn(self, x, W, i, kept):
        if "dense" in W:
            return self.mlp(x, *W["dense"]), None
        return self.moe(x, W, i, kept)

    @torch.no_grad()
    def forward(self, docs, plan=None):
        """docs: list of token-id lists. plan: None, a path, or a plan dict.
        Returns a list (per doc) of {"logits": [T, V], "layers": {l: record}}."""
        cfg = self.cfg
        kept = load_plan(plan, cfg)
        for d in docs:
            T = len(d)
            if T == 0:
                raise ConfigError("corpus: empty document")
            if max(d) >= cfg.vocab or min(d) < 0:
                raise ConfigError(f"corpus: token id out of range [0, {cfg.vocab})")
            if cfg.sliding_window is not None and cfg.sliding_window < T:
                raise ConfigError(f"sliding_window: window {cfg.sliding_window} < document length {T}")
            if cfg.max_pos is not None and T > int(cfg.max_pos):
                print(f"warning: document of {T} tokens exceeds max_position_embeddings {cfg.max_pos}",
                      file=sys.stderr)
        emb = self.w("model.embed_tokens.weight")
        hs = [emb[torch.tensor(d, dtype=torch.long)] for d in docs]
        tables = {}
        results = [{"layers": {}} for _ in docs]
        for i in range(cfg.n_layers):  # layer-major: each layer's weights converted once
            W = self.layer_weights(i)
            for j, x in enumerate(hs):
                T = x.shape[0]
                if T not in tables:
                    tables[T] = self.rope_tables(T)
                cos, sin = tables[T]
                if cfg.f["block"] == "post":  # flex_olmo: norm the sublayer output
                    x = x + self.rms(self.attention(x, W, cos, sin), W["n1"])
                    m, rec = self.ffn(x, W, i, kept[i])
                    x = x + self.rms(m, W["n2"])
                else:
                    x = x + self.attention(self.rms(x, W["n1"]), W, cos, sin)
                    m, rec = self.ffn(self.rms(x, W["n2"]), W, i, kept[i])
                    x = x + m
                hs[j] = x
                if rec is not None:
                    results[j]["layers"][i] = rec
            del W
        norm = self.w("model.norm.weight")
        head = emb if cfg.tie else self.w("lm_head.weight")
        for j, x in enumerate(hs):
            results[j]["logits"] = F.linear(self.rms(x, norm), head)
        return results


def read_corpus(path):
    docs, ids = [], []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            obj = json.loads(line)
            if "input_ids" not in obj:
                raise ConfigError(f"{path}:{n}: missing input_ids")
            docs.append([int(t) for t in obj["input_ids"]])
            ids.append(str(obj.get("id", len(ids))))
    return docs, ids


def results_to_tensors(results, dtype):
    out_dt = torch.float64 if dtype == "float64" else torch.float32
    tensors = {}
    for i, r in enumerate(results):
        tensors[f"doc.{i}"] = r["logits"].to(out_dt)
        for l, rec in r["layers"].items():
            p = f"doc.{i}.layer.{l}."
            tensors[p + "router_logits"] = rec["router_logits"].to(out_dt)
            tensors[p + "experts"] = rec["experts"].to(torch.int32)
            tensors[p + "weights"] = rec["weights"].to(out_dt)
            tensors[p + "expert_out_norm"] = rec["expert_out_norm"].to(out_dt)
    return tensors


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--keep", default=None, help="plan JSON with experts_kept_per_layer")
    ap.add_argument("--dtype", default="float64", choices=sorted(DTYPES))
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch default)")
    a = ap.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    try:
        model = Model.load(a.model, a.dtype)
        docs, doc_ids = read_corpus(a.corpus)
        results = model.forward(docs, a.keep)
    except (ConfigError, safetensors_io.SafetensorsError) as e:
        print(f"reference_forward: error: {e}", file=sys.stderr)
        return 2
    meta = {"model_type": model.cfg.family, "reference_dtype": a.dtype,
            "doc_ids": json.dumps(doc_ids), "keep_plan": a.keep or ""}
    safetensors_io.save_file(a.out, results_to_tensors(results, a.dtype), meta)
    print(f"wrote {a.out}: {len(docs)} docs, family {model.cfg.family}, dtype {a.dtype}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
