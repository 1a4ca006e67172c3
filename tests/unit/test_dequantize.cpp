// Dequantizers (lib/kernels/dequant) and quantized WeightMatrix: row ranges agree with whole
// rows, a few hand-computed blocks, the two MXFP4 layouts against each other, FP8 scale blocks at
// ragged edges, and the Linear layer and the MoE experts on quantized weights equal to the same
// on their dequantized fp32 values. Bit-exact agreement with gguf-py's numpy dequantizers is
// checked by tests/reference/check_dequantize.py (ctest dequantize_parity).
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <stdexcept>
#include <vector>

#include "common/dtype.h"
#include "common/error.h"
#include "format/gguf/random_blocks.h"
#include "kernels/bf16.h"
#include "kernels/dequant/dequantize.h"
#include "kernels/linear.h"
#include "kernels/matrix.h"
#include "kernels/moe.h"
#include "kernels/precision.h"
#include "kernels/routing.h"
#include "kernels/thread_pool.h"
#include "kernels/weight_matrix.h"

using namespace moeslice;
using namespace moeslice::kernels;

namespace {

const DType kBlockTypes[] = {DType::Q4_0,   DType::Q4_1,   DType::Q5_0, DType::Q5_1, DType::Q8_0,
                             DType::Q2_K,   DType::Q3_K,   DType::Q4_K, DType::Q5_K, DType::Q6_K,
                             DType::IQ4_NL, DType::IQ4_XS, DType::MXFP4};

// `rows` rows of `blocks_per_row` random valid blocks of `dtype`.
std::vector<std::byte> random_rows(DType dtype, size_t rows, size_t blocks_per_row, uint64_t seed) {
  std::vector<std::byte> bytes(rows * blocks_per_row * dtype_block(dtype)->bytes);
  fill_random_tensor_bytes(dtype, bytes, seed);
  return bytes;
}

void store_f16(std::byte* at, float value) {
  const uint16_t bits = f32_to_f16(value);
  std::memcpy(at, &bits, 2);
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

}  // namespace

TEST_CASE("every dequantized type reads the same values by whole rows and by row ranges") {
  for (DType dtype : kBlockTypes) {
    CAPTURE(dtype_name(dtype));
    REQUIRE(can_dequantize_blocks(dtype));
    const size_t rows = 7, per_row = 2, cols = per_row * dtype_block(dtype)->elements;
    const std::vector<std::byte> bytes = random_rows(dtype, rows, per_row, 5);
    const QuantizedMatrix m = QuantizedMatrix::ggml_blocks(dtype, bytes.data(), rows, cols);
    CHECK(m.row_bytes() == per_row * dtype_block(dtype)->bytes);
    std::vector<float> whole(rows * cols), ranges(rows * cols);
    dequantize_rows(m, 0, rows, whole.data());
    for (size_t begin = 0, step = 1; begin < rows; begin += step, ++step) {
      step = std::min(step, rows - begin);
      dequantize_rows(m, begin, step, ranges.data() + begin * cols);
    }
    CHECK(same_bits(whole, ranges));
    bool finite = true;
    for (float v : whole) finite = finite && std::isfinite(v);
    CHECK(finite);
  }
}

TEST_CASE("hand-computed blocks: Q8_0, Q4_0, Q4_1 and MXFP4") {
  std::vector<std::byte> q8(34);
  store_f16(q8.data(), 0.5f);
  for (int i = 0; i < 32; ++i) q8[2 + i] = static_cast<std::byte>(static_cast<int8_t>(i - 16));
  std::vector<float> out(32);
  dequantize_blocks(DType::Q8_0, q8.data(), 1, out.data());
  for (int i = 0; i < 32; ++i) CHECK(out[i] == 0.5f * static_cast<float>(i - 16));

  std::vector<std::byte> q4(20);
  store_f16(q4.data(), 2.0f);
  store_f16(q4.data() + 2, -1.0f);
  for (int i = 0; i < 16; ++i) q4[4 + i] = static_cast<std::byte>(i | (15 - i) << 4);
  dequantize_blocks(DType::Q4_1, q4.data(), 1, out.data());
  for (int i = 0; i < 16; ++i) {
    CHECK(out[i] == 2.0f * static_cast<float>(i) - 1.0f);
    CHECK(out[i + 16] == 2.0f * static_cast<float>(15 - i) - 1.0f);
  }
  // Q4_0 is the same layout without the min, codes offset by 8.
  std::vector<std::byte> q40(q4.begin() + 2, q4.end());
  store_f16(q40.data(), 2.0f);
  dequantize_blocks(DType::Q4_0, q40.data(), 1, out.data());
  for (int i = 0; i < 16; ++i) CHECK(out[i] == 2.0f * static_cast<float>(i - 8));

  // MXFP4: exponent 128 (scale 2^1), codes 0..15 -> E2M1 values times 2.
  std::vector<std::byte> mx(17);
  mx[0] = std::byte{128};
  for (int i = 0; i < 16; ++i) mx[1 + i] = static_cast<std::byte>(i);
  dequantize_blocks(DType::MXFP4, mx.data(), 1, out.data());
  const float e2m1[16] = {0, 0.5f, 1, 1.5f, 2, 3, 4, 6, 0, -0.5f, -1, -1.5f, -2, -3, -4, -6};
  for (int i = 0; i < 16; ++i) {
    CHECK(out[i] == 2.0f * e2m1[i]);
    CHECK(out[i + 16] == 0.0f);
  }
}

TEST_CASE("gpt-oss MXFP4 blocks/scales equal the GGUF MXFP4 block with its nibbles reordered") {
  const size_t rows = 3, groups = 4, cols = groups * 32;
  std::mt19937 rng(3);
  std::vector<std::byte> codes(rows * groups * 16), scales(rows * groups), gguf(rows * groups * 17);
  for (auto& b : codes) b = static_cast<std::byte>(rng() & 0xff);
  for (auto& s : scales) s = static_cast<std::byte>(100 + rng() % 50);
  for (size_t g = 0; g < rows * groups; ++g) {
    gguf[17 * g] = scales[g];
    // gpt-oss: element 2i low nibble, 2i + 1 high nibble; ggml: element i low, i + 16 high.
    uint8_t element[32];
    for (size_t i = 0; i < 16; ++i) {
      element[2 * i] = static_cast<uint8_t>(codes[16 * g + i]) & 0x0f;
      element[2 * i + 1] = static_cast<uint8_t>(codes[16 * g + i]) >> 4;
    }
    for (size_t i = 0; i < 16; ++i)
      gguf[17 * g + 1 + i] = static_cast<std::byte>(element[i] | element[i + 16] << 4);
  }
  std::vector<float> split(rows * cols), blocks(rows * cols);
  dequantize_rows(QuantizedMatrix::mxfp4_split(codes.data(), scales.data(), rows, cols), 1, 2,
                  split.data());
  dequantize_rows(QuantizedMatrix::ggml_blocks(DType::MXFP4, gguf.data(), rows, cols), 1, 2,
                  blocks.data());
  split.resize(2 * cols);
  blocks.resize(2 * cols);
  CHECK(split == blocks);  // == : the split layout keeps transformers' -0.0 for code 8
}

TEST_CASE("FP8 E4M3 rows take the scale of their 128 x 128 block, ragged edges included") {
  const size_t rows = 130, cols = 200;
  std::vector<std::byte> data(rows * cols, std::byte{0x38});  // 1.0
  data[0] = std::byte{0x7e};                                  // 448
  data[1] = std::byte{0x01};                                  // 2^-9
  data[2] = std::byte{0xff};                                  // NaN
  const float scales[4] = {0.5f, 2.0f, 3.0f, -4.0f};          // [2, 2] blocks
  const QuantizedMatrix m = QuantizedMatrix::fp8_block_scaled(
      data.data(), reinterpret_cast<const std::byte*>(scales), DType::F32, rows, cols);
  std::vector<float> out(2 * cols);
  dequantize_rows(m, 0, 1, out.data());
  CHECK(out[0] == 224.0f);
  CHECK(out[1] == std::ldexp(1.0f, -10));
  CHECK(std::isnan(out[2]));
  CHECK(out[127] == 0.5f);
  CHECK(out[128] == 2.0f);
  CHECK(out[199] == 2.0f);
  dequantize_rows(m, 128, 2, out.data());
  CHECK(out[0] == 3.0f);
  CHECK(out[cols + 150] == -4.0f);
}

TEST_CASE("types without a dequantizer are refused as programming errors") {
  for (DType dtype : {DType::Q8_1, DType::IQ2_XXS, DType::Q8_K, DType::NVFP4, DType::BF16}) {
    CHECK_FALSE(can_dequantize_blocks(dtype));
    float out[256];
    const std::byte zero[256]{};
    CHECK_THROWS_AS(dequantize_blocks(dtype, zero, 1, out), std::logic_error);
  }
  CHECK_THROWS_AS(QuantizedMatrix::ggml_blocks(DType::Q4_K, nullptr, 1, 128), std::logic_error);
}

TEST_CASE("Linear on quantized weights equals Linear on their dequantized fp32 values") {
  ThreadPool pool(2);
  const size_t tokens = 24, out_rows = 40;
  for (DType dtype : {DType::Q8_0, DType::Q4_K, DType::Q6_K, DType::MXFP4, DType::IQ4_XS}) {
    CAPTURE(dtype_name(dtype));
    const size_t cols =
        2 * dtype_block(dtype)->elements * (dtype_block(dtype)->elements == 32 ? 8 : 1);
    const std::vector<std::byte> bytes =
        random_rows(dtype, out_rows, cols / dtype_block(dtype)->elements, 9);
    const WeightMatrix quantized(QuantizedMatrix::ggml_blocks(dtype, bytes.data(), out_rows, cols));
    CHECK(quantized.quantized());
    Matrix dense(out_rows, cols);
    quantized.rows_to_f32(0, out_rows, dense.data());
    const WeightMatrix plain = WeightMatrix::from_f32(dense);
    Matrix x(tokens, cols);
    std::mt19937 rng(1);
    std::uniform_real_distribution<float> dist(-1, 1);
    for (size_t i = 0; i < tokens * cols; ++i) x.data()[i] = dist(rng);
    Matrix a(tokens, out_rows), b(tokens, out_rows);
    matmul_xWt<Fp32Math>(x.cref(), quantized, a.ref(), {}, &pool);
    matmul_xWt<Fp32Math>(x.cref(), plain, b.ref(), {}, &pool);
    CHECK(std::memcmp(a.data(), b.data(), tokens * out_rows * sizeof(float)) == 0);
    // bf16 operands: the dequantized values rounded once to BF16.
    std::vector<uint16_t> scratch;
    const ConstBf16Ref rounded = quantized.rows_bf16(3, 5, scratch);
    bool same = true;
    for (size_t r = 0; r < 5; ++r)
      for (size_t c = 0; c < cols; ++c)
        same = same && rounded.row(r)[c] == to_bf16_bits(dense.cref().row(3 + r)[c]);
    CHECK(same);
  }
}

namespace {

// moe_experts on quantized experts and on the same experts dequantized to fp32 (WeightMatrix
// over dense fp32 copies): every path an expert takes (few-token products, gate/up blocks, down).
template <class Math>
void check_quantized_experts(DType dtype) {
  const size_t hidden = 256, width = 512, experts = 4, k = 2;
  std::vector<std::vector<std::byte>> stored;
  std::vector<Matrix> dense;
  std::vector<ExpertMlp> quantized, plain;
  for (size_t e = 0; e < experts; ++e) {
    const size_t shapes[3][2] = {{width, hidden}, {width, hidden}, {hidden, width}};
    WeightMatrix q[3], p[3];
    for (size_t m = 0; m < 3; ++m) {
      const size_t rows = shapes[m][0], cols = shapes[m][1];
      stored.push_back(
          random_rows(dtype, rows, cols / dtype_block(dtype)->elements, 20 + 3 * e + m));
      q[m] = WeightMatrix(QuantizedMatrix::ggml_blocks(dtype, stored.back().data(), rows, cols));
      dense.emplace_back(rows, cols);
    }
    for (size_t m = 0; m < 3; ++m) {
      Matrix& values = dense[dense.size() - 3 + m];
      q[m].rows_to_f32(0, values.rows(), values.data());
      p[m] = WeightMatrix::from_f32(values);
    }
    quantized.push_back({q[0], q[1], q[2]});
    plain.push_back({p[0], p[1], p[2]});
  }
  ThreadPool pool(2);
  // 40 tokens: experts 0 and 1 reached by many tokens (GEMMs), 2 and 3 by a few.
  const size_t tokens = 40;
  Routing routing(tokens, k);
  for (size_t t = 0; t < tokens; ++t) {
    routing.expert[t * k] = t < 3 ? 2 : 0;
    routing.expert[t * k + 1] = t < 5 ? 3 : 1;
    routing.weight[t * k] = 0.75f;
    routing.weight[t * k + 1] = 0.25f;
  }
  Matrix x(tokens, hidden), a(tokens, hidden), b(tokens, hidden);
  std::mt19937 rng(4);
  std::uniform_real_distribution<float> dist(-1, 1);
  for (size_t i = 0; i < tokens * hidden; ++i) x.data()[i] = round_bf16(dist(rng));
  moe_experts<Math>(x.cref(), routing, quantized, a.ref(), {}, &pool);
  moe_experts<Math>(x.cref(), routing, plain, b.ref(), {}, &pool);
  CHECK(std::memcmp(a.data(), b.data(), tokens * hidden * sizeof(float)) == 0);
}

}  // namespace

TEST_CASE("MoE experts on quantized weights equal the same experts on their fp32 values") {
  for (DType dtype : {DType::Q8_0, DType::Q4_K, DType::MXFP4}) {
    CAPTURE(dtype_name(dtype));
    check_quantized_experts<Fp32Math>(dtype);
    try {
      Bf16Math::require_available();
    } catch (const UnsupportedError&) {
      continue;  // no BF16 GEMM in this build
    }
    check_quantized_experts<Bf16Math>(dtype);
  }
}
