#!/usr/bin/python3
"""Convert a tiny Hugging Face MoE checkpoint to GGUF the way llama.cpp's convert_hf_to_gguf.py does.

For the test suite's proof in llama.cpp itself (tests/cli/llama_parity.sh): olmoe, qwen3_moe,
qwen2_moe and mixtral (llama.cpp architecture `llama` with experts), glm4_moe (`glm4moe`),
deepseek_v3 / kimi_k2 (`deepseek2`) and gpt_oss (`gpt-oss`: its tensors, MXFP4 experts and keys as
conversion/gpt_oss.py writes them, gguf_gpt_oss.py). Uses gguf-py, llama.cpp's
own GGUF writer, which tests/llama/extract_gguf_py.sh takes out of the node-llama-cpp bundle at
test time (pass its directory with --gguf-py). Run with /usr/bin/python3 (torch + numpy).

  /usr/bin/python3 tests/reference/hf_to_gguf.py --gguf-py DIR --model HF_DIR --out FILE.gguf
      [--type f32|f16|q8_0|q6_k|q4_k|mxfp4] [--dequantized-out HF_DIR]

What follows convert_hf_to_gguf.py (llama.cpp v0.4.0 as bundled by node-llama-cpp 3.21.1):
- tensor names from gguf-py's TensorNameMap; experts stacked with the expert index outermost
  (`blk.N.ffn_{gate,up,down}_exps.weight`, ggml ne {n_embd, n_ff, n_expert} / {n_ff, n_embd,
  n_expert}), in expert id order;
- `llama` (Mixtral): q_proj and k_proj rows permuted for llama.cpp's RoPE layout (LlamaModel.permute);
- glm4moe / deepseek2 (Glm4MoeModel, DeepseekV2Model): `e_score_correction_bias` as
  `blk.N.exp_probs_b.bias`; deepseek2's kv_b_proj split into attn_k_b (each head's no-RoPE key
  rows, transposed: ggml ne {nope, kv_lora, heads}) and attn_v_b (ne {kv_lora, v, heads}), its
  multi-token-prediction layers skipped; glm4moe's written as `blk.{n_layers}.nextn.*` and a whole
  layer, counted in block_count; keys expert_group_count / expert_group_used_count,
  expert_gating_func (sigmoid), expert_shared_count, leading_dense_block_count,
  expert_weights_scale, expert_weights_norm (deepseek2: only when true), nextn_predict_layers
  (glm4moe), rope.dimension_count (glm4moe: head_dim * partial_rotary_factor; deepseek2:
  qk_rope_head_dim), and deepseek2's MLA as MQA: head_count_kv 1, q_lora_rank, kv_lora_rank,
  key_length kv_lora + rope, value_length kv_lora, key_length_mla, value_length_mla, vocab_size;
  YaRN as TextModel writes it (rope.scaling.type/factor/original_context_length/yarn_beta_fast/
  yarn_beta_slow) and, for deepseek2, yarn_log_multiplier 0.1 * mscale_all_dim;
- metadata: block_count, context_length, embedding_length, feed_forward_length, head_count(_kv),
  rope.freq_base, layer_norm_rms_epsilon (olmoe: always 1e-5, as the converter writes),
  expert_count, expert_used_count, key/value_length when the config has head_dim,
  expert_(shared_)feed_forward_length (qwen), vocab_size and rope.dimension_count (llama),
  general.file_type and general.quantization_version;
- tensor types: 1-D tensors, norms and routers (ffn_gate_inp, ffn_gate_inp_shexp) F32; other
  weights at --type, falling back to F16 where Q8_0 does not divide a row (as the converter).
  q6_k and q4_k are llama-quantize's job in llama.cpp; here a weight whose rows divide into 256
  is Q6_K (Q4_K), else Q8_0 (else F16), quantized by gguf_k_quants.py. mxfp4 is llama-quantize's MXFP4_MOE:
  the stacked expert weights MXFP4 (gguf-py's quantizer), the other weights Q8_0.
The vocabulary is llama.cpp's SentencePiece kind (`llama`) with byte tokens only: <unk>, <s>,
</s>, <0x00>..<0xFF> (ids 0..258), then unused tokens up to the config's vocab_size (>= 259).
With --tokenizer TOKENIZER_JSON --tokenizer-pre NAME it is instead that byte-level BPE tokenizer
as the converter writes one (`gpt2`): the tokens by id, the merges, token types (added tokens
CONTROL when special, USER_DEFINED otherwise, NORMAL else; `[PAD{id}]` UNUSED up to vocab_size),
`tokenizer.ggml.pre` NAME and the config's bos/eos ids.

--dequantized-out writes the weights the GGUF holds, read back with gguf-py and dequantized,
as an F32 Hugging Face checkpoint (config.json copied): what llama.cpp computes with, for
`moeslice logits` to compare against.

Configs llama.cpp cannot express are refused (exit 2) naming the key: a renormalisation choice
the architecture hard-codes (olmoe/qwen2moe never renormalise top-k, qwen3moe/llama always do),
dense layers, rope_scaling, biases the llama.cpp graph does not load, other activations; for
glm4moe/deepseek2 a norm_topk_prob the converter would not write (llama.cpp then does not
renormalise), expert groups llama.cpp asserts against (topk_group must be below n_group),
moe_layer_freq other than 1, no shared expert, and (deepseek2) no q_lora_rank (llama.cpp's loader
requires attention.q_lora_rank), attention_bias, a scoring_func other than sigmoid; YaRN forms
llama.cpp does not read (attention_factor, extrapolation_factor; glm4moe: mscale or
mscale_all_dim; deepseek2: mscale other than mscale_all_dim, or no mscale_all_dim).
"""

