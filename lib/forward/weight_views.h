// Checkpoint tensors as the kernels read them: a mapped 2-D tensor as a kernels::WeightMatrix (a
// view, converted block by block when multiplied) and a small 1-D tensor (norm weight, bias)
// copied to fp32. The checks name the tensor, so a checkpoint the forward pass cannot use fails
// before any token is computed.
#pragma once

#include <cstddef>
#include <optional>
#include <vector>

#include "format/tensor_store.h"
#include "format/tensor_view.h"
#include "kernels/weight_matrix.h"
#include "model/weight_quantization.h"

namespace moeslice {

// A 2-D tensor of F32, BF16 or F16, or of a ggml block type the dequantizers read
// (kernels::can_dequantize_blocks: dequantized block by block when multiplied); throws ModelError
// naming the tensor and its type otherwise. The tensor's mapping must outlive the WeightMatrix.
kernels::WeightMatrix weight_matrix(const TensorView& tensor);

// The same, and an F8_E4M3 tensor with its block scales: `checkpoint`'s `<name>_scale_inv`
// (F32 or BF16, [ceil(rows / block_rows), ceil(cols / block_cols)]) with the block shape of the
// config's quantization_config (`fp8`), dequantized block by block when multiplied. Throws
// ModelError naming the tensor when the config declares no FP8 blocks or the scales are missing
// or of the wrong shape or type.
kernels::WeightMatrix weight_matrix(const TensorView& tensor, const TensorStore& checkpoint,
                                    const std::optional<Fp8BlockScaling>& fp8);

// A 1-D F32/BF16/F16 tensor converted to fp32; throws ModelError when the tensor is not 1-D of
// `expected_size` elements or not a compute float.
std::vector<float> vector_to_f32(const TensorView& tensor, size_t expected_size);

}  // namespace moeslice
