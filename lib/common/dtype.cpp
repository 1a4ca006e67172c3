// Dtype names, sizes and the F16/BF16 <-> F32 conversions.
#include "common/dtype.h"

#include <array>
#include <bit>
#include <cassert>
#include <cmath>
#include <stdexcept>
#include <string>

namespace moeslice {
namespace {

struct DTypeInfo {
  DType dtype;
  std::string_view name;
  unsigned bits;          // 0 for a block type
  DTypeBlock block = {};  // elements 0 for an element type
};

// ggml's super-block size of the K-quants and most IQ types.
constexpr uint32_t kQK = 256;

// Block sizes as ggml's type traits give them (ggml-common.h, what llama.cpp reads files by);
// gguf-py's GGML_QUANT_SIZES agrees but for Q8_1, a type no file holds.
constexpr std::array<DTypeInfo, kAllDTypeCount> kDTypes = {{
    {DType::BOOL, "BOOL", 8},
    {DType::F4, "F4", 4},
    {DType::F6_E2M3, "F6_E2M3", 6},
    {DType::F6_E3M2, "F6_E3M2", 6},
    {DType::U8, "U8", 8},
    {DType::I8, "I8", 8},
    {DType::F8_E5M2, "F8_E5M2", 8},
    {DType::F8_E4M3, "F8_E4M3", 8},
    {DType::F8_E8M0, "F8_E8M0", 8},
    {DType::I16, "I16", 16},
    {DType::U16, "U16", 16},
    {DType::F16, "F16", 16},
    {DType::BF16, "BF16", 16},
    {DType::I32, "I32", 32},
    {DType::U32, "U32", 32},
    {DType::F32, "F32", 32},
    {DType::C64, "C64", 64},
    {DType::F64, "F64", 64},
    {DType::I64, "I64", 64},
    {DType::U64, "U64", 64},
    {DType::Q4_0, "Q4_0", 0, {32, 2 + 16}},
    {DType::Q4_1, "Q4_1", 0, {32, 2 + 2 + 16}},
    {DType::Q5_0, "Q5_0", 0, {32, 2 + 4 + 16}},
    {DType::Q5_1, "Q5_1", 0, {32, 2 + 2 + 4 + 16}},
    {DType::Q8_0, "Q8_0", 0, {32, 2 + 32}},
    {DType::Q8_1, "Q8_1", 0, {32, 2 + 2 + 32}},  // ggml: 36 (gguf-py says 40, wrongly)
    {DType::Q2_K, "Q2_K", 0, {kQK, 2 + 2 + kQK / 16 + kQK / 4}},
    {DType::Q3_K, "Q3_K", 0, {kQK, 2 + kQK / 4 + kQK / 8 + 12}},
    {DType::Q4_K, "Q4_K", 0, {kQK, 2 + 2 + kQK / 2 + 12}},
    {DType::Q5_K, "Q5_K", 0, {kQK, 2 + 2 + kQK / 2 + kQK / 8 + 12}},
    {DType::Q6_K, "Q6_K", 0, {kQK, 2 + kQK / 2 + kQK / 4 + kQK / 16}},
    {DType::Q8_K, "Q8_K", 0, {kQK, 4 + kQK + kQK / 8}},
    {DType::IQ2_XXS, "IQ2_XXS", 0, {kQK, 2 + kQK / 4}},
    {DType::IQ2_XS, "IQ2_XS", 0, {kQK, 2 + kQK / 4 + kQK / 32}},
    {DType::IQ3_XXS, "IQ3_XXS", 0, {kQK, 2 + kQK / 4 + kQK / 8}},
    {DType::IQ1_S, "IQ1_S", 0, {kQK, 2 + kQK / 8 + kQK / 16}},
    {DType::IQ4_NL, "IQ4_NL", 0, {32, 2 + 16}},
    {DType::IQ3_S, "IQ3_S", 0, {kQK, 2 + kQK / 4 + kQK / 8 + kQK / 32 + 4}},
    {DType::IQ2_S, "IQ2_S", 0, {kQK, 2 + kQK / 4 + kQK / 16}},
    {DType::IQ4_XS, "IQ4_XS", 0, {kQK, 2 + 2 + kQK / 2 + kQK / 64}},
    {DType::IQ1_M, "IQ1_M", 0, {kQK, kQK / 8 + kQK / 16 + kQK / 32}},
    {DType::TQ1_0, "TQ1_0", 0, {kQK, 2 + 4 * 13}},
    {DType::TQ2_0, "TQ2_0", 0, {kQK, 2 + 64}},
    {DType::MXFP4, "MXFP4", 0, {32, 1 + 16}},
    {DType::NVFP4, "NVFP4", 0, {64, 4 + 32}},
    {DType::Q1_0, "Q1_0", 0, {128, 2 + 128 / 8}},
    {DType::Q2_0, "Q2_0", 0, {64, 2 + 64 / 4}},
}};

const DTypeInfo& info(DType dtype) {
  const auto& entry = kDTypes[static_cast<size_t>(dtype)];
  assert(entry.dtype == dtype);
  return entry;
}

// A conversion asked for a dtype that is not F32/BF16/F16: the caller skipped its
// is_compute_float check, so this is a bug in moeslice, not something the user can fix.
[[noreturn]] void throw_not_compute_float(const char* function, DType dtype) {
  throw std::logic_error(std::string(function) + ": dtype " + std::string(info(dtype).name) +
                         " is not F32, BF16 or F16 (callers must check is_compute_float first)");
}

}  // namespace

std::string_view dtype_name(DType dtype) { return info(dtype).name; }

unsigned dtype_bits(DType dtype) { return info(dtype).bits; }

std::optional<DTypeBlock> dtype_block(DType dtype) {
  const DTypeBlock block = info(dtype).block;
  if (block.elements == 0) return std::nullopt;
  return block;
}

std::optional<DType> parse_dtype(std::string_view name) {
  for (size_t i = 0; i < kSafetensorsDTypeCount; ++i)
    if (kDTypes[i].name == name) return kDTypes[i].dtype;
  return std::nullopt;
}

bool is_compute_float(DType dtype) {
  return dtype == DType::F32 || dtype == DType::F16 || dtype == DType::BF16;
}

std::string_view all_dtype_names() {
  return "BOOL, F4, F6_E2M3, F6_E3M2, U8, I8, F8_E5M2, F8_E4M3, F8_E8M0, I16, U16, F16, BF16, "
         "I32, U32, F32, C64, F64, I64, U64";
}

float f16_to_f32(uint16_t bits) {
  const uint32_t sign = static_cast<uint32_t>(bits & 0x8000u) << 16;
  const uint32_t exponent = (bits >> 10) & 0x1fu;
  uint32_t mantissa = bits & 0x3ffu;
  uint32_t result;
  if (exponent == 0) {
    if (mantissa == 0) {
      result = sign;
    } else {  // subnormal: normalise
      int shift = 0;
      while ((mantissa & 0x400u) == 0) {
        mantissa <<= 1;
        ++shift;
      }
      mantissa &= 0x3ffu;
      result = sign | static_cast<uint32_t>(127 - 15 + 1 - shift) << 23 | mantissa << 13;
    }
  } else if (exponent == 0x1f) {
    result = sign | 0x7f800000u | mantissa << 13;
  } else {
    result = sign | (exponent + 127 - 15) << 23 | mantissa << 13;
  }
  return std::bit_cast<float>(result);
}

uint16_t f32_to_f16(float value) {
  const uint32_t bits = std::bit_cast<uint32_t>(value);
  const uint32_t sign = (bits >> 16) & 0x8000u;
  const uint32_t abs_bits = bits & 0x7fffffffu;
  if (abs_bits > 0x7f800000u) return static_cast<uint16_t>(sign | 0x7e00u);   // NaN
  if (abs_bits >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // overflow -> inf
  if (abs_bits < 0x38800000u) {  // result is subnormal or zero
    const float magnitude = std::bit_cast<float>(abs_bits);
    // Adding 0.5 (2^-1) aligns the f16 subnormal grid (2^-24) with fp32's mantissa LSBs, so the
    // hardware add performs round-to-nearest-even for us.
    const uint32_t rounded = std::bit_cast<uint32_t>(magnitude + 0.5f) - 0x3f000000u;
    return static_cast<uint16_t>(sign | rounded);
  }
  const uint32_t rounding = 0xfffu + ((abs_bits >> 13) & 1u);
  const uint32_t rebiased = abs_bits - ((127u - 15u) << 23) + rounding;
  return static_cast<uint16_t>(sign | (rebiased >> 13));
}

uint8_t f32_to_e4m3(float value) {
  const uint8_t sign = std::signbit(value) ? 0x80 : 0;
  if (std::isnan(value)) return sign | 0x7f;
  const float magnitude = std::fabs(value);
  // The finite magnitudes of codes 0..0x7e rise with the code: find the nearest by bisection
  // (exact: every code's value and every midpoint between neighbours is an fp32 number).
  auto code_value = [](unsigned code) {
    return code < 8
               ? std::ldexp(static_cast<float>(code), -9)
               : std::ldexp(static_cast<float>(8 + (code & 7u)), static_cast<int>(code >> 3) - 10);
  };
  unsigned low = 0, high = 0x7e;
  if (magnitude >= code_value(high)) return sign | 0x7e;  // 448 and beyond saturate
  while (high - low > 1) {  // code_value(low) <= magnitude < code_value(high)
    const unsigned middle = (low + high) / 2;
    (code_value(middle) <= magnitude ? low : high) = middle;
  }
  const float below = magnitude - code_value(low), above = code_value(high) - magnitude;
  const unsigned nearest = below < above ? low : above < below ? high : (low % 2 == 0 ? low : high);
  return static_cast<uint8_t>(sign | nearest);
}

void convert_to_f32(DType dtype, const std::byte* src, float* dst, size_t count) {
  switch (dtype) {
    case DType::F32:
      std::memcpy(dst, src, count * sizeof(float));
      return;
    case DType::BF16:
      for (size_t i = 0; i < count; ++i) {
        uint16_t bits;
        std::memcpy(&bits, src + 2 * i, 2);
        dst[i] = bf16_to_f32(bits);
      }
      return;
    case DType::F16:
      for (size_t i = 0; i < count; ++i) {
        uint16_t bits;
        std::memcpy(&bits, src + 2 * i, 2);
        dst[i] = f16_to_f32(bits);
      }
      return;
    default:
      throw_not_compute_float("convert_to_f32", dtype);
  }
}

void convert_from_f32(DType dtype, const float* src, std::byte* dst, size_t count) {
  switch (dtype) {
    case DType::F32:
      std::memcpy(dst, src, count * sizeof(float));
      return;
    case DType::BF16:
      for (size_t i = 0; i < count; ++i) {
        const uint16_t bits = f32_to_bf16(src[i]);
        std::memcpy(dst + 2 * i, &bits, 2);
      }
      return;
    case DType::F16:
      for (size_t i = 0; i < count; ++i) {
        const uint16_t bits = f32_to_f16(src[i]);
        std::memcpy(dst + 2 * i, &bits, 2);
      }
      return;
    default:
      throw_not_compute_float("convert_from_f32", dtype);
  }
}

}  // namespace moeslice