import argparse
import json
import os
import shutil
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from gguf_files import exit_code, import_gguf, write_atomically  # noqa: E402
import gguf_gpt_oss  # noqa: E402
from gguf_k_quants import quantize_q4_k, quantize_q6_k  # noqa: E402
from safetensors_io import load_checkpoint, save_file  # noqa: E402

gguf = None  # gguf-py, imported in main() from --gguf-py

ARCH = {"olmoe": "olmoe", "qwen2_moe": "qwen2moe", "qwen3_moe": "qwen3moe", "mixtral": "llama",
        "glm4_moe": "glm4moe", "deepseek_v3": "deepseek2", "kimi_k2": "deepseek2",
        "gpt_oss": "gpt-oss"}
# The families whose routers are DeepSeek's sigmoid group routers (exp_probs_b, expert groups).
GROUP_ROUTED = ("glm4_moe", "deepseek_v3", "kimi_k2")
FILE_TYPES = {"f32": "ALL_F32", "f16": "MOSTLY_F16", "q8_0": "MOSTLY_Q8_0", "q6_k": "MOSTLY_Q6_K",
              "q4_k": "MOSTLY_Q4_K_S", "mxfp4": "MOSTLY_MXFP4_MOE"}
N_SPECIAL = 3  # <unk>, <s>, </s>
N_BYTES = 256


class ConfigError(Exception):
    pass


def check_config(cfg):
    """Refuses configs whose meaning llama.cpp's graph for the architecture cannot express."""
    family = cfg.get("model_type")
    if family not in ARCH:
        raise ConfigError(f"'model_type' is {family!r}, expected one of {sorted(ARCH)}")

    def refuse_unless(key, ok, expected):
        if not ok:
            raise ConfigError(f"'{key}' is {json.dumps(cfg.get(key))}, expected {expected} "
                              f"(llama.cpp's {ARCH[family]} graph)")

    refuse_unless("hidden_act", cfg.get("hidden_act", "silu") == "silu", '"silu"')
    if family == "gpt_oss":
        check_gpt_oss_config(cfg, refuse_unless)
    else:
        yarn = family in GROUP_ROUTED and is_yarn(cfg.get("rope_scaling"))
        refuse_unless("rope_scaling", cfg.get("rope_scaling") is None or yarn,
                      "null" + (" or YaRN" if family in GROUP_ROUTED else ""))
        if yarn:
            check_yarn(family, cfg["rope_scaling"])
    refuse_unless("tie_word_embeddings", not cfg.get("tie_word_embeddings", False), "false")
    refuse_unless("vocab_size", cfg["vocab_size"] >= N_SPECIAL + N_BYTES,
                  f"at least {N_SPECIAL + N_BYTES} (byte vocabulary)")
    if family in ("olmoe", "qwen2_moe"):
        refuse_unless("norm_topk_prob", not cfg.get("norm_topk_prob", False), "false")
    if family == "qwen3_moe":
        refuse_unless("norm_topk_prob", cfg.get("norm_topk_prob", True), "true")
    if family == "olmoe":
        refuse_unless("clip_qkv", cfg.get("clip_qkv") is None, "null")
        refuse_unless("rms_norm_eps", cfg.get("rms_norm_eps", 1e-5) == 1e-5, "1e-05 (the converter writes 1e-5)")
        # llama.cpp's olmoe loads attn_k_norm as {n_embd}: grouped-query attention does not load.
        refuse_unless("num_key_value_heads", cfg.get("num_key_value_heads") == cfg.get("num_attention_heads"),
                      f"{cfg.get('num_attention_heads')} (num_attention_heads: attn_k_norm is {{n_embd}})")
    if family in ("olmoe", "qwen3_moe", "mixtral"):
        refuse_unless("attention_bias", not cfg.get("attention_bias", False), "false")
    if family in GROUP_ROUTED:
        check_group_routed(cfg, refuse_unless)
    if family in ("qwen2_moe", "qwen3_moe"):
        refuse_unless("mlp_only_layers", not cfg.get("mlp_only_layers"), "[] (no dense layers)")
        refuse_unless("decoder_sparse_step", cfg.get("decoder_sparse_step", 1) == 1, "1 (no dense layers)")
        refuse_unless("use_sliding_window", not cfg.get("use_sliding_window", False), "false")


