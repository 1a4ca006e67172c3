// FP8 E4M3 (e4m3fn: bias 7, no infinities, S.1111.111 NaN, max 448; torch.float8_e4m3fn) to fp32,
// through a 256-entry table of its exact values, times a block scale.
#include <array>
#include <cmath>
#include <limits>

#include "kernels/dequant/block_dequantizers.h"

namespace moeslice::kernels::dequant {
namespace {

std::array<float, 256> e4m3_values() {
  std::array<float, 256> values{};
  for (unsigned code = 0; code < 256; ++code) {
    const unsigned exponent = (code >> 3) & 0x0fu;
    const unsigned mantissa = code & 0x07u;
    float magnitude;
    if (exponent == 0x0f && mantissa == 0x07)
      magnitude = std::numeric_limits<float>::quiet_NaN();
    else if (exponent == 0)
      magnitude = std::ldexp(static_cast<float>(mantissa), -9);  // subnormal: m/8 * 2^-6
    else
      magnitude = std::ldexp(static_cast<float>(8 + mantissa), static_cast<int>(exponent) - 10);
    values[code] = code & 0x80u ? -magnitude : magnitude;
  }
  return values;
}

const std::array<float, 256> kE4m3 = e4m3_values();

}  // namespace

void fp8_e4m3_scaled(const std::byte* src, size_t count, float scale, float* dst) {
  for (size_t i = 0; i < count; ++i) dst[i] = kE4m3[byte_at(src, i)] * scale;
}

}  // namespace moeslice::kernels::dequant
