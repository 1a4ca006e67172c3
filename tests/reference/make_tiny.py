#!/usr/bin/python3
"""Write tiny random MoE checkpoints in the exact Hugging Face layout, for each family.

Each checkpoint directory holds config.json (real HF keys, `model_type`, `architectures`) and
model.safetensors (or two shards + model.safetensors.index.json). Used to self-test the PyTorch
reference and to cross-check moeslice's C++ reader and forward pass.

  /usr/bin/python3 tests/reference/make_tiny.py --out DIR --variant olmoe_gqa_clip [--dtype BF16]
      [--shards 2] [--seed 0] [--corpus DIR/corpus.jsonl]
  /usr/bin/python3 tests/reference/make_tiny.py --all OUTROOT   # every variant -> OUTROOT/<name>
  /usr/bin/python3 tests/reference/make_tiny.py --out DIR --config CONFIG.json [--mtp]  # that config
      as written (--mtp: with its num_nextn_predict_layers multi-token-prediction layers)
  /usr/bin/python3 tests/reference/make_tiny.py --list

Weights: embeddings N(0,1); projections N(0, 1/fan_in); RMSNorm weights 1 + N(0, 0.1); biases
N(0, 0.1); routers N(0, (2/sqrt(H))^2) so router logits have std ~2 and routing is decisive.
"""

import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402
from reference_forward import Config, expected_shapes  # noqa: E402

ARCH = {
    "olmoe": "OlmoeForCausalLM",
    "flex_olmo": "FlexOlmoForCausalLM",
    "emo": "EmoForCausalLM",
    "mixtral": "MixtralForCausalLM",
    "qwen2_moe": "Qwen2MoeForCausalLM",
    "qwen3_moe": "Qwen3MoeForCausalLM",
    "deepseek_v3": "DeepseekV3ForCausalLM",
    "glm4_moe": "Glm4MoeForCausalLM",
    "gpt_oss": "GptOssForCausalLM",
}

COMMON = dict(hidden_act="silu", attention_dropout=0.0, initializer_range=0.02, use_cache=True,
              rope_scaling=None, max_position_embeddings=256, pad_token_id=1, bos_token_id=None,
              eos_token_id=2, output_router_logits=False, router_aux_loss_coef=0.01)


def _cfg(model_type, **kw):
    c = dict(COMMON)
    c.update(model_type=model_type, architectures=[ARCH[model_type]],
             hidden_size=64, num_hidden_layers=3, num_attention_heads=4, vocab_size=128)
    c.update(kw)
    return c