def is_yarn(scaling):
    return isinstance(scaling, dict) and scaling.get("rope_type", scaling.get("type")) == "yarn"


def check_yarn(family, scaling):
    """YaRN in llama.cpp: the keys TextModel writes; deepseek2 with mscale taken equal to
    mscale_all_dim (llama_context's yarn_attn_factor; the converter writes no mscale), glm4moe with
    neither (its converter writes no yarn_log_multiplier: YaRN's default attention factor)."""
    for key in ("attention_factor", "attn_factor", "extrapolation_factor"):
        if scaling.get(key) is not None:
            raise ConfigError(f"'rope_scaling.{key}' is {scaling[key]}, expected absent ({ARCH[family]} in llama.cpp)")
    if family == "glm4_moe":
        for key in ("mscale", "mscale_all_dim"):
            if scaling.get(key) is not None:
                raise ConfigError(f"'rope_scaling.{key}' is {scaling[key]}, expected absent (llama.cpp's glm4moe "
                                  "scales by YaRN's default attention factor)")
        return
    if scaling.get("mscale", 1.0) != scaling.get("mscale_all_dim", 1.0):
        raise ConfigError(f"'rope_scaling.mscale' is {scaling.get('mscale')}, expected mscale_all_dim "
                          f"{scaling.get('mscale_all_dim')} (llama.cpp's deepseek2 assumes they are equal)")
    if not scaling.get("mscale_all_dim"):
        raise ConfigError("'rope_scaling.mscale_all_dim' is absent or 0, expected a value (llama.cpp's "
                          "deepseek2 then scales attention by YaRN's default mscale, transformers does not)")


def check_group_routed(cfg, refuse_unless):
    """glm4moe and deepseek2: what llama.cpp's graphs and loader compute of a sigmoid group router,
    shared experts, first dense layers and (deepseek2) MLA."""
    family = cfg["model_type"]
    experts = cfg["n_routed_experts"]
    n_group, topk_group = cfg.get("n_group") or 1, cfg.get("topk_group") or 1
    # The converter writes expert_weights_norm only when the config has norm_topk_prob (deepseek2:
    # only when true); llama.cpp's default is false where the modeling code's is true.
    refuse_unless("norm_topk_prob", isinstance(cfg.get("norm_topk_prob"), bool)
                  and (family == "glm4_moe" or cfg["norm_topk_prob"]),
                  "true" if family != "glm4_moe" else "true or false")
    if n_group > 1:
        # llama.cpp asserts n_expert % n_group == 0 and 0 < topk_group < n_group.
        refuse_unless("n_group", experts % n_group == 0, f"a divisor of n_routed_experts {experts}")
        refuse_unless("topk_group", 0 < topk_group < n_group, f"between 1 and n_group - 1 = {n_group - 1} "
                      "(llama.cpp asserts expert_group_used_count < expert_group_count)")
    # llama.cpp's loaders read expert_shared_count (required) and load the shared experts.
    refuse_unless("n_shared_experts", (cfg.get("n_shared_experts") or 0) >= 1, "at least 1")
    refuse_unless("moe_layer_freq", cfg.get("moe_layer_freq", 1) == 1, "1 (llama.cpp: dense layers lead only)")
    if family == "glm4_moe":
        refuse_unless("scoring_func", cfg.get("scoring_func", "sigmoid") == "sigmoid", '"sigmoid"')
    else:
        refuse_unless("scoring_func", cfg.get("scoring_func") == "sigmoid", '"sigmoid"')
        refuse_unless("topk_method", cfg.get("topk_method", "noaux_tc") == "noaux_tc", '"noaux_tc"')
        refuse_unless("attention_bias", not cfg.get("attention_bias", False), "false")
        # Without q_lora_rank llama.cpp's deepseek2 loader still reads attention.q_lora_rank
        # (unless the model has 26 or 27 layers, its "lite" models), which the converter omits.
        refuse_unless("q_lora_rank", cfg.get("q_lora_rank") is not None,
                      "a rank (llama.cpp's deepseek2 requires attention.q_lora_rank)")
        refuse_unless("rope_interleave", cfg.get("rope_interleave", True), "true")


