// ggml's legacy block types, 32 elements a block (ggml-common.h, gguf-py quants.py): Q4_0 and
// Q4_1 (4-bit codes: element i < 16 the low nibble of byte i, element i + 16 its high nibble),
// Q5_0 and Q5_1 (the same plus a fifth bit of element i at bit i of a u32), Q8_0 (int8 codes).
// The _0 types are d * (code - offset), the _1 types d * code + m, rounded as gguf-py rounds.
#include <cstdint>
#include <cstring>

#include "kernels/dequant/block_dequantizers.h"
#include "kernels/dequant/code_vectors.h"

namespace moeslice::kernels::dequant {
namespace {

constexpr size_t kBlock = 32;

// The 4-bit code of element i of a block whose 16 code bytes start at `qs`.
inline uint8_t nibble(const std::byte* qs, size_t i) {
  return i < 16 ? byte_at(qs, i) & 0x0f : byte_at(qs, i - 16) >> 4;
}

// The 5-bit code of element i: its nibble and bit i of the little-endian u32 at `qh`.
inline uint8_t five_bits(const std::byte* qh, const std::byte* qs, size_t i) {
  uint32_t high;
  std::memcpy(&high, qh, sizeof high);
  return static_cast<uint8_t>(nibble(qs, i) | ((high >> i) & 1u) << 4);
}

}  // namespace

void q4_0(const std::byte* src, size_t blocks, float* dst) {
  for (size_t b = 0; b < blocks; ++b, src += 18, dst += kBlock) {
    const float d = load_f16(src);
    for (size_t i = 0; i < kBlock; ++i)
      dst[i] = d * static_cast<float>(static_cast<int>(nibble(src + 2, i)) - 8);
  }
}

void q4_1(const std::byte* src, size_t blocks, float* dst) {
  for (size_t b = 0; b < blocks; ++b, src += 20, dst += kBlock) {
    const float d = load_f16(src);
    const float m = load_f16(src + 2);
    for (size_t i = 0; i < kBlock; ++i) dst[i] = d * static_cast<float>(nibble(src + 4, i)) + m;
  }
}

void q5_0(const std::byte* src, size_t blocks, float* dst) {
  for (size_t b = 0; b < blocks; ++b, src += 22, dst += kBlock) {
    const float d = load_f16(src);
    for (size_t i = 0; i < kBlock; ++i)
      dst[i] = d * static_cast<float>(static_cast<int>(five_bits(src + 2, src + 6, i)) - 16);
  }
}

void q5_1(const std::byte* src, size_t blocks, float* dst) {
  for (size_t b = 0; b < blocks; ++b, src += 24, dst += kBlock) {
    const float d = load_f16(src);
    const float m = load_f16(src + 2);
    for (size_t i = 0; i < kBlock; ++i)
      dst[i] = d * static_cast<float>(five_bits(src + 4, src + 8, i)) + m;
  }
}

void q8_0(const std::byte* src, size_t blocks, float* dst) {
  for (size_t b = 0; b < blocks; ++b, src += 34, dst += kBlock) {
    const float d = load_f16(src);
    store_signed_scaled(load_codes(src + 2), d, dst);
    store_signed_scaled(load_codes(src + 18), d, dst + 16);
  }
}

}  // namespace moeslice::kernels::dequant
