// The ggml type id table and row sizes.
#include "common/ggml_type.h"

#include <array>

namespace moeslice {
namespace {

constexpr std::array<GgmlType, 35> kGgmlTypes = {{
    {0, DType::F32},      {1, DType::F16},     {2, DType::Q4_0},     {3, DType::Q4_1},
    {6, DType::Q5_0},     {7, DType::Q5_1},    {8, DType::Q8_0},     {9, DType::Q8_1},
    {10, DType::Q2_K},    {11, DType::Q3_K},   {12, DType::Q4_K},    {13, DType::Q5_K},
    {14, DType::Q6_K},    {15, DType::Q8_K},   {16, DType::IQ2_XXS}, {17, DType::IQ2_XS},
    {18, DType::IQ3_XXS}, {19, DType::IQ1_S},  {20, DType::IQ4_NL},  {21, DType::IQ3_S},
    {22, DType::IQ2_S},   {23, DType::IQ4_XS}, {24, DType::I8},      {25, DType::I16},
    {26, DType::I32},     {27, DType::I64},    {28, DType::F64},     {29, DType::IQ1_M},
    {30, DType::BF16},    {34, DType::TQ1_0},  {35, DType::TQ2_0},   {39, DType::MXFP4},
    {40, DType::NVFP4},   {41, DType::Q1_0},   {42, DType::Q2_0},
}};

}  // namespace

std::span<const GgmlType> ggml_types() { return kGgmlTypes; }

std::optional<GgmlType> ggml_type(uint32_t id) {
  for (const GgmlType& type : kGgmlTypes)
    if (type.id == id) return type;
  return std::nullopt;
}

std::optional<GgmlType> ggml_type_of(DType dtype) {
  for (const GgmlType& type : kGgmlTypes)
    if (type.dtype == dtype) return type;
  return std::nullopt;
}

std::string all_ggml_type_names() {
  std::string text;
  for (const GgmlType& type : kGgmlTypes) {
    if (!text.empty()) text += ", ";
    text += std::string(ggml_type_name(type)) + " (" + std::to_string(type.id) + ")";
  }
  return text;
}

std::optional<uint64_t> row_byte_size(DType dtype, uint64_t elements) {
  uint64_t bytes = 0;
  if (const auto block = dtype_block(dtype)) {
    if (elements % block->elements != 0) return std::nullopt;
    if (__builtin_mul_overflow(elements / block->elements, uint64_t{block->bytes}, &bytes))
      return std::nullopt;
    return bytes;
  }
  if (__builtin_mul_overflow(elements, uint64_t{dtype_bits(dtype)}, &bytes) || bytes % 8 != 0)
    return std::nullopt;
  return bytes / 8;
}

}  // namespace moeslice