def gpt_oss_layer_types(n_layers):
    """What llama.cpp's openai-moe infers without a sliding_window_pattern key: period 2, sliding
    attention on the even layers (gpt-oss's layer_types default)."""
    return ["sliding_attention" if i % 2 == 0 else "full_attention" for i in range(n_layers)]


def check_gpt_oss_config(cfg, refuse_unless):
    """llama.cpp's gpt-oss graph: its own layer pattern, swiglu limit 7, YaRN or no scaling."""
    n = cfg["num_hidden_layers"]
    types = cfg.get("layer_types") or gpt_oss_layer_types(n)
    refuse_unless("layer_types", types == gpt_oss_layer_types(n),
                  "sliding_attention on the even layers, full_attention on the odd ones")
    refuse_unless("swiglu_limit", cfg.get("swiglu_limit", 7.0) == 7.0, "7.0 (llama.cpp's constant)")
    refuse_unless("sliding_window", isinstance(cfg.get("sliding_window"), int), "an integer")
    scaling = cfg.get("rope_scaling")
    refuse_unless("rope_scaling", scaling is None or (
        scaling.get("rope_type", scaling.get("type")) == "yarn" and scaling.get("factor") is not None
        and "attention_factor" not in scaling and "extrapolation_factor" not in scaling),
        "null or yarn with a factor (no attention_factor, extrapolation_factor)")


def permute(w, n_head):
    """convert_hf_to_gguf's LlamaModel.permute: rotate-half pairs -> llama.cpp's adjacent pairs."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def unpermute(w, n_head):
    return w.reshape(n_head, w.shape[0] // n_head // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def expert_names(family, layer, num_experts):
    """The per-expert HF names of one layer and the merged name the converter maps, per weight."""
    if family == "mixtral":
        prefix = f"model.layers.{layer}.block_sparse_moe.experts"
        return [([f"{prefix}.{e}.{w}.weight" for e in range(num_experts)],
                 f"layers.{layer}.feed_forward.experts.{w}.weight") for w in ("w1", "w2", "w3")]
    prefix = f"model.layers.{layer}.mlp.experts"
    return [([f"{prefix}.{e}.{w}.weight" for e in range(num_experts)], f"{prefix}.{w}.weight")
            for w in ("down_proj", "gate_proj", "up_proj")]


def block_count(cfg):
    """GGUF blocks: glm4moe's converter counts the multi-token-prediction layers it writes as blocks
    (nextn_predict_layers of them after the decoder layers); deepseek2's skips them."""
    if cfg["model_type"] == "glm4_moe":
        return cfg["num_hidden_layers"] + (cfg.get("num_nextn_predict_layers") or 0)
    return cfg["num_hidden_layers"]


def mapped_name(family, name):
    """The HF name as the converter hands it to the tensor map (e_score_correction_bias is
    renamed e_score_correction.bias)."""
    if name.endswith("e_score_correction_bias"):
        return name.replace("e_score_correction_bias", "e_score_correction.bias")
    return name


