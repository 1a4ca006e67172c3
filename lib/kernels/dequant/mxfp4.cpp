// MXFP4 (OCP microscaling: E2M1 codes, one E8M0 exponent per 32 elements) in its two layouts:
// ggml's block (the exponent byte, then 16 bytes of codes with element i < 16 the low nibble of
// byte i and i + 16 its high nibble) and gpt-oss's safetensors pair (`*_blocks` with elements 2i
// and 2i + 1 in the low and high nibble of byte i, `*_scales` holding the exponents).
// Both compute ggml's way: doubled E2M1 levels (integers) times 2^(e - 128), exact but for
// overflow, which equals transformers' FP4_VALUES[code] * 2^(e - 127) (ldexp) value for value.
#include <bit>
#include <cstdint>

#include "kernels/dequant/block_dequantizers.h"

namespace moeslice::kernels::dequant {
namespace {

// kvalues_mxfp4: the E2M1 values doubled.
constexpr int8_t kDoubled[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};

inline float doubled(uint8_t code) { return static_cast<float>(kDoubled[code & 0x0fu]); }

// The same with code 8 as -0.0, as transformers' FP4_VALUES has it (gpt-oss's layout follows
// transformers; ggml's reads +0.0).
constexpr float kDoubledSigned[16] = {0, 1, 2, 3, 4, 6, 8, 12, -0.0f, -1, -2, -3, -4, -6, -8, -12};

// 2^(e - 128) (ggml_e8m0_to_fp32_half): a subnormal for e < 2. E8M0's NaN code 0xff reads as
// 2^127, as in ggml and gguf-py.
inline float half_scale(uint8_t e) {
  const uint32_t bits = e < 2 ? uint32_t{0x00200000} << e : static_cast<uint32_t>(e - 1) << 23;
  return std::bit_cast<float>(bits);
}

}  // namespace

void mxfp4(const std::byte* src, size_t blocks, float* dst) {
  for (size_t b = 0; b < blocks; ++b, src += 17, dst += 32) {
    const float d = half_scale(byte_at(src, 0));
    for (size_t i = 0; i < 16; ++i) {
      dst[i] = d * doubled(byte_at(src + 1, i));
      dst[i + 16] = d * doubled(byte_at(src + 1, i) >> 4);
    }
  }
}

void mxfp4_split(const std::byte* codes, const std::byte* exponents, size_t groups, float* dst) {
  for (size_t g = 0; g < groups; ++g, codes += 16, dst += 32) {
    const float d = half_scale(byte_at(exponents, g));
    for (size_t i = 0; i < 16; ++i) {
      dst[2 * i] = d * kDoubledSigned[byte_at(codes, i) & 0x0fu];
      dst[2 * i + 1] = d * kDoubledSigned[byte_at(codes, i) >> 4];
    }
  }
}

}  // namespace moeslice::kernels::dequant
