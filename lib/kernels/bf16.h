// BF16 values for `--compute bf16`: round-to-nearest-even conversion from fp32 (as PyTorch's),
// widening back, and the bulk conversions of activations and stored weights into BF16 GEMM
// operands. Header-inline where a loop has to vectorise over them.
//
// Thread safety: pure functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "common/dtype.h"
#include "kernels/matrix.h"

namespace moeslice::kernels {

// fp32 -> BF16 bits, round to nearest even, NaN kept (PyTorch's conversion); vectorisable.
inline uint16_t to_bf16_bits(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  const bool nan = (bits & 0x7fffffffu) > 0x7f800000u;
  const uint32_t rounded = (bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16;
  return static_cast<uint16_t>(nan ? (bits >> 16) | 0x40u : rounded);
}
inline float bf16_bits_to_f32(uint16_t bits) {
  const uint32_t widened = static_cast<uint32_t>(bits) << 16;
  float value;
  std::memcpy(&value, &widened, sizeof value);
  return value;
}
// The nearest BF16 value, as fp32.
inline float round_bf16(float value) { return bf16_bits_to_f32(to_bf16_bits(value)); }

void f32_to_bf16(const float* src, uint16_t* dst, size_t count);
// Rows of an fp32 matrix into dense BF16 rows (dst: rows * cols).
void f32_to_bf16(ConstMatrixRef src, uint16_t* dst);
// Any compute-float storage (F32, F16, BF16) to BF16 bits: F32 rounds, F16 rounds, BF16 copies.
void storage_to_bf16(DType dtype, const std::byte* src, uint16_t* dst, size_t count);

}  // namespace moeslice::kernels