def plan_tensors(cfg, names):
    """[(gguf name, [hf names], stacked, transform)] in the converter's order; the hf names of a
    stacked expert tensor are in expert id order (the stack's outermost axis). transform is None,
    ("permute", heads) (llama's Q/K), or ("k_b", cfg) / ("v_b", cfg) (deepseek2's kv_b_proj, split
    into the no-RoPE key part, per head transposed, and the value part)."""
    family = cfg["model_type"]
    n_layers = cfg["num_hidden_layers"]
    if family == "deepseek_v3" or family == "kimi_k2":
        # The converter skips the multi-token-prediction layers of deepseek2.
        names = {n for n in names if layer_of(n) < n_layers}
    num_experts = cfg.get("num_local_experts", cfg.get("num_experts", cfg.get("n_routed_experts")))
    tensor_map = gguf.get_tensor_name_map(arch_enum(family), block_count(cfg))
    stacked = {}
    for layer in range(block_count(cfg)):
        for hf_names, merged in expert_names(family, layer, num_experts):
            if hf_names[0] in names:
                stacked[hf_names[0]] = (hf_names, merged)
    in_stack = {n for hf_names, _ in stacked.values() for n in hf_names}
    plan = []
    for name in sorted(names, key=tensor_order):
        if name in in_stack and name not in stacked:
            continue
        hf_names, mapped = stacked.get(name, ([name], mapped_name(family, name)))
        missing = [n for n in hf_names if n not in names]
        if missing:
            raise ConfigError(f"tensor '{missing[0]}' is missing (the config has {num_experts} experts)")
        if name.endswith("kv_b_proj.weight"):
            for part in ("k_b", "v_b"):
                new_name = tensor_map.get_name(name.replace("kv_b_proj", part + "_proj"), try_suffixes=(".weight",))
                plan.append((new_name, hf_names, False, (part, cfg)))
            continue
        new_name = tensor_map.get_name(mapped, try_suffixes=(".weight", ".bias"))
        if new_name is None:
            raise ConfigError(f"tensor '{name}' has no GGUF name for architecture {ARCH[family]}")
        transform = None
        if family == "mixtral" and name.endswith("q_proj.weight"):
            transform = ("permute", cfg["num_attention_heads"])
        if family == "mixtral" and name.endswith("k_proj.weight"):
            transform = ("permute", cfg["num_key_value_heads"])
        plan.append((new_name, hf_names, name in stacked, transform))
    return plan


def layer_of(name):
    parts = name.split(".")
    return next((int(p) for p in parts if p.isdecimal()), -1)


def split_kv_b(data, part, cfg):
    """convert_hf_to_gguf's DeepseekV2Model: kv_b_proj [heads * (nope + v), kv_lora] into
    attn_k_b [heads, kv_lora, nope] (each head's key part transposed) and attn_v_b
    [heads, v, kv_lora]."""
    heads, nope, v = cfg["num_attention_heads"], cfg["qk_nope_head_dim"], cfg["v_head_dim"]
    kv_b = data.reshape(heads, nope + v, data.shape[-1])
    if part == "k_b":
        return np.ascontiguousarray(kv_b[:, :nope, :].transpose(0, 2, 1))
    return np.ascontiguousarray(kv_b[:, nope:, :])


def join_kv_b(k_b, v_b):
    """split_kv_b undone: kv_b_proj from attn_k_b and attn_v_b."""
    joined = np.concatenate([k_b.transpose(0, 2, 1), v_b], axis=1)
    return joined.reshape(-1, joined.shape[-1])


def tensor_order(name):
    """Layer by layer in HF order, as safetensors files list them (the GGUF's tensor order)."""
    return (layer_of(name), name)


def arch_enum(family):
    return {"olmoe": gguf.MODEL_ARCH.OLMOE, "qwen2_moe": gguf.MODEL_ARCH.QWEN2MOE,
            "qwen3_moe": gguf.MODEL_ARCH.QWEN3MOE, "mixtral": gguf.MODEL_ARCH.LLAMA,
            "glm4_moe": gguf.MODEL_ARCH.GLM4_MOE, "deepseek_v3": gguf.MODEL_ARCH.DEEPSEEK2,
            "kimi_k2": gguf.MODEL_ARCH.DEEPSEEK2, "gpt_oss": gguf.MODEL_ARCH.GPT_OSS}[family]


def tensor_type(new_name, data, out_type):
    """The ggml type of one tensor, by the converter's rules (and llama-quantize's fallback)."""
    q = gguf.GGMLQuantizationType
    keep_f32 = (data.ndim <= 1 or new_name.endswith("_norm.weight")
                or ".ffn_gate_inp." in new_name or ".ffn_gate_inp_shexp." in new_name
                or not new_name.endswith(".weight"))
    if keep_f32 or out_type == "f32":
        return q.F32
    if out_type == "f16":
        return q.F16
    row = data.shape[-1]
    if out_type in ("q6_k", "q4_k") and row % 256 == 0:
        return q[out_type.upper()]
    if out_type == "mxfp4" and "_exps." in new_name and row % 32 == 0:
        return q.MXFP4
    return q.Q8_0 if row % 32 == 0 else q.F16