# name -> (config dict, short description)
VARIANTS = {
    "olmoe": (_cfg("olmoe", intermediate_size=32, num_key_value_heads=4, num_experts=8,
                   num_experts_per_tok=2, norm_topk_prob=False, clip_qkv=None, attention_bias=False,
                   rms_norm_eps=1e-5, rope_theta=10000.0, tie_word_embeddings=False),
              "MHA, untied, no renorm, no clip"),
    "olmoe_gqa_clip": (_cfg("olmoe", intermediate_size=32, num_key_value_heads=2, num_experts=8,
                            num_experts_per_tok=3, norm_topk_prob=False, clip_qkv=0.8,
                            attention_bias=False, rms_norm_eps=1e-5, rope_theta=10000.0,
                            tie_word_embeddings=False),
                       "GQA, clip_qkv 0.8"),
    "olmoe_tied_norm_bias": (_cfg("olmoe", intermediate_size=32, num_key_value_heads=2, num_experts=8,
                                  num_experts_per_tok=2, norm_topk_prob=True, clip_qkv=None,
                                  attention_bias=True, rms_norm_eps=1e-5, rope_theta=10000.0,
                                  tie_word_embeddings=True),
                             "GQA, tied head, norm_topk_prob, attention biases"),
    "flex_olmo": (_cfg("flex_olmo", intermediate_size=32, num_key_value_heads=2, num_experts=6,
                       num_experts_per_tok=2, norm_topk_prob=False, attention_bias=False,
                       rms_norm_eps=1e-6, rope_theta=500000.0, tie_word_embeddings=False),
                  "post-norm, whole-vector qk norm, GQA"),
    "emo": (_cfg("emo", intermediate_size=32, num_key_value_heads=2, num_experts=9,
                 num_shared_experts=1, num_experts_per_tok=3, norm_topk_prob=False,
                 attention_bias=False, rms_norm_eps=1e-6, rope_theta=500000.0,
                 tie_word_embeddings=False),
            "8 routed + 1 shared (last), top-2 routed + shared, GQA"),
    "emo_mha_tied": (_cfg("emo", intermediate_size=32, num_key_value_heads=4, num_experts=9,
                          num_shared_experts=1, num_experts_per_tok=4, norm_topk_prob=False,
                          attention_bias=False, rms_norm_eps=1e-6, rope_theta=500000.0,
                          tie_word_embeddings=True),
                     "MHA, tied head, top-3 routed + shared"),
    "mixtral": (_cfg("mixtral", intermediate_size=32, num_key_value_heads=2, head_dim=16,
                     num_local_experts=8, num_experts_per_tok=2, rms_norm_eps=1e-5, rope_theta=1e6,
                     sliding_window=None, router_jitter_noise=0.0, tie_word_embeddings=False),
                "GQA, always renormalised"),
    "qwen2_moe": (_cfg("qwen2_moe", intermediate_size=48, moe_intermediate_size=16,
                       shared_expert_intermediate_size=40, num_key_value_heads=2, num_experts=8,
                       num_experts_per_tok=2, norm_topk_prob=False, decoder_sparse_step=1,
                       mlp_only_layers=[0], use_sliding_window=False, sliding_window=4096,
                       max_window_layers=3, rms_norm_eps=1e-6, rope_theta=1e6,
                       tie_word_embeddings=False),
                  "dense layer 0 via mlp_only_layers, shared expert, qkv biases"),
    "qwen2_moe_step2": (_cfg("qwen2_moe", num_hidden_layers=4, intermediate_size=48,
                             moe_intermediate_size=16, shared_expert_intermediate_size=24,
                             num_key_value_heads=4, num_experts=6, num_experts_per_tok=2,
                             norm_topk_prob=True, decoder_sparse_step=2, mlp_only_layers=[],
                             use_sliding_window=False, sliding_window=None, max_window_layers=4,
                             rms_norm_eps=1e-6, rope_theta=10000.0, tie_word_embeddings=True),
                        "decoder_sparse_step 2 (layers 1,3 sparse), tied, norm_topk_prob"),
    "qwen3_moe": (_cfg("qwen3_moe", intermediate_size=48, moe_intermediate_size=24, head_dim=24,
                       num_key_value_heads=2, num_experts=8, num_experts_per_tok=3,
                       norm_topk_prob=True, decoder_sparse_step=1, mlp_only_layers=[],
                       attention_bias=False, use_sliding_window=False, sliding_window=None,
                       max_window_layers=3, rms_norm_eps=1e-6, rope_theta=1e6,
                       tie_word_embeddings=False),
                  "GQA, head_dim 24 != H/heads, per-head qk norm, norm_topk_prob"),
    "qwen3_moe_bias": (_cfg("qwen3_moe", intermediate_size=48, moe_intermediate_size=24, head_dim=16,
                            num_key_value_heads=4, num_experts=8, num_experts_per_tok=2,
                            norm_topk_prob=False, decoder_sparse_step=1, mlp_only_layers=[2],
                            attention_bias=True, use_sliding_window=False, sliding_window=None,
                            max_window_layers=3, rms_norm_eps=1e-6, rope_theta=10000.0,
                            tie_word_embeddings=False),
                       "MHA, attention biases, no renorm, dense last layer"),
    "deepseek_v3": (_cfg("deepseek_v3", intermediate_size=48, moe_intermediate_size=16,
                         num_key_value_heads=4, q_lora_rank=32, kv_lora_rank=16,
                         qk_nope_head_dim=16, qk_rope_head_dim=8, v_head_dim=12,
                         n_routed_experts=8, num_experts_per_tok=3, n_group=4, topk_group=2,
                         n_shared_experts=1, first_k_dense_replace=1, moe_layer_freq=1,
                         norm_topk_prob=True, routed_scaling_factor=2.5, scoring_func="sigmoid",
                         topk_method="noaux_tc", rope_interleave=True, attention_bias=False,
                         rms_norm_eps=1e-6, rope_theta=10000.0, tie_word_embeddings=False),
                    "MLA with q_lora_rank, interleaved RoPE, 4 groups (2 kept), shared expert, dense layer 0"),
    "deepseek_v3_yarn": (_cfg("deepseek_v3", intermediate_size=48, moe_intermediate_size=16,
                              num_key_value_heads=4, q_lora_rank=None, kv_lora_rank=24,
                              qk_nope_head_dim=8, qk_rope_head_dim=16, v_head_dim=16,
                              n_routed_experts=6, num_experts_per_tok=2, n_group=1, topk_group=1,
                              n_shared_experts=2, first_k_dense_replace=0, moe_layer_freq=1,
                              norm_topk_prob=False, routed_scaling_factor=1.5,
                              scoring_func="sigmoid", topk_method="noaux_tc",
                              rope_interleave=False, attention_bias=False, rms_norm_eps=1e-5,
                              rope_theta=10000.0, tie_word_embeddings=True,
                              rope_scaling={"type": "yarn", "factor": 4.0,
                                            "original_max_position_embeddings": 32,
                                            "beta_fast": 32, "beta_slow": 1, "mscale": 1.0,
                                            "mscale_all_dim": 0.8}),
                         "MLA without q_lora_rank, YaRN (mscale != mscale_all_dim), no groups, 2 shared experts, tied"),
    "glm4_moe": (_cfg("glm4_moe", intermediate_size=48, moe_intermediate_size=16,
                      num_key_value_heads=2, head_dim=24, partial_rotary_factor=0.5,
                      attention_bias=True, use_qk_norm=True, n_routed_experts=8,
                      num_experts_per_tok=3, n_group=2, topk_group=1, n_shared_experts=1,
                      first_k_dense_replace=1, norm_topk_prob=True, routed_scaling_factor=2.5,
                      rms_norm_eps=1e-5, rope_theta=1e6, tie_word_embeddings=False),
                 "GQA, q/k/v biases, per-head qk norm, half rotary, 2 groups (1 kept), dense layer 0"),
    "glm4_moe_air": (_cfg("glm4_moe", intermediate_size=48, moe_intermediate_size=16,
                          num_key_value_heads=2, partial_rotary_factor=0.5, attention_bias=True,
                          use_qk_norm=False, n_routed_experts=6, num_experts_per_tok=2, n_group=1,
                          topk_group=1, n_shared_experts=1, first_k_dense_replace=0,
                          norm_topk_prob=False, routed_scaling_factor=1.0, rms_norm_eps=1e-5,
                          rope_theta=1e6, tie_word_embeddings=False),
                     "GLM-4.5-Air style: no qk norm, head_dim = H/heads, no groups, no dense layer"),
    "glm4_moe_yarn": (_cfg("glm4_moe", intermediate_size=48, moe_intermediate_size=16,
                           num_key_value_heads=2, head_dim=32, partial_rotary_factor=0.5,
                           attention_bias=True, use_qk_norm=False, n_routed_experts=8,
                           num_experts_per_tok=2, n_group=2, topk_group=1, n_shared_experts=1,
                           first_k_dense_replace=1, norm_topk_prob=True, routed_scaling_factor=1.5,
                           rms_norm_eps=1e-5, rope_theta=10000.0, tie_word_embeddings=False,
                           rope_scaling={"rope_type": "yarn", "factor": 4.0,
                                         "original_max_position_embeddings": 64,
                                         "beta_fast": 8.0, "beta_slow": 0.5,
                                         "mscale_all_dim": 1.0}),
                      "YaRN over the partial rotary dims (ramp inside them), mscale_all_dim that "
                      "leaves the softmax scale alone, 2 groups (1 kept), GQA, dense layer 0"),
    "gpt_oss": (_cfg("gpt_oss", num_hidden_layers=4, intermediate_size=32, head_dim=16,
                     num_key_value_heads=2, num_local_experts=8, num_experts_per_tok=3,
                     sliding_window=5, layer_types=None, attention_bias=True, swiglu_limit=7.0,
                     rms_norm_eps=1e-5, rope_theta=150000.0, tie_word_embeddings=False,
                     rope_scaling={"rope_type": "yarn", "factor": 8.0, "beta_fast": 32.0,
                                   "beta_slow": 1.0, "truncate": False,
                                   "original_max_position_embeddings": 32}),
                "sinks, sliding window 5 on even layers, YaRN (truncate false), GQA, fused experts"),
    "gpt_oss_window_types": (_cfg("gpt_oss", num_hidden_layers=3, intermediate_size=32,
                                  num_key_value_heads=4, num_local_experts=6, num_experts_per_tok=2,
                                  sliding_window=3,
                                  layer_types=["full_attention", "sliding_attention",
                                               "sliding_attention"],
                                  attention_bias=True, swiglu_limit=0.5, rms_norm_eps=1e-5,
                                  rope_theta=150000.0, tie_word_embeddings=True),
                             "layer_types listed, window 3, swiglu_limit 0.5 (clamps bite), MHA, tied"),
}

