"""gpt-oss to GGUF the way llama.cpp's converter does it (conversion/gpt_oss.py, class GptOssModel),
for hf_to_gguf.py; and back (--dequantized-out).

- Experts: the fused `gate_up_proj` [E, H, 2I] (x @ W, gate and up interleaved column by column)
  becomes `ffn_gate_exps.weight` and `ffn_up_exps.weight` [E, I, H] (transposed, even and odd
  rows), `down_proj` [E, I, H] becomes `ffn_down_exps.weight` [E, H, I]; `gate_up_proj_bias`
  splits into `ffn_gate_exps.bias` and `ffn_up_exps.bias` [E, I] the same way, `down_proj_bias`
  is `ffn_down_exps.bias`.
- MXFP4 experts (`*_blocks` [E, rows, G, 16] with elements 2i and 2i + 1 in the low and high nibble
  of byte i, `*_scales` [E, rows, G]) stay MXFP4: repacked into ggml's block_mxfp4 (the exponent
  byte, then element j in the low and j + 16 in the high nibble of byte j), the converter's
  transform_nibble_layout verbatim; gate and up are the even and odd rows. llama.cpp writes these
  first (generate_extra_tensors), then the other tensors.
- `self_attn.sinks` is `attn_sinks.weight`, `post_attention_layernorm` `post_attention_norm`, the
  router `ffn_gate_inp` (weight and bias).
- Metadata: the base converter's keys (YaRN's rope.scaling.* from rope_scaling), then
  `attention.sliding_window` and `expert_feed_forward_length`.
"""

import numpy as np
import torch


def transform_nibble_layout(tensor):
    """GptOssModel.transform_nibble_layout, as written in llama.cpp's converter."""
    assert tensor.dtype == torch.uint8
    assert tensor.shape[-1] == 16
    # swap nibbles
    t_lo = tensor & 0x0F
    t_hi = tensor & 0xF0
    t_swapped = (t_lo << 4) | (t_hi >> 4)
    tensor = t_swapped
    # transform aaaa...bbbb... to abababab...
    blk_a, blk_b = tensor.chunk(2, dim=-1)
    # get a_
    blk_a0 = (blk_a & 0xF0).view(-1, 1)
    blk_a1 = (blk_a << 4).view(-1, 1)
    blk_a = torch.stack((blk_a0, blk_a1), dim=2).view(tensor.shape)
    # get _b
    blk_b0 = (blk_b >> 4).view(-1, 1)
    blk_b1 = (blk_b & 0x0F).view(-1, 1)
    blk_b = torch.stack((blk_b0, blk_b1), dim=2).view(tensor.shape)
    # swap once more
    out = blk_a | blk_b
    out_h = out & 0xF0
    out_l = out & 0x0F
    out = (out_h >> 4) | (out_l << 4)
    return out


def repack_mxfp4(blocks, scales):
    """GptOssModel.repack_mxfp4: [E, rows, G, 16] and [E, rows, G] -> uint8 [E, rows, G * 17]."""
    blocks = transform_nibble_layout(blocks.contiguous())
    data = torch.concat((scales.contiguous().unsqueeze(-1), blocks), dim=-1)
    return data.reshape(data.shape[0], data.shape[1], data.shape[2] * 17).numpy()


def layer_of(name):
    return int(name.split(".")[2]) if name.startswith("model.layers.") else -1


def plan(cfg, tensors, tensor_map):
    """[(gguf name, numpy data, raw MXFP4 or False)] in the converter's order."""
    def new_name(hf):
        mapped = tensor_map.get_name(hf, try_suffixes=(".weight", ".bias"))
        if mapped is None:
            raise KeyError(hf)
        return mapped

    def f32(t):
        return t.to(torch.float32)

    order = sorted(tensors, key=lambda n: (layer_of(n), n))
    out = []
    for name in order:  # generate_extra_tensors: the MXFP4 experts, repacked
        prefix = name[: -len("down_proj_scales")]
        if name.endswith("mlp.experts.down_proj_scales"):
            out.append((new_name(prefix + "down_proj.weight"),
                        repack_mxfp4(tensors[prefix + "down_proj_blocks"], tensors[name]), True))
        prefix = name[: -len("gate_up_proj_scales")]
        if name.endswith("mlp.experts.gate_up_proj_scales"):
            blocks, scales = tensors[prefix + "gate_up_proj_blocks"], tensors[name]
            out.append((new_name(prefix + "gate_proj.weight"),
                        repack_mxfp4(blocks[:, ::2], scales[:, ::2]), True))
            out.append((new_name(prefix + "up_proj.weight"),
                        repack_mxfp4(blocks[:, 1::2], scales[:, 1::2]), True))
    for name in order:  # modify_tensors
        data = tensors[name]
        if name.endswith("_blocks") or name.endswith("_scales"):
            continue
        prefix = name.rsplit(".", 1)[0] + "."
        if name.endswith("mlp.experts.gate_up_proj_bias"):
            out.append((new_name(prefix + "gate_proj.bias"), f32(data[..., ::2]), False))
            out.append((new_name(prefix + "up_proj.bias"), f32(data[..., 1::2]), False))
        elif name.endswith("mlp.experts.gate_up_proj"):
            data = f32(data).transpose(-1, -2)
            out.append((new_name(prefix + "gate_proj.weight"), data[:, ::2, :], False))
            out.append((new_name(prefix + "up_proj.weight"), data[:, 1::2, :], False))
        elif name.endswith("mlp.experts.down_proj_bias"):
            out.append((new_name(prefix + "down_proj.bias"), f32(data), False))
        elif name.endswith("mlp.experts.down_proj"):
            out.append((new_name(prefix + "down_proj.weight"), f32(data).transpose(-1, -2), False))
        elif name.endswith("self_attn.sinks"):
            out.append((new_name(name + ".weight"), f32(data), False))
        else:
            out.append((new_name(name), f32(data), False))
    return [(n, d if raw else np.ascontiguousarray(d.numpy()), raw) for n, d, raw in out]


