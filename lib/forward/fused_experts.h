// gpt-oss's fused experts (ExpertStorage::kFused) as one kernels::ExpertMlp per expert, all views
// of the layer's stacked tensors: nothing is transposed or copied but the biases.
//  - Plain form: gate_up_proj [E, H, 2I] and down_proj [E, I, H], stored as x @ W ([in, out]);
//    gate is the even columns of gate_up_proj[e] and up the odd ones (gate_up[..., ::2] and
//    [..., 1::2]), each read as the columns of the stored matrix (WeightMatrix::stored_columns).
//  - MXFP4 form: gate_up_proj_blocks [E, 2I, H / 32, 16] with gate_up_proj_scales [E, 2I, H / 32],
//    and down_proj_blocks [E, H, I / 32, 16] with down_proj_scales [E, H, I / 32]: stored
//    [out, in] (transformers' convert_moe_packed_tensors transposes them into the plain form), so
//    gate is the even rows and up the odd rows of expert e's [2I, H] matrix.
//  - llama.cpp's form (a GGUF, gguf_checkpoint.h): gate_exps and up_exps [E, I, H] and down_exps
//    [E, H, I], stored [out, in] in any type weight_matrix reads (F32, F16, BF16, ggml blocks
//    such as MXFP4); expert e is the e-th contiguous slice.
//  - Biases gate_up_proj_bias [E, 2I] (interleaved the same way) and down_proj_bias [E, H].
// The GLU is the family's expert activation (clamped SwiGLU with swiglu_limit).
#pragma once

#include "format/tensor_store.h"
#include "forward/layer_weights.h"
#include "model/model_spec.h"

namespace moeslice {

// Fills moe.experts (and the bias vectors they point into) for sparse layer `layer`; throws
// ModelError naming the tensor when no form is complete or a tensor has the wrong shape or
// type.
void load_fused_experts(const ModelSpec& spec, const TensorStore& checkpoint,
                        const LayerSpec& layer, MoeWeights& moe);

}  // namespace moeslice
