// A GGUF model (olmoe, qwen2moe, qwen3moe, llama with experts, glm4moe, deepseek2, gpt-oss) as the
// checkpoint of its moeslice family, so that every command that runs the model reads the file a
// user has: the Hugging Face config the family profile resolves is translated from the `{arch}.*`
// metadata, and each tensor the resulting ModelSpec lists is found by its role in llama.cpp's name
// table (gguf_architecture.h) and offered under the spec's name. Nothing is converted: an expert's
// matrix is a view of its slice of the stacked `blk.N.ffn_*_exps.weight` tensor, in the file's ggml
// type (the forward pass dequantizes block by block). Only `llama`'s Q and K rows, which
// llama.cpp's converter permutes for its RoPE layout, are copied back into Hugging Face row order
// (in their stored type, one layer's attention projections per copy), deepseek2's kv_b_proj, which
// the converter splits into attn_k_b (each head transposed) and attn_v_b, is joined back (F32, F16
// or BF16 parts only; older files' unsplit attn_kv_b is a view), and gpt-oss's gate and up biases
// are interleaved again into its gate_up_proj_bias. gpt-oss's experts stay llama.cpp's split stacks
// (the gpt_oss profile's gate_exps / up_exps / down_exps form, fused_experts.h); its config takes
// llama.cpp's layer pattern, YaRN (correction range truncated) and swiglu limit 7. llama.cpp's
// block_count counts the multi-token-prediction layers (nextn_predict_layers): their blocks are
// accepted, not computed. Of the RoPE scalings, glm4moe's and deepseek2's YaRN and gpt-oss's are
// read; any other is refused by key.
#pragma once

#include <memory>

#include "format/gguf/model.h"
#include "model/model_spec.h"

namespace moeslice {

// The GGUF as a Model: spec from its metadata, tensors under the spec's names, checked by
// check_checkpoint. Throws UnsupportedError for an architecture the GGUF forward pass does not
// map, ModelError naming the file and key or tensor for missing or inconsistent metadata and
// tensors the mapping does not place.
Model gguf_model(std::shared_ptr<const GgufModel> gguf);

// The Hugging Face config.json the family profile of the GGUF's architecture resolves (for
// messages and tests).
nlohmann::json gguf_hf_config(const GgufModel& gguf);

}  // namespace moeslice
