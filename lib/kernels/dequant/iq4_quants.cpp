// ggml's non-linear 4-bit types (ggml-common.h, gguf-py quants.py): IQ4_NL (32 elements: d and
// 4-bit indices into a fixed table of 16 int8 levels, laid out as Q4_0's codes) and IQ4_XS (256
// elements: d and eight 6-bit sub-block scales minus 32, the same table).
#include <cstdint>

#include "kernels/dequant/block_dequantizers.h"

namespace moeslice::kernels::dequant {
namespace {

// kvalues_iq4nl
constexpr int8_t kLevels[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                1,    13,   25,  38,  53,  69,  89,  113};

inline float level(uint8_t index) { return static_cast<float>(kLevels[index & 0x0fu]); }

}  // namespace

void iq4_nl(const std::byte* src, size_t blocks, float* dst) {
  for (size_t b = 0; b < blocks; ++b, src += 18, dst += 32) {
    const float d = load_f16(src);
    for (size_t i = 0; i < 16; ++i) {
      dst[i] = d * level(byte_at(src + 2, i));
      dst[i + 16] = d * level(byte_at(src + 2, i) >> 4);
    }
  }
}

// d, scales_h (u16: 2 high bits per sub-block), scales_l[4] (a nibble per sub-block), qs[128]
// (16 bytes per sub-block of 32, as IQ4_NL's).
void iq4_xs(const std::byte* src, size_t blocks, float* dst) {
  for (size_t b = 0; b < blocks; ++b, src += 136, dst += 256) {
    const float d = load_f16(src);
    const unsigned high_bits = byte_at(src, 2) | byte_at(src, 3) << 8;
    for (size_t j = 0; j < 8; ++j) {
      const unsigned low = (byte_at(src + 4, j / 2) >> (4 * (j % 2))) & 0x0fu;
      const unsigned high = (high_bits >> (2 * j)) & 0x03u;
      const float dl = d * static_cast<float>(static_cast<int>(low | high << 4) - 32);
      const std::byte* qs = src + 8 + 16 * j;
      float* out = dst + 32 * j;
      for (size_t i = 0; i < 16; ++i) {
        out[i] = dl * level(byte_at(qs, i));
        out[i + 16] = dl * level(byte_at(qs, i) >> 4);
      }
    }
  }
}

}  // namespace moeslice::kernels::dequant