def encode(data, qtype):
    if qtype == gguf.GGMLQuantizationType.Q6_K:
        return quantize_q6_k(data)
    if qtype == gguf.GGMLQuantizationType.Q4_K:
        return quantize_q4_k(data)
    return gguf.quants.quantize(data, qtype)


def add_vocabulary(writer, vocab_size):
    tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(N_BYTES)]
    types = [gguf.TokenType.UNKNOWN, gguf.TokenType.CONTROL, gguf.TokenType.CONTROL]
    types += [gguf.TokenType.BYTE] * N_BYTES
    for i in range(len(tokens), vocab_size):
        tokens.append(f"<unused{i}>")
        types.append(gguf.TokenType.UNUSED)
    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens)
    writer.add_token_scores([0.0] * len(tokens))
    writer.add_token_types(types)
    writer.add_unk_token_id(0)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_add_bos_token(False)
    writer.add_add_eos_token(False)


def add_bpe_vocabulary(writer, cfg, tokenizer_json, pre):
    tok = json.load(open(tokenizer_json, encoding="utf-8"))
    model = tok["model"]
    if model.get("type", "BPE") != "BPE":
        raise ConfigError(f"{tokenizer_json}: model type {model.get('type')} is not BPE")
    by_id = {i: t for t, i in model["vocab"].items()}
    types = {i: gguf.TokenType.NORMAL for i in by_id}
    for added in tok.get("added_tokens", []):
        by_id[added["id"]] = added["content"]
        types[added["id"]] = gguf.TokenType.CONTROL if added.get("special") else gguf.TokenType.USER_DEFINED
    size = max(cfg["vocab_size"], max(by_id) + 1)
    tokens = [by_id.get(i, f"[PAD{i}]") for i in range(size)]
    token_types = [types.get(i, gguf.TokenType.UNUSED) for i in range(size)]
    merges = [m if isinstance(m, str) else " ".join(m) for m in model["merges"]]
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(pre)
    writer.add_token_list(tokens)
    writer.add_token_types(token_types)
    writer.add_token_merges(merges)
    if cfg.get("bos_token_id") is not None:
        writer.add_bos_token_id(cfg["bos_token_id"])
    if cfg.get("eos_token_id") is not None:
        writer.add_eos_token_id(cfg["eos_token_id"])
    writer.add_add_bos_token(False)


def add_hparams(writer, cfg, out_type, name):
    family = cfg["model_type"]
    writer.add_type(gguf.GGUFType.MODEL)
    writer.add_name(name)
    writer.add_block_count(block_count(cfg))
    writer.add_context_length(cfg["max_position_embeddings"])
    writer.add_embedding_length(cfg["hidden_size"])
    writer.add_feed_forward_length(cfg["intermediate_size"])
    writer.add_head_count(cfg["num_attention_heads"])
    # deepseek2: MLA is written as MQA (one key/value head of kv_lora_rank + rope dimensions).
    writer.add_head_count_kv(1 if ARCH[family] == "deepseek2" else cfg["num_key_value_heads"])
    if family == "gpt_oss" and cfg.get("rope_scaling") is not None:
        # TextModel.set_gguf_parameters' YaRN keys (after the head counts, before the RoPE base).
        add_yarn(writer, cfg["rope_scaling"], log_mul=False)
    writer.add_rope_freq_base(cfg["rope_theta"])
    writer.add_layer_norm_rms_eps(1e-5 if family == "olmoe" else cfg["rms_norm_eps"])
    writer.add_expert_count(cfg.get("num_local_experts", cfg.get("num_experts", cfg.get("n_routed_experts"))))
    writer.add_expert_used_count(cfg["num_experts_per_tok"])
    if family in GROUP_ROUTED:
        add_group_routed_hparams(writer, cfg)
    if cfg.get("head_dim") is not None:
        writer.add_key_length(cfg["head_dim"])
        writer.add_value_length(cfg["head_dim"])
    if family == "gpt_oss":  # the base converter's keys end with the file type, then gpt-oss's own
        writer.add_file_type(gguf.LlamaFileType[FILE_TYPES[out_type]])
        gguf_gpt_oss.add_arch_hparams(writer, cfg)
        writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
        return
    if family in ("qwen2_moe", "qwen3_moe"):
        writer.add_expert_feed_forward_length(cfg["moe_intermediate_size"])
        if cfg.get("shared_expert_intermediate_size") is not None:
            writer.add_expert_shared_feed_forward_length(cfg["shared_expert_intermediate_size"])
    if family == "mixtral":
        writer.add_vocab_size(cfg["vocab_size"])
        writer.add_rope_dimension_count(cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"])
    writer.add_file_type(gguf.LlamaFileType[FILE_TYPES[out_type]])
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)