def add_arch_hparams(writer, cfg):
    """GptOssModel.set_gguf_parameters' own keys, after the base converter's."""
    writer.add_sliding_window(cfg["sliding_window"])
    writer.add_expert_feed_forward_length(cfg["intermediate_size"])


def hf_tensors(by_name, dequantize):
    """The GGUF's tensors (by name; dequantize(tensor) -> float32 array in ggml's order reversed)
    as the F32 gpt-oss checkpoint that computes what the GGUF holds (plain fused experts)."""
    gguf_to_hf = {"token_embd.weight": "model.embed_tokens.weight", "output_norm.weight": "model.norm.weight",
                  "output.weight": "lm_head.weight"}
    per_layer = {"attn_norm.weight": "input_layernorm.weight",
                 "post_attention_norm.weight": "post_attention_layernorm.weight",
                 "attn_sinks.weight": "self_attn.sinks",
                 "ffn_gate_inp.weight": "mlp.router.weight", "ffn_gate_inp.bias": "mlp.router.bias",
                 "ffn_down_exps.bias": "mlp.experts.down_proj_bias"}
    for proj, hf in (("attn_q", "q_proj"), ("attn_k", "k_proj"), ("attn_v", "v_proj"), ("attn_output", "o_proj")):
        per_layer[f"{proj}.weight"] = f"self_attn.{hf}.weight"
        per_layer[f"{proj}.bias"] = f"self_attn.{hf}.bias"
    hf = {}
    layers = sorted({int(n.split(".")[1]) for n in by_name if n.startswith("blk.")})
    for name, t in by_name.items():
        if name in gguf_to_hf:
            hf[gguf_to_hf[name]] = dequantize(t)
        elif name.startswith("blk."):
            layer, rest = name.split(".", 2)[1:]
            if rest in per_layer:
                hf[f"model.layers.{layer}.{per_layer[rest]}"] = dequantize(t)
    for layer in layers:
        def get(rest):
            return dequantize(by_name[f"blk.{layer}.{rest}"])
        gate, up, down = get("ffn_gate_exps.weight"), get("ffn_up_exps.weight"), get("ffn_down_exps.weight")
        gate_up = np.empty((gate.shape[0], gate.shape[1] * 2, gate.shape[2]), dtype=np.float32)
        gate_up[:, ::2], gate_up[:, 1::2] = gate, up
        bias_gate, bias_up = get("ffn_gate_exps.bias"), get("ffn_up_exps.bias")
        bias = np.empty((bias_gate.shape[0], bias_gate.shape[1] * 2), dtype=np.float32)
        bias[:, ::2], bias[:, 1::2] = bias_gate, bias_up
        prefix = f"model.layers.{layer}.mlp.experts."
        hf[prefix + "gate_up_proj"] = gate_up.transpose(0, 2, 1)
        hf[prefix + "gate_up_proj_bias"] = bias
        hf[prefix + "down_proj"] = down.transpose(0, 2, 1)
    return {n: torch.from_numpy(np.ascontiguousarray(v)) for n, v in hf.items()}


def dequantized_config(cfg):
    """The config of what llama.cpp computes from the GGUF: weights now plain F32, its layer
    pattern and swiglu limit, YaRN with the correction range floored and ceiled (the converter
    does not write transformers' `truncate`)."""
    cfg = dict(cfg)
    cfg.pop("quantization_config", None)
    cfg["torch_dtype"] = "float32"
    cfg["layer_types"] = ["sliding_attention" if i % 2 == 0 else "full_attention"
                          for i in range(cfg["num_hidden_layers"])]
    cfg["swiglu_limit"] = 7.0
    if cfg.get("rope_scaling") is not None:
        cfg["rope_scaling"] = dict(cfg["rope_scaling"], truncate=True)
    return cfg
