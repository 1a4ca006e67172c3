// The per-type block dequantizers behind dequantize.h, one function per type; each reads `blocks`
// whole blocks at `src` (any alignment) and writes their elements to `dst`. Defined by family:
// legacy_quants.cpp, k_quants.cpp, iq4_quants.cpp, mxfp4.cpp (and fp8_e4m3.cpp). Also the
// little-endian field reads they share.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "common/dtype.h"

namespace moeslice::kernels::dequant {

// An f16 field of a block, widened exactly (numpy's float16 -> float32).
inline float load_f16(const std::byte* at) {
  uint16_t bits;
  std::memcpy(&bits, at, sizeof bits);
  return f16_to_f32(bits);
}
inline uint8_t byte_at(const std::byte* at, size_t i) { return static_cast<uint8_t>(at[i]); }

// Every block dequantizer has this type (the functions below are declared through it).
using BlockDequantizerFn = void(const std::byte* src, size_t blocks, float* dst);

// legacy_quants.cpp, 32 elements a block.
BlockDequantizerFn q4_0, q4_1, q5_0, q5_1, q8_0;
// k_quants.cpp, 256 elements a block.
BlockDequantizerFn q2_k, q3_k, q4_k, q5_k, q6_k;
// iq4_quants.cpp: IQ4_NL 32, IQ4_XS 256 elements a block.
BlockDequantizerFn iq4_nl, iq4_xs;
// mxfp4.cpp, 32 elements a block.
BlockDequantizerFn mxfp4;

// gpt-oss MXFP4: `groups` groups of 32 elements from 16 bytes of codes each (`codes`) and one
// E8M0 exponent each (`exponents`).
void mxfp4_split(const std::byte* codes, const std::byte* exponents, size_t groups, float* dst);
// FP8 E4M3 (e4m3fn) codes times one scale: dst[i] = value(src[i]) * scale.
void fp8_e4m3_scaled(const std::byte* src, size_t count, float scale, float* dst);

}  // namespace moeslice::kernels::dequant
