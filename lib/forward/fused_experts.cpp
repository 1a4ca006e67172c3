// Per-expert views of fused expert tensors, plain or MXFP4, or of llama.cpp's split stacks.
#include "forward/fused_experts.h"

#include <cstddef>
#include <string>
#include <vector>

#include <fmt/core.h>

#include "common/dtype.h"
#include "common/error.h"
#include "forward/weight_views.h"
#include "kernels/dequant/dequantize.h"

namespace moeslice {
namespace {

// The layer's tensor of `role`, or null when the profile names none or the checkpoint lacks it.
const TensorView* find(const TensorStore& checkpoint, const LayerSpec& layer, TensorRole role) {
  const ResolvedTensor* resolved = layer.find(role);
  return resolved == nullptr ? nullptr : checkpoint.find(resolved->name);
}

const TensorView& require(const TensorStore& checkpoint, const LayerSpec& layer, TensorRole role) {
  const TensorView* tensor = find(checkpoint, layer, role);
  if (tensor == nullptr)
    throw ModelError(fmt::format("layer {}: the checkpoint has no '{}' tensor of the fused experts",
                                 layer.index, name(role)));
  return *tensor;
}

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string text = "[";
  for (size_t i = 0; i < shape.size(); ++i) text += (i ? ", " : "") + std::to_string(shape[i]);
  return text + "]";
}

void check_shape(const TensorView& tensor, const std::vector<int64_t>& expected) {
  if (tensor.shape != expected)
    throw ModelError(fmt::format("tensor '{}' has shape {}, expected {}", tensor.name,
                                 tensor.shape_string(), shape_text(expected)));
}

// F32/BF16/F16 of exactly its shape's bytes.
void check_float(const TensorView& tensor) {
  if (!is_compute_float(tensor.dtype))
    throw ModelError(
        fmt::format("tensor '{}' has dtype {}; plain fused experts must be F32, BF16 "
                    "or F16 (or MXFP4 blocks and scales)",
                    tensor.name, dtype_name(tensor.dtype)));
  if (tensor.bytes.size() != static_cast<size_t>(tensor.numel()) * (dtype_bits(tensor.dtype) / 8))
    throw ModelError(fmt::format(
        "tensor '{}' holds {} bytes, not the {} its shape needs", tensor.name, tensor.bytes.size(),
        static_cast<size_t>(tensor.numel()) * (dtype_bits(tensor.dtype) / 8)));
}

void check_u8(const TensorView& tensor) {
  if (tensor.dtype != DType::U8 || tensor.bytes.size() != static_cast<size_t>(tensor.numel()))
    throw ModelError(
        fmt::format("tensor '{}' has dtype {} and {} bytes; MXFP4 blocks and scales are "
                    "U8, one byte an element",
                    tensor.name, dtype_name(tensor.dtype), tensor.bytes.size()));
}

// Expert e's [out, in] matrix of a stacked [experts, out, in] tensor, in its stored type (the
// experts are contiguous: ggml blocks lie within a row).
TensorView expert_slice(const TensorView& tensor, size_t e, size_t experts) {
  const size_t bytes = tensor.bytes.size() / experts;
  return TensorView{tensor.name,
                    tensor.dtype,
                    {tensor.shape[1], tensor.shape[2]},
                    tensor.bytes.subspan(e * bytes, bytes)};
}

std::vector<float> flat_f32(const TensorView& tensor) {
  if (!is_compute_float(tensor.dtype))
    throw ModelError(fmt::format("tensor '{}' has dtype {}; expected F32, BF16 or F16", tensor.name,
                                 dtype_name(tensor.dtype)));
  std::vector<float> out(static_cast<size_t>(tensor.numel()));
  convert_to_f32(tensor.dtype, tensor.bytes.data(), out.data(), out.size());
  return out;
}

}  // namespace

