// Sixteen codes at a time for the block dequantizers: a vector of 16 bytes (bit fields are cut
// out of 16 consecutive code bytes with one shift and mask), and the stores that turn 16 codes
// into 16 floats with the block's scale. With AVX-512 (the build's -march=native on this
// project's machines) a store is one widening, one conversion and the scale's one or two
// operations per 16 elements; elsewhere the same operations run as plain loops. Each element is
// computed by the same IEEE operations in the same order either way (the dequantizer sources are
// compiled with -ffp-contract=off), so both paths are bit-identical to gguf-py.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#if defined(__AVX512F__)
#include <immintrin.h>
#define MOESLICE_CODE_VECTORS_AVX512 1
#endif

namespace moeslice::kernels::dequant {

#if defined(MOESLICE_CODE_VECTORS_AVX512)

struct Codes16 {
  __m128i bytes;
};
// The maskz forms with an all-ones mask are the plain instructions; GCC 12 warns about the
// unmasked intrinsics' internal _mm512_undefined (a false -Wmaybe-uninitialized).
inline constexpr __mmask16 kAll = 0xffff;
inline Codes16 load_codes(const std::byte* at) {
  return {_mm_loadu_si128(reinterpret_cast<const __m128i*>(at))};
}
// (code >> shift) & mask in every byte.
inline Codes16 bit_field(Codes16 codes, unsigned shift, uint8_t mask) {
  const __m128i shifted = _mm_srl_epi16(codes.bytes, _mm_cvtsi32_si128(static_cast<int>(shift)));
  return {_mm_and_si128(shifted, _mm_set1_epi8(static_cast<char>(mask)))};
}
// low | (high << shift) in every byte (no carries: the fields do not overlap).
inline Codes16 with_high_bits(Codes16 low, Codes16 high, unsigned shift) {
  return {_mm_or_si128(low.bytes,
                       _mm_sll_epi16(high.bytes, _mm_cvtsi32_si128(static_cast<int>(shift))))};
}
// out[l] = scale * float(code[l]) - offset
inline void store_scaled_minus(Codes16 codes, float scale, float offset, float* out) {
  const __m512 values =
      _mm512_maskz_cvtepi32_ps(kAll, _mm512_maskz_cvtepu8_epi32(kAll, codes.bytes));
  _mm512_storeu_ps(
      out, _mm512_sub_ps(_mm512_mul_ps(_mm512_set1_ps(scale), values), _mm512_set1_ps(offset)));
}
// out[l] = scale * float(int(code[l]) - zero)
inline void store_scaled_centered(Codes16 codes, int zero, float scale, float* out) {
  const __m512i centered = _mm512_maskz_sub_epi32(
      kAll, _mm512_maskz_cvtepu8_epi32(kAll, codes.bytes), _mm512_set1_epi32(zero));
  _mm512_storeu_ps(out,
                   _mm512_mul_ps(_mm512_set1_ps(scale), _mm512_maskz_cvtepi32_ps(kAll, centered)));
}
// out[l] = float(int8(code[l])) * scale
inline void store_signed_scaled(Codes16 codes, float scale, float* out) {
  const __m512 values =
      _mm512_maskz_cvtepi32_ps(kAll, _mm512_maskz_cvtepi8_epi32(kAll, codes.bytes));
  _mm512_storeu_ps(out, _mm512_mul_ps(values, _mm512_set1_ps(scale)));
}

#else

struct Codes16 {
  uint8_t bytes[16];
};
inline Codes16 load_codes(const std::byte* at) {
  Codes16 codes;
  std::memcpy(codes.bytes, at, sizeof codes.bytes);
  return codes;
}
inline Codes16 bit_field(Codes16 codes, unsigned shift, uint8_t mask) {
  for (uint8_t& b : codes.bytes) b = static_cast<uint8_t>((b >> shift) & mask);
  return codes;
}
inline Codes16 with_high_bits(Codes16 low, Codes16 high, unsigned shift) {
  for (size_t l = 0; l < 16; ++l)
    low.bytes[l] = static_cast<uint8_t>(low.bytes[l] | (high.bytes[l] << shift));
  return low;
}
inline void store_scaled_minus(Codes16 codes, float scale, float offset, float* out) {
  for (size_t l = 0; l < 16; ++l) out[l] = scale * static_cast<float>(codes.bytes[l]) - offset;
}
inline void store_scaled_centered(Codes16 codes, int zero, float scale, float* out) {
  for (size_t l = 0; l < 16; ++l)
    out[l] = scale * static_cast<float>(static_cast<int>(codes.bytes[l]) - zero);
}
inline void store_signed_scaled(Codes16 codes, float scale, float* out) {
  for (size_t l = 0; l < 16; ++l)
    out[l] = static_cast<float>(static_cast<int8_t>(codes.bytes[l])) * scale;
}

#endif

}  // namespace moeslice::kernels::dequant
