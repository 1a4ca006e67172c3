// Random valid ggml blocks: where each block type keeps its scales (ggml-common.h).
#include "format/gguf/random_blocks.h"

#include <cstring>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

namespace moeslice {
namespace {

// Offsets of the f16 scales (d, and m/dmin/s where the block has one) inside one block.
std::vector<uint32_t> f16_scale_offsets(DType dtype) {
  switch (dtype) {
    case DType::Q4_0:
    case DType::Q5_0:
    case DType::Q8_0:
    case DType::IQ2_XXS:
    case DType::IQ2_XS:
    case DType::IQ3_XXS:
    case DType::IQ1_S:
    case DType::IQ4_NL:
    case DType::IQ3_S:
    case DType::IQ2_S:
    case DType::IQ4_XS:
    case DType::Q1_0:
    case DType::Q2_0:
      return {0};
    case DType::Q4_1:
    case DType::Q5_1:
    case DType::Q8_1:
    case DType::Q4_K:
    case DType::Q5_K:
      return {0, 2};
    case DType::Q2_K:
      return {80, 82};  // after scales[16] and qs[64]
    case DType::Q3_K:
      return {108};  // after hmask[32], qs[64], scales[12]
    case DType::Q6_K:
      return {208};  // after ql[128], qh[64], scales[16]
    case DType::TQ1_0:
      return {52};  // after qs[48], qh[4]
    case DType::TQ2_0:
      return {64};  // after qs[64]
    default:
      return {};  // Q8_K (f32 d), IQ1_M (scale in its scales), MXFP4, NVFP4: below
  }
}

void store_u16(std::byte* at, uint16_t value) { std::memcpy(at, &value, 2); }

}  // namespace

void fill_random_tensor_bytes(DType dtype, std::span<std::byte> bytes, uint64_t seed) {
  std::mt19937_64 random(seed);
  std::uniform_real_distribution<float> unit(-1.0f, 1.0f);
  std::uniform_real_distribution<float> scale(1.0f / 1024, 1.0f / 64);
  const auto block = dtype_block(dtype);
  if (!block) {
    const unsigned bits = dtype_bits(dtype);
    if (is_compute_float(dtype)) {
      const size_t count = bytes.size() * 8 / bits;
      std::vector<float> values(count);
      for (float& value : values) value = unit(random);
      convert_from_f32(dtype, values.data(), bytes.data(), count);
      return;
    }
    for (std::byte& byte : bytes) byte = static_cast<std::byte>(random() & 0xff);
    return;
  }
  if (bytes.size() % block->bytes != 0)
    throw std::logic_error("fill_random_tensor_bytes: " + std::to_string(bytes.size()) +
                           " bytes are not whole " + std::string(dtype_name(dtype)) + " blocks");
  for (std::byte& byte : bytes) byte = static_cast<std::byte>(random() & 0xff);
  const auto offsets = f16_scale_offsets(dtype);
  for (size_t start = 0; start < bytes.size(); start += block->bytes) {
    std::byte* at = bytes.data() + start;
    for (uint32_t offset : offsets) store_u16(at + offset, f32_to_f16(scale(random)));
    if (dtype == DType::Q8_K) {
      const float d = scale(random);
      std::memcpy(at, &d, 4);
    } else if (dtype == DType::MXFP4) {
      at[0] = static_cast<std::byte>(118 + random() % 16);  // 2^-9 ... 2^6, never 0xff (NaN)
    } else if (dtype == DType::NVFP4) {
      for (int i = 0; i < 4; ++i) at[i] = static_cast<std::byte>(0x28 + random() % 16);
    }
  }
}

}  // namespace moeslice
