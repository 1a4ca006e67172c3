// Checkpoint tensors to kernel weight views, with the checks that name the tensor.
#include "forward/weight_views.h"

#include <string>

#include "common/dtype.h"
#include "common/error.h"

namespace moeslice {
namespace {

void require_compute_float(const TensorView& tensor) {
  if (!is_compute_float(tensor.dtype))
    throw ModelError("tensor '" + tensor.name + "' has dtype " +
                     std::string(dtype_name(tensor.dtype)) +
                     "; the forward pass computes with F32, BF16 or F16 weights only");
}

}  // namespace

kernels::WeightMatrix weight_matrix(const TensorView& tensor) {
  require_compute_float(tensor);
  if (tensor.shape.size() != 2 || tensor.shape[0] <= 0 || tensor.shape[1] <= 0)
    throw ModelError("tensor '" + tensor.name + "' has shape " + tensor.shape_string() +
                     "; expected a non-empty 2-D [out, in] weight");
  const auto rows = static_cast<size_t>(tensor.shape[0]);
  const auto cols = static_cast<size_t>(tensor.shape[1]);
  if (tensor.bytes.size() != rows * cols * (dtype_bits(tensor.dtype) / 8))
    throw ModelError("tensor '" + tensor.name + "' holds " + std::to_string(tensor.bytes.size()) +
                     " bytes, not the " + std::to_string(rows * cols * (dtype_bits(tensor.dtype) / 8)) +
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