def add_group_routed_hparams(writer, cfg):
    """What Glm4MoeModel and DeepseekV2Model (and TextModel before them) write beyond the common
    keys: expert groups, the sigmoid gating function, shared experts, leading dense layers, the
    routed scaling and renormalisation, partial rotary (glm4moe) and MLA's ranks (deepseek2)."""
    family = cfg["model_type"]
    if cfg.get("n_group") is not None:
        writer.add_expert_group_count(cfg["n_group"])
    if cfg.get("topk_group") is not None:
        writer.add_expert_group_used_count(cfg["topk_group"])
    writer.add_expert_gating_func(gguf.ExpertGatingFuncType.SIGMOID)
    writer.add_expert_feed_forward_length(cfg["moe_intermediate_size"])
    writer.add_leading_dense_block_count(cfg.get("first_k_dense_replace") or 0)
    if cfg.get("routed_scaling_factor") is not None:
        writer.add_expert_weights_scale(cfg["routed_scaling_factor"])
    if cfg.get("norm_topk_prob"):
        writer.add_expert_weights_norm(True)
    elif family == "glm4_moe" and cfg.get("norm_topk_prob") is not None:
        writer.add_expert_weights_norm(False)
    if family == "glm4_moe":
        head_dim = cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]
        writer.add_rope_dimension_count(int(head_dim * cfg.get("partial_rotary_factor", 0.5)))
        if cfg.get("n_shared_experts") is not None:
            writer.add_expert_shared_count(cfg["n_shared_experts"])
        if cfg.get("num_nextn_predict_layers") is not None:
            writer.add_nextn_predict_layers(cfg["num_nextn_predict_layers"])
        if is_yarn(cfg.get("rope_scaling")):
            add_yarn(writer, cfg["rope_scaling"], log_mul=False)
        return
    kv_lora, rope = cfg["kv_lora_rank"], cfg["qk_rope_head_dim"]
    writer.add_vocab_size(cfg["vocab_size"])
    writer.add_q_lora_rank(cfg["q_lora_rank"])
    writer.add_kv_lora_rank(kv_lora)
    writer.add_key_length(kv_lora + rope)
    writer.add_value_length(kv_lora)
    writer.add_key_length_mla(cfg["qk_nope_head_dim"] + rope)
    writer.add_value_length_mla(cfg["v_head_dim"])
    writer.add_expert_shared_count(cfg.get("n_shared_experts") or 0)
    writer.add_rope_dimension_count(rope)
    if is_yarn(cfg.get("rope_scaling")):
        add_yarn(writer, cfg["rope_scaling"], log_mul=True)


def add_yarn(writer, scaling, log_mul):
    """TextModel's YaRN keys, then (deepseek2) DeepseekV2Model's yarn_log_multiplier, 0.1 *
    mscale_all_dim."""
    writer.add_rope_scaling_type(gguf.RopeScalingType.YARN)
    writer.add_rope_scaling_factor(scaling["factor"])
    writer.add_rope_scaling_orig_ctx_len(scaling["original_max_position_embeddings"])
    if scaling.get("beta_fast") is not None:
        writer.add_rope_scaling_yarn_beta_fast(scaling["beta_fast"])
    if scaling.get("beta_slow") is not None:
        writer.add_rope_scaling_yarn_beta_slow(scaling["beta_slow"])
    if log_mul:
        writer.add_rope_scaling_yarn_log_mul(0.1 * scaling["mscale_all_dim"])


