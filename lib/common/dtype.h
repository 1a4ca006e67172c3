// Tensor element types of the safetensors format, their sizes, and conversions between the
// floating-point storage types (F32, F16, BF16) and the fp32 used for compute.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string_view>

namespace moeslice {

// Every dtype name the safetensors format defines. Types we do not compute with (F8, F4, ...)
// are still read and written byte-exact.
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
};

std::string_view dtype_name(DType dtype);
std::optional<DType> parse_dtype(std::string_view name);
// Bits per element; sub-byte types (F4, F6) pack several elements in a byte.
unsigned dtype_bits(DType dtype);
// True for F32, F16 and BF16: the types the forward pass converts to fp32.
bool is_compute_float(DType dtype);
// Comma-separated list of every dtype name, for error messages.
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

// Converts `count` elements of a compute-float dtype stored at `src` (any alignment) to fp32.
// Any other dtype is a programming error, not bad input: every caller refuses such a tensor with
// a ModelError first (is_compute_float), so std::logic_error is thrown and nothing is written.
void convert_to_f32(DType dtype, const std::byte* src, float* dst, size_t count);
// Stores fp32 values as a compute-float dtype (rounding to nearest even); the same contract.
void convert_from_f32(DType dtype, const float* src, std::byte* dst, size_t count);

}  // namespace moeslice
