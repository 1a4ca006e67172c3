// Tensor element types of the safetensors format and the block-quantized types of ggml (GGUF
// files), their sizes, and conversions between the floating-point storage types (F32, F16, BF16)
// and the fp32 used for compute. common/ggml_type.h maps ggml's numeric type ids onto these.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string_view>

namespace moeslice {

// Every dtype name the safetensors format defines, then ggml's block-quantized types. Types we do
// not compute with (F8, F4, Q4_K, ...) are still read and written byte-exact.
enum class DType : uint8_t {
  BOOL,
  F4,
  F6_E2M3,
  F6_E3M2,
  U8,
  I8,
  F8_E5M2,
  F8_E4M3,
  F8_E8M0,
  I16,
  U16,
  F16,
  BF16,
  I32,
  U32,
  F32,
  C64,
  F64,
  I64,
  U64,
  // ggml's block-quantized types (GGUF only): each stores `DTypeBlock::elements` consecutive
  // elements of a row (the innermost axis) in `DTypeBlock::bytes` bytes. Names as gguf-py's
  // GGMLQuantizationType spells them.
  Q4_0,
  Q4_1,
  Q5_0,
  Q5_1,
  Q8_0,
  Q8_1,
  Q2_K,
  Q3_K,
  Q4_K,
  Q5_K,
  Q6_K,
  Q8_K,
  IQ2_XXS,
  IQ2_XS,
  IQ3_XXS,
  IQ1_S,
  IQ4_NL,
  IQ3_S,
  IQ2_S,
  IQ4_XS,
  IQ1_M,
  TQ1_0,
  TQ2_0,
  MXFP4,
  NVFP4,
  Q1_0,
  Q2_0,
};

// The safetensors dtypes are the first ones of DType (BOOL to U64).
inline constexpr size_t kSafetensorsDTypeCount = 20;
// Every DType, safetensors and block types.
inline constexpr size_t kAllDTypeCount = 47;

// One block of a block-quantized type: `elements` consecutive elements of a row in `bytes` bytes.
struct DTypeBlock {
  uint32_t elements = 0;
  uint32_t bytes = 0;
};

std::string_view dtype_name(DType dtype);
// A safetensors dtype by its name; nullopt for any other name, ggml's block types included.
std::optional<DType> parse_dtype(std::string_view name);
// Bits per element; sub-byte types (F4, F6) pack several elements in a byte. 0 for the
// block-quantized types, whose elements have no bit width of their own (dtype_block).
unsigned dtype_bits(DType dtype);
// The block of a block-quantized type; nullopt for the element types (the safetensors ones).
std::optional<DTypeBlock> dtype_block(DType dtype);
// True for F32, F16 and BF16: the types the forward pass converts to fp32.
bool is_compute_float(DType dtype);
// Comma-separated list of every safetensors dtype name, for error messages.
std::string_view all_dtype_names();

inline float bf16_to_f32(uint16_t bits) {
  uint32_t widened = static_cast<uint32_t>(bits) << 16;
  float value;
  std::memcpy(&value, &widened, sizeof value);
  return value;
}

// Round to nearest even, as PyTorch does; NaN stays NaN.
inline uint16_t f32_to_bf16(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((bits >> 16) | 0x40u);
  uint32_t rounding = 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>((bits + rounding) >> 16);
}

float f16_to_f32(uint16_t bits);
uint16_t f32_to_f16(float value);

// FP8 E4M3 (e4m3fn: bias 7, no infinities, max 448) of an fp32 value, rounded to nearest even;
// magnitudes beyond 448 saturate to +-448 and NaN gives the NaN code 0x7f (with its sign).
uint8_t f32_to_e4m3(float value);

// Converts `count` elements of a compute-float dtype stored at `src` (any alignment) to fp32.
// Any other dtype is a programming error, not bad input: every caller refuses such a tensor with
// a ModelError first (is_compute_float), so std::logic_error is thrown and nothing is written.
void convert_to_f32(DType dtype, const std::byte* src, float* dst, size_t count);
// Stores fp32 values as a compute-float dtype (rounding to nearest even); the same contract.
void convert_from_f32(DType dtype, const float* src, std::byte* dst, size_t count);

}  // namespace moeslice
