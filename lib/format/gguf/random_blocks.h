// Random but valid bytes of ggml block-quantized tensors, for fixtures: random quants with finite
// scales (f16 scales in [2^-10, 2^-6), MXFP4's E8M0 exponents and NVFP4's E4M3 scales away from
// their NaN codes), so that any dequantizer reads finite values. Element types get random bytes
// of finite values too (F32, F16, BF16 in [-1, 1); integers any).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "common/dtype.h"

namespace moeslice {

// Fills `bytes` (whole blocks or elements of `dtype`) from `seed`; the same seed, the same bytes.
void fill_random_tensor_bytes(DType dtype, std::span<std::byte> bytes, uint64_t seed);

}  // namespace moeslice