def convert(model_dir, out, out_type, tokenizer_json=None, tokenizer_pre=None):
    cfg = json.load(open(os.path.join(model_dir, "config.json")))
    check_config(cfg)
    tensors = load_checkpoint(model_dir)
    plan = None if cfg["model_type"] == "gpt_oss" else plan_tensors(cfg, set(tensors))
    writer = gguf.GGUFWriter(None, ARCH[cfg["model_type"]])
    add_hparams(writer, cfg, out_type, os.path.basename(os.path.normpath(model_dir)))
    if tokenizer_json:
        add_bpe_vocabulary(writer, cfg, tokenizer_json, tokenizer_pre)
    else:
        add_vocabulary(writer, cfg["vocab_size"])
    if plan is None:  # gpt-oss: the converter's own tensor plan, MXFP4 experts repacked
        tensor_map = gguf.get_tensor_name_map(arch_enum("gpt_oss"), cfg["num_hidden_layers"])
        try:
            gpt_oss_tensors = gguf_gpt_oss.plan(cfg, tensors, tensor_map)
        except KeyError as e:
            raise ConfigError(f"tensor {e} has no GGUF name for architecture gpt-oss") from None
        for new_name, data, raw in gpt_oss_tensors:
            if raw:
                writer.add_tensor(new_name, data, raw_dtype=gguf.GGMLQuantizationType.MXFP4)
            else:
                qtype = tensor_type(new_name, data, out_type)
                writer.add_tensor(new_name, encode(data, qtype), raw_dtype=qtype)
    for new_name, hf_names, stacked, transform in plan or []:
        parts = [tensors[n].to(torch.float32) for n in hf_names]
        data = (torch.stack(parts, dim=0) if stacked else parts[0]).numpy()
        if transform and transform[0] == "permute":
            data = permute(data, transform[1])
        elif transform:
            data = split_kv_b(data, *transform)
        qtype = tensor_type(new_name, data, out_type)
        writer.add_tensor(new_name, encode(np.ascontiguousarray(data), qtype), raw_dtype=qtype)

    def write(path):
        writer.write_header_to_file(path=path)
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()

    write_atomically(out, write)
    return cfg, plan


def write_dequantized(gguf_file, cfg, plan, model_dir, out_dir):
    """The GGUF's weights, dequantized and mapped back to HF names, as an F32 checkpoint."""
    reader = gguf.GGUFReader(gguf_file)
    by_name = {t.name: t for t in reader.tensors}
    if cfg["model_type"] == "gpt_oss":
        def dequantize(t):
            data = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32)
            return data.reshape([int(n) for n in reversed(t.shape)])
        os.makedirs(out_dir)
        save_file(os.path.join(out_dir, "model.safetensors"), gguf_gpt_oss.hf_tensors(by_name, dequantize))
        with open(os.path.join(out_dir, "config.json"), "w") as f:
            json.dump(gguf_gpt_oss.dequantized_config(cfg), f, indent=2)
        return
    hf = {}
    kv_b_parts = {}
    for new_name, hf_names, stacked, transform in plan:
        t = by_name[new_name]
        data = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32)
        data = data.reshape([int(n) for n in reversed(t.shape)]) if data.ndim else data
        if transform and transform[0] == "permute":
            data = unpermute(data, transform[1])
        elif transform:
            kv_b_parts.setdefault(hf_names[0], {})[transform[0]] = data
            if len(kv_b_parts[hf_names[0]]) < 2:
                continue
            data = join_kv_b(kv_b_parts[hf_names[0]]["k_b"], kv_b_parts[hf_names[0]]["v_b"])
        parts = list(data) if stacked else [data]
        for name, part in zip(hf_names, parts):
            hf[name] = torch.from_numpy(np.ascontiguousarray(part))
    os.makedirs(out_dir)
    save_file(os.path.join(out_dir, "model.safetensors"), hf)
    shutil.copy(os.path.join(model_dir, "config.json"), os.path.join(out_dir, "config.json"))


def main(argv=None):
    global gguf
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--gguf-py", required=True, help="gguf-py directory (tests/llama/extract_gguf_py.sh)")
    ap.add_argument("--model", required=True, help="Hugging Face checkpoint directory")
    ap.add_argument("--out", required=True, help="output .gguf file")
    ap.add_argument("--type", default="f32", choices=sorted(FILE_TYPES))
    ap.add_argument("--dequantized-out", help="also write the GGUF's weights as an F32 HF checkpoint here")
    ap.add_argument("--tokenizer", help="a byte-level BPE tokenizer.json to write as the GGUF's vocabulary")
    ap.add_argument("--tokenizer-pre", default="default", help="tokenizer.ggml.pre for --tokenizer")
    args = ap.parse_args(argv)
    gguf = import_gguf(args.gguf_py)

    def run():
        try:
            cfg, plan = convert(args.model, args.out, args.type, args.tokenizer, args.tokenizer_pre)
        except ConfigError as e:
            raise ConfigError(f"{os.path.join(args.model, 'config.json')}: {e}") from None
        if args.dequantized_out:
            write_dequantized(args.out, cfg, plan, args.model, args.dequantized_out)

    return exit_code("hf_to_gguf", run, ConfigError)


if __name__ == "__main__":
    sys.exit(main())