void load_fused_experts(const ModelSpec& spec, const TensorStore& checkpoint,
                        const LayerSpec& layer, MoeWeights& moe) {
  const int64_t experts = layer.num_experts, hidden = spec.hidden, width = spec.expert_width;
  const auto E = static_cast<size_t>(experts);
  const auto H = static_cast<size_t>(hidden);
  const auto I = static_cast<size_t>(width);

  const TensorView& gate_up_bias = require(checkpoint, layer, TensorRole::kGateUpProjBias);
  const TensorView& down_bias = require(checkpoint, layer, TensorRole::kDownProjBias);
  check_shape(gate_up_bias, {experts, 2 * width});
  check_shape(down_bias, {experts, hidden});
  const std::vector<float> gate_up_b = flat_f32(gate_up_bias);
  moe.gate_bias.resize(E * I);
  moe.up_bias.resize(E * I);
  for (size_t i = 0; i < E * I; ++i) {
    moe.gate_bias[i] = gate_up_b[2 * i];
    moe.up_bias[i] = gate_up_b[2 * i + 1];
  }
  moe.down_bias = flat_f32(down_bias);

  kernels::GluParams glu;
  if (spec.family->expert_activation == ExpertActivation::kClampedSwiglu)
    glu = {kernels::GluKind::kClampedSwiglu, 1.702f, spec.forward.swiglu_limit};

  const TensorView* gate_up = find(checkpoint, layer, TensorRole::kGateUpProj);
  const TensorView* down = find(checkpoint, layer, TensorRole::kDownProj);
  const bool plain = gate_up != nullptr || down != nullptr;
  const bool split = find(checkpoint, layer, TensorRole::kGateExps) != nullptr;
  std::vector<kernels::WeightMatrix> gates(E), ups(E), downs(E);
  if (split) {
    const TensorView& gate = require(checkpoint, layer, TensorRole::kGateExps);
    const TensorView& up = require(checkpoint, layer, TensorRole::kUpExps);
    const TensorView& dn = require(checkpoint, layer, TensorRole::kDownExps);
    check_shape(gate, {experts, width, hidden});
    check_shape(up, {experts, width, hidden});
    check_shape(dn, {experts, hidden, width});
    for (size_t e = 0; e < E; ++e) {
      gates[e] = weight_matrix(expert_slice(gate, e, E));
      ups[e] = weight_matrix(expert_slice(up, e, E));
      downs[e] = weight_matrix(expert_slice(dn, e, E));
    }
  } else if (plain) {
    const TensorView& gu = require(checkpoint, layer, TensorRole::kGateUpProj);
    const TensorView& dn = require(checkpoint, layer, TensorRole::kDownProj);
    check_shape(gu, {experts, hidden, 2 * width});
    check_shape(dn, {experts, width, hidden});
    check_float(gu);
    check_float(dn);
    const size_t gu_bytes = H * 2 * I * (dtype_bits(gu.dtype) / 8);
    const size_t dn_bytes = I * H * (dtype_bits(dn.dtype) / 8);
    for (size_t e = 0; e < E; ++e) {
      const std::byte* g = gu.bytes.data() + e * gu_bytes;
      gates[e] = kernels::WeightMatrix::stored_columns(gu.dtype, g, H, 2 * I, 0, 2, I);
      ups[e] = kernels::WeightMatrix::stored_columns(gu.dtype, g, H, 2 * I, 1, 2, I);
      downs[e] = kernels::WeightMatrix::stored_columns(dn.dtype, dn.bytes.data() + e * dn_bytes, I,
                                                       H, 0, 1, H);
    }
  } else {
    if (hidden % 32 != 0 || width % 32 != 0)
      throw ModelError(
          fmt::format("layer {}: MXFP4 experts need hidden_size ({}) and "
                      "intermediate_size ({}) divisible by 32",
                      layer.index, hidden, width));
    const TensorView& gu_blocks = require(checkpoint, layer, TensorRole::kGateUpProjBlocks);
    const TensorView& gu_scales = require(checkpoint, layer, TensorRole::kGateUpProjScales);
    const TensorView& dn_blocks = require(checkpoint, layer, TensorRole::kDownProjBlocks);
    const TensorView& dn_scales = require(checkpoint, layer, TensorRole::kDownProjScales);
    check_shape(gu_blocks, {experts, 2 * width, hidden / 32, 16});
    check_shape(gu_scales, {experts, 2 * width, hidden / 32});
    check_shape(dn_blocks, {experts, hidden, width / 32, 16});
    check_shape(dn_scales, {experts, hidden, width / 32});
    for (const TensorView* t : {&gu_blocks, &gu_scales, &dn_blocks, &dn_scales}) check_u8(*t);
    for (size_t e = 0; e < E; ++e) {
      const kernels::WeightMatrix gate_up_e(kernels::QuantizedMatrix::mxfp4_split(
          gu_blocks.bytes.data() + e * 2 * I * H / 2, gu_scales.bytes.data() + e * 2 * I * H / 32,
          2 * I, H));
      gates[e] = gate_up_e.row_subset(0, 2, I);
      ups[e] = gate_up_e.row_subset(1, 2, I);
      downs[e] = kernels::WeightMatrix(kernels::QuantizedMatrix::mxfp4_split(
          dn_blocks.bytes.data() + e * H * I / 2, dn_scales.bytes.data() + e * H * I / 32, H, I));
    }
  }
  moe.experts.clear();
  moe.experts.reserve(E);
  for (size_t e = 0; e < E; ++e) {
    kernels::ExpertMlp mlp{gates[e], ups[e], downs[e]};
    mlp.gate_bias = std::span<const float>(moe.gate_bias).subspan(e * I, I);
    mlp.up_bias = std::span<const float>(moe.up_bias).subspan(e * I, I);
    mlp.down_bias = std::span<const float>(moe.down_bias).subspan(e * H, H);
    mlp.glu = glu;
    moe.experts.push_back(mlp);
  }
}

}  // namespace moeslice
