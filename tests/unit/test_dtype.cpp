// Dtype names and sizes, and the F16/BF16 <-> F32 conversions: exhaustive round trips over every
// 16-bit pattern, round-to-nearest-even on crafted values, and agreement with the CPU's own F16C
// conversion instructions; conversions of any other dtype throw std::logic_error.
#include <doctest/doctest.h>

#include <array>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/dtype.h"
#include "kernels/dequant/block_dequantizers.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define MOESLICE_TEST_HAVE_F16C 1
#endif

namespace moeslice {
namespace {

constexpr size_t kDTypeCount = 20;

DType dtype_at(size_t index) { return static_cast<DType>(index); }

float f32_of(uint32_t bits) { return std::bit_cast<float>(bits); }
uint32_t bits_of(float value) { return std::bit_cast<uint32_t>(value); }

bool f16_is_nan(uint16_t bits) { return (bits & 0x7c00u) == 0x7c00u && (bits & 0x3ffu) != 0; }
bool bf16_is_nan(uint16_t bits) { return (bits & 0x7f80u) == 0x7f80u && (bits & 0x7fu) != 0; }

TEST_CASE("every dtype name parses back to its dtype") {
  for (size_t i = 0; i < kDTypeCount; ++i) {
    const DType dtype = dtype_at(i);
    const auto name = dtype_name(dtype);
    CAPTURE(name);
    REQUIRE(parse_dtype(name).has_value());
    CHECK(*parse_dtype(name) == dtype);
    CHECK(all_dtype_names().find(name) != std::string_view::npos);
  }
  CHECK_FALSE(parse_dtype("f32").has_value());
  CHECK_FALSE(parse_dtype("F8").has_value());
  CHECK_FALSE(parse_dtype("").has_value());
  CHECK_FALSE(parse_dtype("F32 ").has_value());
}

TEST_CASE("dtype sizes are the safetensors format's bit widths") {
  const std::pair<std::string_view, unsigned> expected[] = {
      {"BOOL", 8}, {"F4", 4},      {"F6_E2M3", 6}, {"F6_E3M2", 6}, {"U8", 8},
      {"I8", 8},   {"F8_E5M2", 8}, {"F8_E4M3", 8}, {"F8_E8M0", 8}, {"I16", 16},
      {"U16", 16}, {"F16", 16},    {"BF16", 16},   {"I32", 32},    {"U32", 32},
      {"F32", 32}, {"C64", 64},    {"F64", 64},    {"I64", 64},    {"U64", 64},
  };
  static_assert(std::size(expected) == kDTypeCount);
  for (const auto& [name, bits] : expected) {
    CAPTURE(name);
    CHECK(dtype_bits(*parse_dtype(name)) == bits);
  }
}

TEST_CASE("only F32, F16 and BF16 are compute floats") {
  for (size_t i = 0; i < kDTypeCount; ++i) {
    const DType dtype = dtype_at(i);
    CAPTURE(dtype_name(dtype));
    CHECK(is_compute_float(dtype) ==
          (dtype == DType::F32 || dtype == DType::F16 || dtype == DType::BF16));
  }
}

// ---- F16 --------------------------------------------------------------------------------------

TEST_CASE("f16 -> f32 gives the exact value of known bit patterns") {
  CHECK(f16_to_f32(0x0000) == 0.0f);
  CHECK(std::signbit(f16_to_f32(0x8000)));
  CHECK(f16_to_f32(0x3c00) == 1.0f);
  CHECK(f16_to_f32(0xc000) == -2.0f);
  CHECK(f16_to_f32(0x3555) == 0x1.554p-2f);
  CHECK(f16_to_f32(0x7bff) == 65504.0f);
  CHECK(f16_to_f32(0x0400) == 0x1p-14f);    // smallest normal
  CHECK(f16_to_f32(0x0001) == 0x1p-24f);    // smallest subnormal
  CHECK(f16_to_f32(0x03ff) == 0x3ffp-24f);  // largest subnormal
  CHECK(f16_to_f32(0x7c00) == std::numeric_limits<float>::infinity());
  CHECK(f16_to_f32(0xfc00) == -std::numeric_limits<float>::infinity());
  CHECK(std::isnan(f16_to_f32(0x7e00)));
  CHECK(std::isnan(f16_to_f32(0x7c01)));
}

TEST_CASE("f16 -> f32 -> f16 round-trips all 65536 bit patterns, NaN staying NaN") {
  int nans = 0;
  for (uint32_t bits = 0; bits <= 0xffffu; ++bits) {
    const auto half = static_cast<uint16_t>(bits);
    const uint16_t back = f32_to_f16(f16_to_f32(half));
    if (f16_is_nan(half)) {
      ++nans;
      CHECK_MESSAGE(f16_is_nan(back), "NaN " << bits << " came back as " << back);
      CHECK((back & 0x8000u) == (half & 0x8000u));
    } else if (back != half) {
      FAIL_CHECK("f16 " << bits << " came back as " << back);
    }
  }
  CHECK(nans == 2 * 1023);
}

TEST_CASE("f32 -> f16 rounds to nearest, ties to even") {
  const std::pair<float, uint16_t> cases[] = {
      {0.0f, 0x0000},
      {-0.0f, 0x8000},
      {1.0f, 0x3c00},
      {1.0f + 0x1p-11f, 0x3c00},             // tie between 1 and 1+2^-10: the even one, 1
      {1.0f + 0x3p-11f, 0x3c02},             // tie between 1+2^-10 and 1+2^-9: the even one
      {1.0f + 0x1p-11f + 0x1p-23f, 0x3c01},  // just above the tie: up
      {1.0f + 0x1p-11f - 0x1p-24f, 0x3c00},  // just below: down
      {2047.0f, 0x67ff},
      {2049.0f, 0x6800},   // tie between 2048 and 2050: 2048 (even)
      {2051.0f, 0x6802},   // tie between 2050 and 2052: 2052 (even)
      {65504.0f, 0x7bff},  // max finite
      {65519.0f, 0x7bff},  // below the tie with 65536
      {65520.0f, 0x7c00},  // the tie with 2^16 rounds to even: infinity
      {-65520.0f, 0xfc00},
      {1.0e10f, 0x7c00},
      {std::numeric_limits<float>::max(), 0x7c00},
      {std::numeric_limits<float>::infinity(), 0x7c00},
      {-std::numeric_limits<float>::infinity(), 0xfc00},
      {0x1p-14f, 0x0400},             // smallest normal
      {0x1p-24f, 0x0001},             // smallest subnormal
      {0x1p-25f, 0x0000},             // tie between 0 and 2^-24: 0 (even)
      {0x1p-25f + 0x1p-40f, 0x0001},  // just above that tie
      {0x3p-25f, 0x0002},             // tie between 2^-24 and 2^-23: even
      {0x5p-25f, 0x0002},             // tie between 2*2^-24 and 3*2^-24: even
      {0x3ffp-24f, 0x03ff},           // largest subnormal
      {0x7ffp-25f, 0x0400},           // tie between the largest subnormal and 2^-14: even
      {0x1p-26f, 0x0000},
      {-0x1p-24f, 0x8001},
      {-0x1p-26f, 0x8000},  // underflows to -0
      {std::numeric_limits<float>::denorm_min(), 0x0000},
      {0x1.ffep-1f, 0x3c00},  // 0.99993896484375 rounds up into the next binade
  };
  for (const auto& [value, expected] : cases) {
    CAPTURE(value);
    CHECK(f32_to_f16(value) == expected);
  }
  const uint16_t nan = f32_to_f16(std::numeric_limits<float>::quiet_NaN());
  CHECK(f16_is_nan(nan));
  CHECK(f16_is_nan(f32_to_f16(f32_of(0x7f800001u))));  // a signalling NaN must not become inf
  CHECK(f16_is_nan(f32_to_f16(f32_of(0xffc00000u))));
}

// ---- BF16 -------------------------------------------------------------------------------------

TEST_CASE("bf16 -> f32 -> bf16 round-trips all 65536 bit patterns, NaN staying NaN") {
  for (uint32_t bits = 0; bits <= 0xffffu; ++bits) {
    const auto brain = static_cast<uint16_t>(bits);
    const float value = bf16_to_f32(brain);
    CHECK(bits_of(value) == bits << 16);  // widening is exact: the bits move up
    const uint16_t back = f32_to_bf16(value);
    if (bf16_is_nan(brain)) {
      CHECK_MESSAGE(bf16_is_nan(back), "NaN " << bits << " came back as " << back);
      CHECK((back & 0x8000u) == (brain & 0x8000u));
    } else if (back != brain) {
      FAIL_CHECK("bf16 " << bits << " came back as " << back);
    }
  }
}

TEST_CASE("f32 -> bf16 rounds to nearest, ties to even") {
  const std::pair<uint32_t, uint16_t> cases[] = {
      {0x3f800000u, 0x3f80},                         // 1
      {0x3f808000u, 0x3f80},                         // tie between 0x3f80 and 0x3f81: even
      {0x3f818000u, 0x3f82},                         // tie between 0x3f81 and 0x3f82: even
      {0x3f808001u, 0x3f81},                         // just above a tie
      {0x3f817fffu, 0x3f81},                         // just below a tie
      {0x3f80ffffu, 0x3f81}, {0x3fffffffu, 0x4000},  // carries into the exponent
      {0x7f7f0000u, 0x7f7f},                         // max finite bf16
      {0x7f7f8000u, 0x7f80},                         // tie with infinity: even, so infinity
      {0x7f7fffffu, 0x7f80},                         // max finite fp32 overflows to infinity
      {0xff7fffffu, 0xff80}, {0x7f800000u, 0x7f80},  // infinity
      {0xff800000u, 0xff80}, {0x00000000u, 0x0000}, {0x80000000u, 0x8000},  // -0
      {0x00008000u, 0x0000},  // fp32 subnormal tie between 0 and the smallest bf16: even
      {0x00018000u, 0x0002},  // subnormal tie: even
      {0x00008001u, 0x0001}, {0x007fffffu, 0x0080},  // largest fp32 subnormal rounds up to the
                                                     // smallest normal
  };
  for (const auto& [bits, expected] : cases) {
    CAPTURE(bits);
    CHECK(f32_to_bf16(f32_of(bits)) == expected);
  }
  CHECK(bf16_is_nan(f32_to_bf16(f32_of(0x7f800001u))));  // must not truncate to infinity
  CHECK(bf16_is_nan(f32_to_bf16(f32_of(0xff800001u))));
  CHECK(bf16_is_nan(f32_to_bf16(std::numeric_limits<float>::quiet_NaN())));
}

// ---- agreement with the hardware --------------------------------------------------------------

#if MOESLICE_TEST_HAVE_F16C
__attribute__((target("f16c"))) uint16_t hardware_f32_to_f16(float value) {
  return static_cast<uint16_t>(_cvtss_sh(value, _MM_FROUND_TO_NEAREST_INT));
}

__attribute__((target("f16c"))) float hardware_f16_to_f32(uint16_t bits) { return _cvtsh_ss(bits); }

// Same bits, or both NaN with the same sign (the hardware keeps NaN payloads; we, like PyTorch,
// return the canonical quiet NaN).
void check_f16_matches_hardware(float value) {
  const uint16_t ours = f32_to_f16(value);
  const uint16_t theirs = hardware_f32_to_f16(value);
  if (std::isnan(value)) {
    if (!f16_is_nan(ours) || (ours & 0x8000u) != (theirs & 0x8000u))
      FAIL_CHECK("f32 bits " << bits_of(value) << ": ours " << ours << ", F16C " << theirs);
  } else if (ours != theirs) {
    FAIL_CHECK("f32 " << value << " (bits " << bits_of(value) << "): ours " << ours << ", F16C "
                      << theirs);
  }
}

TEST_CASE("f16 conversions agree with the CPU's F16C instructions") {
  if (!__builtin_cpu_supports("f16c")) {
    MESSAGE("this CPU has no F16C; skipped");
    return;
  }
  SUBCASE("f16 -> f32 for all 65536 bit patterns") {
    for (uint32_t bits = 0; bits <= 0xffffu; ++bits) {
      const auto half = static_cast<uint16_t>(bits);
      const float ours = f16_to_f32(half);
      const float theirs = hardware_f16_to_f32(half);
      if (f16_is_nan(half)) {
        CHECK(std::isnan(ours));
        CHECK(std::signbit(ours) == std::signbit(theirs));
      } else if (bits_of(ours) != bits_of(theirs)) {
        FAIL_CHECK("f16 " << bits << ": ours " << ours << ", F16C " << theirs);
      }
    }
  }
  SUBCASE("f32 -> f16 at every tie between neighbouring f16 values and one ulp either side") {
    for (uint32_t bits = 0; bits < 0x7c00u; ++bits) {
      const float low = hardware_f16_to_f32(static_cast<uint16_t>(bits));
      const float high =
          bits == 0x7bffu ? 65536.0f : hardware_f16_to_f32(static_cast<uint16_t>(bits + 1));
      const float tie = (low + high) / 2;  // exact: both have at most 11 significant bits
      for (const float value : {low, tie, std::nextafter(tie, 0.0f),
                                std::nextafter(tie, std::numeric_limits<float>::infinity())}) {
        check_f16_matches_hardware(value);
        check_f16_matches_hardware(-value);
      }
    }
  }
  SUBCASE("f32 -> f16 over a stride through all 2^32 bit patterns") {
    for (uint64_t bits = 0; bits <= 0xffffffffu; bits += 4099)
      check_f16_matches_hardware(f32_of(static_cast<uint32_t>(bits)));
  }
  SUBCASE("f32 -> f16 for random floats") {
    std::mt19937 random(12345);
    std::uniform_int_distribution<uint32_t> any_bits;
    // Exponents from 2^-27 to 2^17: the range where f16 rounding, underflow and overflow happen.
    std::uniform_int_distribution<uint32_t> f16_range_exponent(100, 144);
    for (int i = 0; i < 2'000'000; ++i) {
      check_f16_matches_hardware(f32_of(any_bits(random)));
      const uint32_t near = (any_bits(random) & 0x807fffffu) | f16_range_exponent(random) << 23;
      check_f16_matches_hardware(f32_of(near));
    }
  }
}
#endif

// ---- buffers ----------------------------------------------------------------------------------

TEST_CASE("convert_to_f32 and convert_from_f32 work on unaligned buffers of each compute float") {
  const std::vector<float> values = {0.0f, -1.5f, 3.140625f, 65504.0f, 0x1p-24f, -0.0f, 1024.0f};
  for (const DType dtype : {DType::F32, DType::F16, DType::BF16}) {
    CAPTURE(dtype_name(dtype));
    const size_t element = dtype_bits(dtype) / 8;
    // One byte in, so every element is misaligned.
    std::vector<std::byte> storage(1 + values.size() * element, std::byte{0x5a});
    convert_from_f32(dtype, values.data(), storage.data() + 1, values.size());
    CHECK(storage[0] == std::byte{0x5a});
    std::vector<float> back(values.size());
    convert_to_f32(dtype, storage.data() + 1, back.data(), values.size());
    for (size_t i = 0; i < values.size(); ++i) {
      float expected = values[i];
      if (dtype == DType::F16) expected = f16_to_f32(f32_to_f16(values[i]));
      if (dtype == DType::BF16) expected = bf16_to_f32(f32_to_bf16(values[i]));
      CAPTURE(i);
      CHECK(bits_of(back[i]) == bits_of(expected));
    }
    // Element i is stored little-endian at byte offset i * size.
    if (dtype == DType::F16) {
      CHECK(storage[1 + 2 * 1] == std::byte{0x00});  // -1.5 = 0xbe00
      CHECK(storage[1 + 2 * 1 + 1] == std::byte{0xbe});
    }
  }
}

TEST_CASE("a conversion to or from a dtype that is not a compute float is a logic error") {
  // Callers refuse such tensors with a ModelError first, so reaching the conversion is a bug: a
  // std::logic_error (reported as an internal error), never a user-facing moeslice::Error
  // (a std::runtime_error), and in every build type (an assert left the output unwritten in
  // Release).
  const std::vector<std::byte> storage(16, std::byte{0x3c});
  std::vector<float> values(4, 7.0f);
  std::vector<std::byte> out(16, std::byte{0});
  for (const DType dtype : {DType::I32, DType::F64, DType::U8, DType::F8_E4M3, DType::BOOL}) {
    CAPTURE(dtype_name(dtype));
    std::string message;
    try {
      convert_to_f32(dtype, storage.data(), values.data(), values.size());
    } catch (const std::runtime_error&) {
      FAIL("a library error instead of a logic error");
    } catch (const std::logic_error& e) {
      message = e.what();
    }
    CHECK(message.find("convert_to_f32: dtype " + std::string(dtype_name(dtype))) !=
          std::string::npos);
    CHECK_THROWS_AS(convert_from_f32(dtype, values.data(), out.data(), values.size()),
                    std::logic_error);
  }
  // Nothing was written through either destination.
  for (const float value : values) CHECK(value == 7.0f);
  for (const std::byte byte : out) CHECK(byte == std::byte{0});
}

}  // namespace
}  // namespace moeslice

