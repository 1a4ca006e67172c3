// Checkpoint tensors to kernel weight views, with the checks that name the tensor.
#include "forward/weight_views.h"

#include <string>

#include "common/dtype.h"
#include "common/error.h"
#include "kernels/dequant/dequantize.h"

namespace moeslice {
namespace {

void require_compute_float(const TensorView& tensor) {
  if (is_compute_float(tensor.dtype)) return;
  if (dtype_block(tensor.dtype))
    throw ModelError("tensor '" + tensor.name + "' has ggml type " +
                     std::string(dtype_name(tensor.dtype)) +
                     "; the forward pass computes with F32, BF16, F16 and the block types Q4_0, "
                     "Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_NL, IQ4_XS and "
                     "MXFP4 (as weight matrices) only; such a file still slices");
  throw ModelError("tensor '" + tensor.name + "' has dtype " +
                   std::string(dtype_name(tensor.dtype)) +
                   "; the forward pass computes with F32, BF16 or F16 weights only");
}

}  // namespace

kernels::WeightMatrix weight_matrix(const TensorView& tensor) {
  if (tensor.shape.size() != 2 || tensor.shape[0] <= 0 || tensor.shape[1] <= 0)
    throw ModelError("tensor '" + tensor.name + "' has shape " + tensor.shape_string() +
                     "; expected a non-empty 2-D [out, in] weight");
  const auto rows = static_cast<size_t>(tensor.shape[0]);
  const auto cols = static_cast<size_t>(tensor.shape[1]);
  if (kernels::can_dequantize_blocks(tensor.dtype)) {
    const std::optional<uint64_t> size = tensor_byte_size(tensor.dtype, tensor.shape);
    if (!size || *size != tensor.bytes.size())
      throw ModelError("tensor '" + tensor.name + "' holds " + std::to_string(tensor.bytes.size()) +
                       " bytes, not the whole " + std::string(dtype_name(tensor.dtype)) +
                       " blocks of shape " + tensor.shape_string());
    return kernels::WeightMatrix(
        kernels::QuantizedMatrix::ggml_blocks(tensor.dtype, tensor.bytes.data(), rows, cols));
  }
  require_compute_float(tensor);
  if (tensor.bytes.size() != rows * cols * (dtype_bits(tensor.dtype) / 8))
    throw ModelError("tensor '" + tensor.name + "' holds " + std::to_string(tensor.bytes.size()) +
                     " bytes, not the " +
                     std::to_string(rows * cols * (dtype_bits(tensor.dtype) / 8)) +
                     " its shape and dtype need");
  return {tensor.dtype, tensor.bytes.data(), rows, cols};
}

std::vector<float> vector_to_f32(const TensorView& tensor, size_t expected_size) {
  require_compute_float(tensor);
  if (tensor.shape.size() != 1 || tensor.shape[0] != static_cast<int64_t>(expected_size))
    throw ModelError("tensor '" + tensor.name + "' has shape " + tensor.shape_string() +
                     "; expected [" + std::to_string(expected_size) + "]");
  std::vector<float> out(expected_size);
  convert_to_f32(tensor.dtype, tensor.bytes.data(), out.data(), expected_size);
  return out;
}

}  // namespace moeslice
