// ggml's K-quants, 256 elements a block in sub-blocks of 16 or 32 with their own scales
// (ggml-common.h block_q2_K ... block_q6_K; gguf-py quants.py Q2_K ... Q6_K). Each element is
// (d * scale) * code [- dmin * min], the sub-block's products rounded first, as gguf-py does.
//
// The loops go by group of 32 elements (g = e / 32): every bit field of a group sits in 32
// consecutive bytes at one shift, so the inner loops are plain and vectorise.
#include <cstdint>

#include "kernels/dequant/block_dequantizers.h"
#include "kernels/dequant/code_vectors.h"

namespace moeslice::kernels::dequant {
namespace {

constexpr size_t kBlock = 256;

// Q2_K's, Q3_K's and Q6_K's 2-bit fields of group g: in the 32 bytes of its half (g / 4) of
// the 64 bytes at `qs`, at bits 2 * (g % 4).
inline const std::byte* two_bit_bytes(const std::byte* qs, size_t g) { return qs + g / 4 * 32; }
inline unsigned two_bit_shift(size_t g) { return static_cast<unsigned>(2 * (g % 4)); }

// Q4_K's and Q5_K's eight 6-bit scales and mins packed in 12 bytes (gguf-py get_scale_min).
struct ScalesMins {
  uint8_t scale[8];
  uint8_t min[8];
};
ScalesMins unpack_scales_mins(const std::byte* s) {
  ScalesMins out{};
  for (size_t j = 0; j < 4; ++j) {
    out.scale[j] = byte_at(s, j) & 0x3fu;
    out.min[j] = byte_at(s, j + 4) & 0x3fu;
    out.scale[j + 4] =
        static_cast<uint8_t>((byte_at(s, j + 8) & 0x0fu) | ((byte_at(s, j) >> 2) & 0x30u));
    out.min[j + 4] =
        static_cast<uint8_t>((byte_at(s, j + 8) >> 4) | ((byte_at(s, j + 4) >> 2) & 0x30u));
  }
  return out;
}

// Q4_K and Q5_K: d, dmin, scales[12], then the codes; eight sub-blocks of 32 (one per group),
// each element (d * scale) * code - dmin * min. `codes(block, g, half)` reads elements
// 16 * half .. 16 * half + 15 of group g.
template <class Codes>
void scaled_min_blocks(const std::byte* src, size_t blocks, size_t block_bytes, float* dst,
                       Codes codes) {
  for (size_t b = 0; b < blocks; ++b, src += block_bytes, dst += kBlock) {
    const float d = load_f16(src);
    const float dmin = load_f16(src + 2);
    const ScalesMins sm = unpack_scales_mins(src + 4);
    for (size_t g = 0; g < 8; ++g) {
      const float dl = d * static_cast<float>(sm.scale[g]);
      const float ml = dmin * static_cast<float>(sm.min[g]);
      for (size_t half = 0; half < 2; ++half)
        store_scaled_minus(codes(src, g, half), dl, ml, dst + 32 * g + 16 * half);
    }
  }
}

// Q4_K's and Q5_K's 4-bit codes of group g from the 128 bytes at `qs`: each pair of groups shares
// 32 bytes, the even group in the low nibbles.
inline Codes16 k_nibbles(const std::byte* qs, size_t g, size_t half) {
  return bit_field(load_codes(qs + g / 2 * 32 + 16 * half), static_cast<unsigned>(4 * (g % 2)),
                   0x0f);
}

}  // namespace

// scales[16], qs[64], d, dmin: sub-blocks of 16, scale the low and min the high nibble.
void q2_k(const std::byte* src, size_t blocks, float* dst) {
  for (size_t b = 0; b < blocks; ++b, src += 84, dst += kBlock) {
    const float d = load_f16(src + 80);
    const float dmin = load_f16(src + 82);
    for (size_t g = 0; g < 8; ++g) {
      const std::byte* q = two_bit_bytes(src + 16, g);
      const unsigned shift = two_bit_shift(g);
      for (size_t half = 0; half < 2; ++half) {
        const uint8_t packed = byte_at(src, 2 * g + half);
        const float dl = d * static_cast<float>(packed & 0x0fu);
        const float ml = dmin * static_cast<float>(packed >> 4);
        for (size_t l = 16 * half; l < 16 * half + 16; ++l)
          dst[32 * g + l] = dl * static_cast<float>((byte_at(q, l) >> shift) & 3u) - ml;
      }
    }
  }
}

// hmask[32], qs[64], scales[12], d: 3-bit codes (2 low bits; the third, bit g of hmask[l],
// set meaning no -4), sixteen 6-bit scales minus 32.
void q3_k(const std::byte* src, size_t blocks, float* dst) {
  for (size_t b = 0; b < blocks; ++b, src += 110, dst += kBlock) {
    const std::byte* scales = src + 96;
    const float d = load_f16(src + 108);
    for (size_t g = 0; g < 8; ++g) {
      const std::byte* q = two_bit_bytes(src + 32, g);
      const unsigned shift = two_bit_shift(g);
      for (size_t half = 0; half < 2; ++half) {
        const size_t j = 2 * g + half;
        const uint8_t low = (byte_at(scales, j % 8) >> (4 * (j / 8))) & 0x0fu;
        const uint8_t high = (byte_at(scales, 8 + j % 4) >> (2 * (j / 4))) & 0x03u;
        const float dl = d * static_cast<float>(static_cast<int>(low | high << 4) - 32);
        for (size_t l = 16 * half; l < 16 * half + 16; ++l) {
          const int missing = ((byte_at(src, l) >> g) & 1) ^ 1;
          const int code = ((byte_at(q, l) >> shift) & 3) - (missing << 2);
          dst[32 * g + l] = dl * static_cast<float>(code);
        }
      }
    }
  }
}

// qs[128] after the scales: 4-bit codes.
void q4_k(const std::byte* src, size_t blocks, float* dst) {
  scaled_min_blocks(src, blocks, 144, dst, [](const std::byte* block, size_t g, size_t half) {
    return k_nibbles(block + 16, g, half);
  });
}

// qh[32], qs[128] after the scales: Q4_K's codes with a fifth bit, bit g of qh[l].
void q5_k(const std::byte* src, size_t blocks, float* dst) {
  scaled_min_blocks(src, blocks, 176, dst, [](const std::byte* block, size_t g, size_t half) {
    const Codes16 fifth =
        bit_field(load_codes(block + 16 + 16 * half), static_cast<unsigned>(g), 1);
    return with_high_bits(k_nibbles(block + 48, g, half), fifth, 4);
  });
}

// ql[128], qh[64], scales[16] (int8), d: 6-bit codes minus 32, sub-blocks of 16. The low 4 bits
// of group g are in the 32 bytes at ql + 64 * (g / 4) + 32 * (g % 2), nibble (g / 2) % 2; the
// high 2 bits as Q2_K's codes.
void q6_k(const std::byte* src, size_t blocks, float* dst) {
  for (size_t b = 0; b < blocks; ++b, src += 210, dst += kBlock) {
    const float d = load_f16(src + 208);
    for (size_t g = 0; g < 8; ++g) {
      const std::byte* low_bytes = src + 64 * (g / 4) + 32 * (g % 2);
      const unsigned low_shift = static_cast<unsigned>(4 * (g / 2 % 2));
      const std::byte* high_bytes = two_bit_bytes(src + 128, g);
      const unsigned high_shift = two_bit_shift(g);
      for (size_t half = 0; half < 2; ++half) {
        const float dl =
            d * static_cast<float>(static_cast<int8_t>(byte_at(src + 192, 2 * g + half)));
        const Codes16 low = bit_field(load_codes(low_bytes + 16 * half), low_shift, 0x0f);
        const Codes16 high = bit_field(load_codes(high_bytes + 16 * half), high_shift, 0x03);
        store_scaled_centered(with_high_bits(low, high, 4), 32, dl, dst + 32 * g + 16 * half);
      }
    }
  }
}

}  // namespace moeslice::kernels::dequant
