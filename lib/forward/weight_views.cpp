// Checkpoint tensors to kernel weight views, with the checks that name the tensor.
#include "forward/weight_views.h"

#include <string>

#include <fmt/core.h>

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
                   "; the forward pass computes with F32, BF16 or F16 weights only" +
                   (tensor.dtype == DType::F8_E4M3
                        ? std::string(" (and F8_E4M3 Linear weights with block scales)")
                        : std::string()));
}

void require_matrix_shape(const TensorView& tensor) {
  if (tensor.shape.size() != 2 || tensor.shape[0] <= 0 || tensor.shape[1] <= 0)
    throw ModelError("tensor '" + tensor.name + "' has shape " + tensor.shape_string() +
                     "; expected a non-empty 2-D [out, in] weight");
}

int64_t blocks_over(int64_t size, int64_t block) { return (size + block - 1) / block; }

// An F8_E4M3 [out, in] weight and its `_scale_inv` block scales.
kernels::WeightMatrix fp8_weight_matrix(const TensorView& tensor, const TensorView& scales,
                                        const Fp8BlockScaling& blocks) {
  const int64_t rows = tensor.shape[0], cols = tensor.shape[1];
  if (tensor.bytes.size() != static_cast<uint64_t>(rows) * static_cast<uint64_t>(cols))
    throw ModelError(fmt::format("tensor '{}' holds {} bytes, not the {} its shape {} needs",
                                 tensor.name, tensor.bytes.size(), rows * cols,
                                 tensor.shape_string()));
  const std::vector<int64_t> scale_shape = {blocks_over(rows, blocks.block_rows),
                                            blocks_over(cols, blocks.block_cols)};
  if (scales.shape != scale_shape)
    throw ModelError(
        fmt::format("tensor '{}' has shape {}; the block scales of '{}' {} in blocks of {}x{} "
                    "(quantization_config.weight_block_size) are [{}, {}]",
                    scales.name, scales.shape_string(), tensor.name, tensor.shape_string(),
                    blocks.block_rows, blocks.block_cols, scale_shape[0], scale_shape[1]));
  if (scales.dtype != DType::F32 && scales.dtype != DType::BF16)
    throw ModelError(fmt::format("tensor '{}' has dtype {}; FP8 block scales are F32 or BF16",
                                 scales.name, dtype_name(scales.dtype)));
  const uint64_t scale_bytes = static_cast<uint64_t>(scale_shape[0]) *
                               static_cast<uint64_t>(scale_shape[1]) * dtype_bits(scales.dtype) / 8;
  if (scales.bytes.size() != scale_bytes)
    throw ModelError(fmt::format("tensor '{}' holds {} bytes, not the {} its shape needs",
                                 scales.name, scales.bytes.size(), scale_bytes));
  return kernels::WeightMatrix(kernels::QuantizedMatrix::fp8_block_scaled(
      tensor.bytes.data(), scales.bytes.data(), scales.dtype, static_cast<size_t>(rows),
      static_cast<size_t>(cols), static_cast<size_t>(blocks.block_rows),
      static_cast<size_t>(blocks.block_cols)));
}

}  // namespace

kernels::WeightMatrix weight_matrix(const TensorView& tensor) {
  require_matrix_shape(tensor);
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

kernels::WeightMatrix weight_matrix(const TensorView& tensor, const TensorStore& checkpoint,
                                    const std::optional<Fp8BlockScaling>& fp8) {
  if (tensor.dtype != DType::F8_E4M3) return weight_matrix(tensor);
  require_matrix_shape(tensor);
  const std::string scales_name = scale_inv_name(tensor.name);
  if (!fp8)
    throw ModelError(fmt::format(
        "tensor '{}' is F8_E4M3 but config.json has no quantization_config with quant_method "
        "\"fp8\" and a weight_block_size, so the block of each scale in '{}' is unknown",
        tensor.name, scales_name));
  const TensorView* scales = checkpoint.find(scales_name);
  if (scales == nullptr)
    throw ModelError(fmt::format("{}: tensor '{}' is F8_E4M3 but its block scales '{}' are missing",
                                 checkpoint.path().string(), tensor.name, scales_name));
  return fp8_weight_matrix(tensor, *scales, *fp8);
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