TEST_CASE("f32 -> e4m3 gives back every code's value, rounds ties to even and saturates") {
  std::array<float, 256> values{};
  std::vector<std::byte> codes(256);
  for (unsigned code = 0; code < 256; ++code) codes[code] = static_cast<std::byte>(code);
  moeslice::kernels::dequant::fp8_e4m3_scaled(codes.data(), 256, 1.0f, values.data());
  for (unsigned code = 0; code < 256; ++code) {
    if ((code & 0x7f) == 0x7f) continue;  // NaN
    CHECK(moeslice::f32_to_e4m3(values[code]) == code);
  }
  for (unsigned code = 0; code + 1 < 0x7f; ++code) {
    const float middle = (values[code] + values[code + 1]) / 2;
    CHECK(moeslice::f32_to_e4m3(middle) == (code % 2 == 0 ? code : code + 1));
    CHECK(moeslice::f32_to_e4m3(-middle) == (0x80 | (code % 2 == 0 ? code : code + 1)));
    CHECK(moeslice::f32_to_e4m3(std::nextafter(middle, 0.0f)) == code);
    CHECK(moeslice::f32_to_e4m3(std::nextafter(middle, 1e9f)) == code + 1);
  }
  CHECK(moeslice::f32_to_e4m3(464.0f) == 0x7e);
  CHECK(moeslice::f32_to_e4m3(1e30f) == 0x7e);
  CHECK(moeslice::f32_to_e4m3(-std::numeric_limits<float>::infinity()) == 0xfe);
  CHECK(moeslice::f32_to_e4m3(1e-30f) == 0x00);
  CHECK(moeslice::f32_to_e4m3(std::numeric_limits<float>::quiet_NaN()) == 0x7f);
}