ST_DTYPES = {"F32": torch.float32, "BF16": torch.bfloat16, "F16": torch.float16, "F64": torch.float64}


def random_tensors(cfg_dict, seed=0):
    """name -> float32 tensor with the scales described in the module docstring."""
    cfg = Config(cfg_dict)
    gen = torch.Generator().manual_seed(seed)
    H = cfg.H
    out = {}
    for name, shape in sorted(expected_shapes(cfg).items()):
        z = torch.randn(shape, generator=gen, dtype=torch.float64)
        if name == "model.embed_tokens.weight":
            t = z
        elif name.endswith("norm.weight"):
            t = 1.0 + 0.1 * z
        elif name.endswith(".bias") or name.endswith("e_score_correction_bias"):
            t = 0.1 * z
        elif name.endswith("self_attn.sinks"):
            t = 0.5 * z  # non-zero: each head's softmax has a real sink
        elif name.endswith("mlp.gate.weight") or name.endswith("block_sparse_moe.gate.weight") \
                or name.endswith("mlp.router.weight"):
            t = z * (2.0 / H ** 0.5)
        else:
            t = z / shape[1] ** 0.5
        out[name] = t.float()
    return out


def quantize_mxfp4(w):
    """gpt-oss MXFP4 of fused experts w [E, in, out] (plain layout): blocks [E, out, in / 32, 16]
    U8 (two FP4 codes a byte, low nibble the even element) and scales [E, out, in / 32] U8
    (exponent + 127), nearest FP4 value per element under the smallest exponent that fits the
    block's largest magnitude."""
    import reference_gpt_oss
    lut = torch.tensor(reference_gpt_oss.FP4_VALUES[:8], dtype=torch.float64)
    E, n_in, n_out = w.shape
    rows = w.to(torch.float64).transpose(1, 2).reshape(E, n_out, n_in // 32, 32)
    top = rows.abs().amax(dim=-1).clamp(min=1e-30)
    exp = torch.ceil(torch.log2(top / 6.0)).clamp(-127, 127)
    scaled = rows / torch.pow(2.0, exp)[..., None]
    codes = (scaled.abs()[..., None] - lut).abs().argmin(dim=-1)
    codes = codes + 8 * ((scaled < 0) & (codes > 0)).to(torch.int64)
    packed = (codes[..., 0::2] | (codes[..., 1::2] << 4)).to(torch.uint8)
    return packed, (exp + 127).to(torch.uint8)


def mtp_tensors(cfg_dict, seed=0):
    """The multi-token-prediction layer(s) DeepSeek-V3 and GLM-4.5 ship after the decoder layers
    (num_nextn_predict_layers of them, layer index num_hidden_layers...): a whole decoder layer
    plus enorm, hnorm, eh_proj [H, 2H], shared_head.norm, shared_head.head [V, H] and its own
    embed_tokens [V, H], as in DeepSeek-V3's model.safetensors.index.json."""
    n_layers, mtp = cfg_dict["num_hidden_layers"], cfg_dict.get("num_nextn_predict_layers") or 0
    H, V = cfg_dict["hidden_size"], cfg_dict["vocab_size"]
    longer = dict(cfg_dict, num_hidden_layers=n_layers + mtp)
    gen = torch.Generator().manual_seed(seed + 1000)
    out = {}
    for name, t in random_tensors(longer, seed).items():
        if name.startswith("model.layers.") and int(name.split(".")[2]) >= n_layers:
            out[name] = t
    for i in range(n_layers, n_layers + mtp):
        p = f"model.layers.{i}."
        extra = {"enorm.weight": [H], "hnorm.weight": [H], "eh_proj.weight": [H, 2 * H],
                 "shared_head.norm.weight": [H], "shared_head.head.weight": [V, H],
                 "embed_tokens.weight": [V, H]}
        for name, shape in extra.items():
            z = torch.randn(shape, generator=gen, dtype=torch.float64)
            out[p + name] = (1.0 + 0.1 * z if name.endswith("norm.weight") else z / shape[-1] ** 0.5).float()
    return out


def write_checkpoint(out_dir, variant, dtype="F32", shards=1, seed=0, config_text=None,
                     mxfp4=False, mtp=False):
    """A variant's checkpoint, or with `config_text` (a config.json as written, copied byte for
    byte) random tensors in the layout that config describes."""
    if config_text is None:
        cfg = dict(VARIANTS[variant][0])
        cfg["torch_dtype"] = {"F32": "float32", "BF16": "bfloat16", "F16": "float16", "F64": "float64"}[dtype]
        config_text = json.dumps(cfg, indent=2, sort_keys=True)
    else:
        cfg = json.loads(config_text)
    os.makedirs(out_dir, exist_ok=True)
    tensors = random_tensors(cfg, seed)
    if mtp:
        tensors.update(mtp_tensors(cfg, seed))
    tensors = {n: t.to(ST_DTYPES[dtype]) for n, t in tensors.items()}
    if mxfp4:  # gpt_oss: fused experts as MXFP4 blocks and scales
        for name in [n for n in tensors if n.endswith(("experts.gate_up_proj", "experts.down_proj"))]:
            blocks, scales = quantize_mxfp4(tensors.pop(name))
            tensors[name + "_blocks"], tensors[name + "_scales"] = blocks, scales
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        f.write(config_text)
    for old in os.listdir(out_dir):
        if old.endswith(".safetensors") or old == "model.safetensors.index.json":
            os.remove(os.path.join(out_dir, old))
    if shards > 1:
        safetensors_io.save_sharded(out_dir, tensors, shards)
    else:
        safetensors_io.save_file(os.path.join(out_dir, "model.safetensors"), tensors)
    return cfg


def write_corpus(path, vocab, lengths=(1, 7, 23, 40), seed=1):
    gen = torch.Generator().manual_seed(seed)
    with open(path, "w") as f:
        for i, n in enumerate(lengths):
            ids = torch.randint(0, vocab, (n,), generator=gen).tolist()
            f.write(json.dumps({"id": f"doc{i}", "input_ids": ids}) + "\n")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out")
    ap.add_argument("--variant", choices=sorted(VARIANTS))
    ap.add_argument("--config", help="a config.json (kept as written) instead of --variant")
    ap.add_argument("--all", metavar="OUTROOT")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--dtype", default="F32", choices=sorted(ST_DTYPES))
    ap.add_argument("--shards", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--mxfp4", action="store_true",
                    help="gpt_oss: fused experts as MXFP4 blocks/scales (with --all: the gpt_oss variants only)")
    ap.add_argument("--corpus", help="also write a small JSONL corpus here")
    ap.add_argument("--mtp", action="store_true",
                    help="also write the config's num_nextn_predict_layers MTP layers")
    a = ap.parse_args(argv)
    if a.list:
        for n, (c, d) in sorted(VARIANTS.items()):
            print(f"{n:22s} {c['model_type']:10s} {d}")
        return 0
    if a.all:
        for n in sorted(VARIANTS):
            if a.mxfp4 and VARIANTS[n][0]["model_type"] != "gpt_oss":
                continue
            d = os.path.join(a.all, n)
            write_checkpoint(d, n, a.dtype, a.shards, a.seed, mxfp4=a.mxfp4)
            write_corpus(os.path.join(d, "corpus.jsonl"), VARIANTS[n][0]["vocab_size"])
            print(f"wrote {d}")
        return 0
    if not (a.out and (a.variant or a.config)) or (a.variant and a.config):
        ap.error("--out and one of --variant / --config (or --all / --list) required")
    config_text = open(a.config).read() if a.config else None
    cfg = write_checkpoint(a.out, a.variant, a.dtype, a.shards, a.seed, config_text, a.mxfp4,
                           a.mtp)
    if a.corpus:
        write_corpus(a.corpus, cfg["vocab_size"])
    print(f"wrote {a.out} ({a.variant or a.config}, {a.dtype}, {a.shards} file(s))")
    return 0


if __name__ == "__main__":
    sys.exit(main())
