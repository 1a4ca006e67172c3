// ggml's K-quants, 256 elements a block in sub-blocks of 16 or 32 with their own scales
// (ggml-common.h block_q2_K ... block_q6_K; gguf-py quants.py Q2_K ... Q6_K). Each element is
// (d * scale) * code [- dmin * min], the sub-block's products rounded first, as gguf-py does.
#include <cstdint>

#include "kernels/dequant/block_dequantizers.h"

namespace moeslice::kernels::dequant {
namespace {

constexpr size_t kBlock = 256;

// The 2-bit field of element e of a 256-element block from 64 bytes at `qs`: bytes hold four
// elements 32 apart within each half of 128 (bits 0-1, 2-3, 4-5, 6-7).
inline uint8_t two_bits(const std::byte* qs, size_t e) {
  return (byte_at(qs, e / 128 * 32 + e % 32) >> (2 * (e / 32 % 4))) & 3u;
}

// The 1-bit field of element e from 32 bytes at `mask`: bit e / 32 of byte e % 32.
inline uint8_t one_bit(const std::byte* mask, size_t e) {
  return (byte_at(mask, e % 32) >> (e / 32)) & 1u;
}

// The 4-bit code of element e from 128 bytes at `qs` (Q4_K, Q5_K): each 64 elements share 32
// bytes, the first 32 in the low nibbles.
inline uint8_t k_nibble(const std::byte* qs, size_t e) {
  return (byte_at(qs, e / 64 * 32 + e % 32) >> (4 * (e / 32 % 2))) & 0x0fu;
}

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

}  // namespace

// scales[16], qs[64], d, dmin: sub-blocks of 16, scale the low and min the high nibble.
void q2_k(const std::byte* src, size_t blocks, float* dst) {
  for (size_t b = 0; b < blocks; ++b, src += 84, dst += kBlock) {
    const float d = load_f16(src + 80);
    const float dmin = load_f16(src + 82);
    for (size_t j = 0; j < 16; ++j) {
      const uint8_t packed = byte_at(src, j);
      const float dl = d * static_cast<float>(packed & 0x0fu);
      const float ml = dmin * static_cast<float>(packed >> 4);
      for (size_t e = 16 * j; e < 16 * j + 16; ++e)
        dst[e] = dl * static_cast<float>(two_bits(src + 16, e)) - ml;
    }
  }
}

// hmask[32], qs[64], scales[12], d: 3-bit codes (2 low bits, the third set meaning no -4),
// sixteen 6-bit scales minus 32.
void q3_k(const std::byte* src, size_t blocks, float* dst) {
  for (size_t b = 0; b < blocks; ++b, src += 110, dst += kBlock) {
    const std::byte* scales = src + 96;
    const float d = load_f16(src + 108);
    for (size_t j = 0; j < 16; ++j) {
      const uint8_t low = (byte_at(scales, j % 8) >> (4 * (j / 8))) & 0x0fu;
      const uint8_t high = (byte_at(scales, 8 + j % 4) >> (2 * (j / 4))) & 0x03u;
      const float dl = d * static_cast<float>(static_cast<int>(low | high << 4) - 32);
      for (size_t e = 16 * j; e < 16 * j + 16; ++e) {
        const int code = two_bits(src + 32, e) - ((one_bit(src, e) ^ 1) << 2);
        dst[e] = dl * static_cast<float>(code);
      }
    }
  }
}

namespace {

// Q4_K and Q5_K: d, dmin, scales[12], then the codes; eight sub-blocks of 32, each element
// (d * scale) * code - dmin * min. `code(block, e)` reads element e's code.
template <class Code>
void scaled_min_blocks(const std::byte* src, size_t blocks, size_t block_bytes, float* dst,
                       Code code) {
  for (size_t b = 0; b < blocks; ++b, src += block_bytes, dst += kBlock) {
    const float d = load_f16(src);
    const float dmin = load_f16(src + 2);
    const ScalesMins sm = unpack_scales_mins(src + 4);
    for (size_t j = 0; j < 8; ++j) {
      const float dl = d * static_cast<float>(sm.scale[j]);
      const float ml = dmin * static_cast<float>(sm.min[j]);
      for (size_t e = 32 * j; e < 32 * j + 32; ++e)
        dst[e] = dl * static_cast<float>(code(src, e)) - ml;
    }
  }
}

}  // namespace

// qs[128] after the scales: 4-bit codes.
void q4_k(const std::byte* src, size_t blocks, float* dst) {
  scaled_min_blocks(src, blocks, 144, dst,
                    [](const std::byte* block, size_t e) { return k_nibble(block + 16, e); });
}

// qh[32], qs[128] after the scales: Q4_K's codes with a fifth bit from qh.
void q5_k(const std::byte* src, size_t blocks, float* dst) {
  scaled_min_blocks(src, blocks, 176, dst, [](const std::byte* block, size_t e) {
    return static_cast<uint8_t>(k_nibble(block + 48, e) | one_bit(block + 16, e) << 4);
  });
}

// ql[128], qh[64], scales[16] (int8), d: 6-bit codes minus 32, sub-blocks of 16.
void q6_k(const std::byte* src, size_t blocks, float* dst) {
  for (size_t b = 0; b < blocks; ++b, src += 210, dst += kBlock) {
    const float d = load_f16(src + 208);
    for (size_t j = 0; j < 16; ++j) {
      const float dl = d * static_cast<float>(static_cast<int8_t>(byte_at(src + 192, j)));
      for (size_t e = 16 * j; e < 16 * j + 16; ++e) {
        const uint8_t low = (byte_at(src, e / 128 * 64 + e % 64) >> (4 * (e / 64 % 2))) & 0x0fu;
        const int code = (low | two_bits(src + 128, e) << 4) - 32;
        dst[e] = dl * static_cast<float>(code);
      }
    }
  }
}

}  // namespace moeslice::kernels::dequant
