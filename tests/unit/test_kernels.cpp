// Compute kernels of the forward pass (lib/kernels) against naive double-precision loops:
// weight conversion and Linear, RMSNorm, RoPE, causal attention, routing, expert MLPs, and the
// thread pool. Also checks that results do not depend on the thread count, and the precision
// policies: what each rounds, and the bf16 ops against the fp32 ones.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <numeric>
#include <random>
#include <span>
#include <stdexcept>
#include <type_traits>
#include <vector>

#include "common/dtype.h"
#include "common/error.h"
#include "kernels/attention.h"
#include "kernels/bf16.h"
#include "kernels/elementwise.h"
#include "kernels/gemm.h"
#include "kernels/linear.h"
#include "kernels/matrix.h"
#include "kernels/moe.h"
#include "kernels/precision.h"
#include "kernels/rms_norm.h"
#include "kernels/rope.h"
#include "kernels/routing.h"
#include "kernels/softmax.h"
#include "kernels/thread_pool.h"
#include "kernels/weight_matrix.h"

using namespace moeslice;
using namespace moeslice::kernels;

namespace {

Matrix random_matrix(size_t rows, size_t cols, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-scale, scale);
  Matrix m(rows, cols);
  for (size_t i = 0; i < rows * cols; ++i) m.data()[i] = dist(rng);
  return m;
}

// Stored weights in a given dtype, placed at an odd byte offset to exercise unaligned access.
struct StoredWeights {
  std::vector<std::byte> storage;
  DType dtype;
  size_t rows;
  size_t cols;
  Matrix exact;  // the fp32 values the stored ones decode to

  StoredWeights(const Matrix& values, DType type, size_t offset = 1)
      : storage(offset + values.rows() * values.cols() * 4),
        dtype(type),
        rows(values.rows()),
        cols(values.cols()),
        exact(values.rows(), values.cols()) {
    convert_from_f32(dtype, values.data(), storage.data() + offset, rows * cols);
    convert_to_f32(dtype, storage.data() + offset, exact.data(), rows * cols);
    data = storage.data() + offset;
  }
  WeightMatrix weights() const { return {dtype, data, rows, cols}; }
  const std::byte* data;
};

// Experts e = 0..count-1 with random gate, up and down weights (seeds seed + 3e, +1, +2), stored
// in dtype_of(e) at byte offset `offset`.
struct RandomExperts {
  std::vector<StoredWeights> stored;  // gate, up, down of each expert
  std::vector<ExpertMlp> mlps;

  RandomExperts(size_t count, size_t hidden, size_t width, uint32_t seed,
                const std::function<DType(size_t)>& dtype_of, size_t offset) {
    stored.reserve(3 * count);
    for (size_t e = 0; e < count; ++e) {
      const auto first = static_cast<uint32_t>(seed + 3 * e);
      stored.emplace_back(random_matrix(width, hidden, first, 0.2f), dtype_of(e), offset);
      stored.emplace_back(random_matrix(width, hidden, first + 1, 0.2f), dtype_of(e), offset);
      stored.emplace_back(random_matrix(hidden, width, first + 2, 0.2f), dtype_of(e), offset);
    }
    for (size_t e = 0; e < count; ++e)
      mlps.push_back(
          {stored[3 * e].weights(), stored[3 * e + 1].weights(), stored[3 * e + 2].weights()});
  }
};

// |a - b| <= tol * scale for every element, where scale is given per element.
template <typename Ref, typename Scale>
void check_close(ConstMatrixRef got, Ref ref, Scale scale, double tol) {
  double worst = 0.0;
  for (size_t r = 0; r < got.rows; ++r)
    for (size_t c = 0; c < got.cols; ++c) {
      const double err = std::abs(static_cast<double>(got(r, c)) - ref(r, c)) / scale(r, c);
      worst = std::max(worst, err);
    }
  INFO("worst relative error " << worst << ", tolerance " << tol);
  CHECK(worst <= tol);
}

bool bitwise_equal(ConstMatrixRef a, ConstMatrixRef b) {
  if (a.rows != b.rows || a.cols != b.cols) return false;
  for (size_t r = 0; r < a.rows; ++r)
    if (std::memcmp(a.row(r), b.row(r), a.cols * sizeof(float)) != 0) return false;
  return true;
}

// Naive double-precision references.
std::vector<double> ref_linear(ConstMatrixRef x, const Matrix& w, const std::vector<float>& bias,
                               std::vector<double>* abs_scale = nullptr) {
  std::vector<double> y(x.rows * w.rows());
  if (abs_scale) abs_scale->assign(y.size(), 0.0);
  for (size_t t = 0; t < x.rows; ++t)
    for (size_t o = 0; o < w.rows(); ++o) {
      double sum = bias.empty() ? 0.0 : bias[o];
      double abs = bias.empty() ? 0.0 : std::abs(bias[o]);
      for (size_t i = 0; i < x.cols; ++i) {
        sum += static_cast<double>(x(t, i)) * w(o, i);
        abs += std::abs(static_cast<double>(x(t, i)) * w(o, i));
      }
      y[t * w.rows() + o] = sum;
      if (abs_scale) (*abs_scale)[t * w.rows() + o] = abs;
    }
  return y;
}

double ref_silu(double v) { return v / (1.0 + std::exp(-v)); }

std::vector<double> ref_mlp(const float* x, size_t hidden, const Matrix& gate, const Matrix& up,
                            const Matrix& down) {
  const size_t width = gate.rows();
  std::vector<double> act(width);
  for (size_t j = 0; j < width; ++j) {
    double g = 0.0, u = 0.0;
    for (size_t i = 0; i < hidden; ++i) {
      g += static_cast<double>(x[i]) * gate(j, i);
      u += static_cast<double>(x[i]) * up(j, i);
    }
    act[j] = ref_silu(g) * u;
  }
  std::vector<double> out(hidden);
  for (size_t o = 0; o < hidden; ++o) {
    double s = 0.0;
    for (size_t j = 0; j < width; ++j) s += act[j] * down(o, j);
    out[o] = s;
  }
  return out;
}

}  // namespace

TEST_CASE("ThreadPool runs every index exactly once, nests, and rethrows") {
  for (size_t threads : {1u, 2u, 3u}) {
    ThreadPool pool(threads);
    CHECK(pool.size() == threads);
    for (size_t n : {0u, 1u, 7u, 1000u}) {
      std::vector<std::atomic<int>> hits(n);
      pool.parallel_for(n, [&](size_t i, size_t worker) {
        CHECK(worker < pool.size());
        hits[i].fetch_add(1);
      });
      for (auto& h : hits) CHECK(h.load() == 1);
    }
    std::atomic<int> nested{0};
    pool.parallel_for(4,
                      [&](size_t) { pool.parallel_for(5, [&](size_t) { nested.fetch_add(1); }); });
    CHECK(nested.load() == 20);
    CHECK_THROWS_AS(pool.parallel_for(10,
                                      [](size_t i) {
                                        if (i == 3) throw std::runtime_error("task failed");
                                      }),
                    std::runtime_error);
    // The pool stays usable after a failed loop.
    std::atomic<int> after{0};
    pool.parallel_for(6, [&](size_t) { after.fetch_add(1); });
    CHECK(after.load() == 6);
  }
  ThreadPool default_pool;
  CHECK(default_pool.size() >= 1);
}

TEST_CASE("parallel_rows covers every row once in chunks of at least 16, with or without a pool") {
  ThreadPool two(2), eight(8);
  for (ThreadPool* pool : {static_cast<ThreadPool*>(nullptr), &two, &eight}) {
    for (size_t rows : {0u, 1u, 16u, 17u, 100u, 4096u}) {
      CAPTURE(rows);
      std::vector<std::atomic<int>> hits(rows);
      std::atomic<size_t> calls{0};
      parallel_rows(pool, rows, [&](size_t begin, size_t count) {
        CHECK(count > 0);
        CHECK((count >= 16 || begin + count == rows));
        for (size_t r = begin; r < begin + count; ++r) hits[r].fetch_add(1);
        calls.fetch_add(1);
      });
      for (auto& h : hits) CHECK(h.load() == 1);
      if (pool == nullptr || rows <= 16) CHECK(calls.load() == (rows == 0 ? 0u : 1u));
    }
  }
}

TEST_CASE("gemm_abt and gemm_ab on strided views") {
  const Matrix a = random_matrix(7, 20, 1);
  const Matrix b = random_matrix(9, 20, 2);
  Matrix c(7, 12);
  std::fill(c.data(), c.data() + 7 * 12, std::numeric_limits<float>::quiet_NaN());
  // Columns 2..6 of a against columns 2..6 of b, written into columns 3..11 of c.
  gemm_abt(a.cref().columns(2, 5), b.cref().columns(2, 5), c.ref().columns(3, 9), 0.5f);
  for (size_t i = 0; i < 7; ++i)
    for (size_t j = 0; j < 9; ++j) {
      double s = 0.0;
      for (size_t l = 2; l < 7; ++l) s += static_cast<double>(a(i, l)) * b(j, l);
      CHECK(c(i, 3 + j) == doctest::Approx(0.5 * s).epsilon(1e-6));
    }
  CHECK(std::isnan(c(0, 0)));  // untouched columns stay as they were

  Matrix d(7, 20);
  const Matrix e = random_matrix(9, 20, 3);
  gemm_ab(c.cref().columns(3, 9), e.cref(), d.ref());
  for (size_t i = 0; i < 7; ++i)
    for (size_t j = 0; j < 20; ++j) {
      double s = 0.0;
      for (size_t l = 0; l < 9; ++l) s += static_cast<double>(c(i, 3 + l)) * e(l, j);
      CHECK(d(i, j) == doctest::Approx(s).epsilon(1e-5));
    }
  CHECK((gemm_backend() == "onednn" || gemm_backend() == "openblas" || gemm_backend() == "eigen"));
}

TEST_CASE("WeightMatrix converts F32, BF16 and F16 blocks at any alignment") {
  const Matrix values = random_matrix(5, 33, 4);
  for (DType dtype : {DType::F32, DType::BF16, DType::F16}) {
    for (size_t offset : {0u, 1u, 2u}) {
      const StoredWeights stored(values, dtype, offset);
      const WeightMatrix w = stored.weights();
      CHECK(w.rows() == 5);
      CHECK(w.cols() == 33);
      std::vector<float> block(2 * 33);
      w.rows_to_f32(2, 2, block.data());
      for (size_t i = 0; i < 2 * 33; ++i) CHECK(block[i] == stored.exact.data()[2 * 33 + i]);
      std::vector<float> scratch;
      const ConstMatrixRef view = w.rows_f32(1, 3, scratch);
      for (size_t r = 0; r < 3; ++r)
        for (size_t c = 0; c < 33; ++c) CHECK(view(r, c) == stored.exact(1 + r, c));
      // Aligned F32 is read in place, everything else goes through the scratch.
      const bool in_place = dtype == DType::F32 && offset == 0;
      CHECK((view.data != scratch.data()) == in_place);
    }
  }
}

TEST_CASE("WeightMatrix views: stored columns ([in, out] storage) and every other row") {
  // A [7, 12] stored x @ W matrix; the view of columns 1, 3, 5, 7, 9 is a [5, 7] [out, in] weight.
  const Matrix values = random_matrix(7, 12, 5);
  for (DType dtype : {DType::F32, DType::BF16}) {
    const StoredWeights stored(values, dtype);
    const WeightMatrix w = WeightMatrix::stored_columns(dtype, stored.data, 7, 12, 1, 2, 5);
    CHECK(w.rows() == 5);
    CHECK(w.cols() == 7);
    const auto expected = [&](size_t r, size_t c) { return stored.exact(c, 1 + 2 * r); };
    std::vector<float> block(3 * 7);
    w.rows_to_f32(2, 3, block.data());
    for (size_t r = 0; r < 3; ++r)
      for (size_t c = 0; c < 7; ++c) CHECK(block[r * 7 + c] == expected(2 + r, c));
    std::vector<float> scratch;
    const ConstMatrixRef view = w.rows_f32(0, 5, scratch);
    std::vector<uint16_t> bf16_scratch;
    const ConstBf16Ref bf16 = w.rows_bf16(1, 4, bf16_scratch);
    for (size_t r = 0; r < 5; ++r)
      for (size_t c = 0; c < 7; ++c) {
        CHECK(view(r, c) == expected(r, c));
        if (r >= 1) CHECK(bf16_to_f32(bf16.row(r - 1)[c]) == round_bf16(expected(r, c)));
      }
    // Every other row of that view: its rows 1 and 3.
    const WeightMatrix odd = w.row_subset(1, 2, 2);
    CHECK(odd.rows() == 2);
    std::vector<float> rows(2 * 7);
    odd.rows_to_f32(0, 2, rows.data());
    for (size_t c = 0; c < 7; ++c) {
      CHECK(rows[c] == expected(1, c));
      CHECK(rows[7 + c] == expected(3, c));
    }
  }
}

TEST_CASE("WeightMatrix decodes every BF16 and F16 bit pattern exactly") {
  std::vector<uint16_t> patterns(65536);
  std::iota(patterns.begin(), patterns.end(), uint16_t{0});
  for (DType dtype : {DType::BF16, DType::F16}) {
    const WeightMatrix w(dtype, reinterpret_cast<const std::byte*>(patterns.data()), 1, 65536);
    std::vector<float> out(65536);
    w.rows_to_f32(0, 1, out.data());
    size_t wrong = 0;
    for (size_t i = 0; i < 65536; ++i) {
      const float expected =
          dtype == DType::BF16 ? bf16_to_f32(patterns[i]) : f16_to_f32(patterns[i]);
      const bool same = std::isnan(expected) ? std::isnan(out[i])
                                             : std::memcmp(&expected, &out[i], sizeof(float)) == 0;
      wrong += !same;
    }
    CHECK(wrong == 0);
  }
}

TEST_CASE("matmul_xWt matches a double-precision Linear, with and without bias and threads") {
  // 4096 inputs give 256-row weight blocks, so 600 outputs span three blocks (one partial).
  const size_t n = 5, in = 4096, out = 600;
  const Matrix x = random_matrix(n, in, 5);
  const Matrix w_values = random_matrix(out, in, 6, 0.05f);
  const Matrix bias_m = random_matrix(1, out, 7);
  const std::vector<float> bias(bias_m.data(), bias_m.data() + out);
  CHECK(weight_block_rows(in) == 256);
  ThreadPool pool(2);
  for (DType dtype : {DType::F32, DType::BF16, DType::F16}) {
    const StoredWeights stored(w_values, dtype, dtype == DType::F32 ? 0 : 1);
    for (bool with_bias : {false, true}) {
      std::vector<double> scale;
      const std::vector<float> b = with_bias ? bias : std::vector<float>{};
      const std::vector<double> ref = ref_linear(x.cref(), stored.exact, b, &scale);
      Matrix y(n, out);
      Matrix y_threads(n, out);
      matmul_xWt<Fp32Math>(x.cref(), stored.weights(), y.ref(), b);
      matmul_xWt<Fp32Math>(x.cref(), stored.weights(), y_threads.ref(), b, &pool);
      check_close(
          y.cref(), [&](size_t r, size_t c) { return ref[r * out + c]; },
          [&](size_t r, size_t c) { return scale[r * out + c]; }, 1e-6);
      CHECK(bitwise_equal(y.cref(), y_threads.cref()));
    }
  }
}

TEST_CASE(
    "few_tokens_xWt matches a double-precision Linear on a block of rows, into strided columns") {
  const size_t in = 300, out = 40, begin = 7, count = 25;
  const Matrix w_values = random_matrix(out, in, 8, 0.05f);
  for (size_t n : {size_t{1}, size_t{3}, kFewTokens}) {
    const Matrix x = random_matrix(n, in, static_cast<uint32_t>(9 + n));
    for (DType dtype : {DType::F32, DType::BF16, DType::F16}) {
      const StoredWeights stored(w_values, dtype, dtype == DType::F32 ? 0 : 1);
      std::vector<double> scale;
      const std::vector<double> ref = ref_linear(x.cref(), stored.exact, {}, &scale);
      Matrix y(n, count + 3);  // columns [1, count + 1) written, the others kept
      std::fill(y.data(), y.data() + n * (count + 3), -7.0f);
      few_tokens_xWt(x.cref(), stored.weights(), begin, count, y.ref().columns(1, count));
      check_close(
          y.cref().columns(1, count), [&](size_t r, size_t c) { return ref[r * out + begin + c]; },
          [&](size_t r, size_t c) { return scale[r * out + begin + c]; }, 1e-6);
      for (size_t r = 0; r < n; ++r) {
        CHECK(y.row(r)[0] == -7.0f);
        CHECK(y.row(r)[count + 1] == -7.0f);
      }
    }
  }
}

TEST_CASE("rms_norm matches double precision and rounds per family order in bf16") {
  const size_t n = 4, d = 2048;
  const Matrix x = random_matrix(n, d, 8, 3.0f);
  const Matrix w_m = random_matrix(1, d, 9);
  const std::vector<float> w(w_m.data(), w_m.data() + d);
  const float eps = 1e-6f;
  Matrix y(n, d);
  rms_norm(x.cref(), w, eps, y.ref());
  std::vector<double> inv(n);
  for (size_t r = 0; r < n; ++r) {
    double ss = 0.0;
    for (size_t c = 0; c < d; ++c) ss += static_cast<double>(x(r, c)) * x(r, c);
    inv[r] = 1.0 / std::sqrt(ss / d + eps);
  }
  check_close(
      y.cref(), [&](size_t r, size_t c) { return x(r, c) * inv[r] * w[c]; },
      [&](size_t r, size_t c) { return std::abs(x(r, c) * inv[r] * w[c]) + 1e-30; }, 1e-6);
  // fp32 activations: both orders are the same computation.
  Matrix y2(n, d);
  rms_norm(x.cref(), w, eps, y2.ref(), NormWeightOrder::kScaleThenCast);
  CHECK(bitwise_equal(y.cref(), y2.cref()));
  // In place.
  Matrix z = x;
  rms_norm(z.cref(), w, eps, z.ref());
  CHECK(bitwise_equal(y.cref(), z.cref()));
  // bf16: every output is a bf16 value, within bf16 rounding of the fp32 result.
  Matrix cast_scale(n, d);
  Matrix scale_cast(n, d);
  rms_norm(x.cref(), w, eps, cast_scale.ref(), NormWeightOrder::kCastThenScale, DType::BF16);
  rms_norm(x.cref(), w, eps, scale_cast.ref(), NormWeightOrder::kScaleThenCast, DType::BF16);
  size_t differing = 0;
  for (size_t r = 0; r < n; ++r)
    for (size_t c = 0; c < d; ++c) {
      CHECK(round_to(DType::BF16, cast_scale(r, c)) == cast_scale(r, c));
      CHECK(scale_cast(r, c) == round_to(DType::BF16, y(r, c)));
      CHECK(std::abs(cast_scale(r, c) - y(r, c)) <= std::abs(y(r, c)) * 1.6e-2f);
      differing += cast_scale(r, c) != scale_cast(r, c);
    }
  CHECK(differing > 0);  // the two orders are genuinely different in bf16
}

TEST_CASE("RoPE: inv_freq = theta^(-2j/d), rotate_half rotation per position") {
  const size_t hd = 64, heads = 3, n = 40;
  const double theta = 500000.0;
  const RopeTable table(hd, theta, 100);
  for (size_t j = 0; j < hd / 2; ++j) {
    const double expected = std::pow(theta, -2.0 * static_cast<double>(j) / hd);
    CHECK(std::abs(table.inv_freq()[j] - expected) <= 1e-6 * expected);
  }
  const Matrix x = random_matrix(n, heads * hd, 10);
  const size_t first = 7;
  Matrix y = x;
  apply_rope<Fp32Math>(y.ref(), heads, table, first);
  // Reference: the fp32 angle PyTorch uses (float position x float inv_freq), then double math.
  auto ref = [&](size_t t, size_t c) {
    const size_t h = c / hd, i = c % hd, j = i % (hd / 2);
    const double angle = static_cast<float>(first + t) * table.inv_freq()[j];
    const double lo = x(t, h * hd + j), hi = x(t, h * hd + j + hd / 2);
    return i < hd / 2 ? lo * std::cos(angle) - hi * std::sin(angle)
                      : hi * std::cos(angle) + lo * std::sin(angle);
  };
  auto scale = [&](size_t t, size_t c) {
    const size_t h = c / hd, j = (c % hd) % (hd / 2);
    return std::abs(x(t, h * hd + j)) + std::abs(x(t, h * hd + j + hd / 2));
  };
  check_close(y.cref(), ref, scale, 1e-6);
  // Position 0 is the identity.
  Matrix z = x;
  apply_rope<Fp32Math>(z.ref().row_range(0, 1), heads, table, 0);
  CHECK(bitwise_equal(z.cref().row_range(0, 1), x.cref().row_range(0, 1)));
}

TEST_CASE("causal attention with grouped KV heads matches a naive double loop") {
  struct Case {
    size_t n, heads, kv_heads, hd;
  };
  ThreadPool pool(2);
  for (const Case& tc : {Case{1, 2, 1, 8}, Case{37, 4, 4, 16}, Case{300, 4, 2, 32}}) {
    CAPTURE(tc.n);
    const Matrix q = random_matrix(tc.n, tc.heads * tc.hd, 11, 2.0f);
    const Matrix k = random_matrix(tc.n, tc.kv_heads * tc.hd, 12, 2.0f);
    const Matrix v = random_matrix(tc.n, tc.kv_heads * tc.hd, 13);
    const AttentionShape shape{tc.heads, tc.kv_heads, tc.hd};
    Matrix out(tc.n, tc.heads * tc.hd);
    Matrix out_threads(tc.n, tc.heads * tc.hd);
    causal_attention<Fp32Math>(q.cref(), k.cref(), v.cref(), shape, out.ref());
    causal_attention<Fp32Math>(q.cref(), k.cref(), v.cref(), shape, out_threads.ref(), &pool);
    CHECK(bitwise_equal(out.cref(), out_threads.cref()));

    std::vector<double> ref(tc.n * tc.heads * tc.hd);
    const size_t group = tc.heads / tc.kv_heads;
    for (size_t h = 0; h < tc.heads; ++h) {
      const size_t g = h / group;
      for (size_t t = 0; t < tc.n; ++t) {
        std::vector<double> s(t + 1);
        double max = -1e300;
        for (size_t u = 0; u <= t; ++u) {
          double dot = 0.0;
          for (size_t i = 0; i < tc.hd; ++i)
            dot += static_cast<double>(q(t, h * tc.hd + i)) * k(u, g * tc.hd + i);
          s[u] = dot / std::sqrt(static_cast<double>(tc.hd));
          max = std::max(max, s[u]);
        }
        double sum = 0.0;
        for (auto& e : s) sum += (e = std::exp(e - max));
        for (size_t i = 0; i < tc.hd; ++i) {
          double o = 0.0;
          for (size_t u = 0; u <= t; ++u) o += s[u] / sum * v(u, g * tc.hd + i);
          ref[t * tc.heads * tc.hd + h * tc.hd + i] = o;
        }
      }
    }
    // Outputs are convex combinations of v (|v| <= 1): compare against that scale.
    check_close(
        out.cref(), [&](size_t r, size_t c) { return ref[r * tc.heads * tc.hd + c]; },
        [](size_t, size_t) { return 1.0; }, 1e-6);
  }
}

TEST_CASE("causal attention with a sliding window and sinks matches a naive double loop") {
  // gpt-oss: token t sees tokens max(0, t - window + 1)..t; each head's softmax has one more
  // logit, its sink, in the denominator. 300 tokens: windows cross the 128-row query blocks.
  ThreadPool pool(2);
  const size_t n = 300, heads = 4, kv_heads = 2, hd = 16;
  const Matrix q = random_matrix(n, heads * hd, 21, 2.0f);
  const Matrix k = random_matrix(n, kv_heads * hd, 22, 2.0f);
  const Matrix v = random_matrix(n, kv_heads * hd, 23);
  const std::vector<float> sinks = {0.5f, -1.0f, 2.0f, 0.0f};
  for (size_t window : {size_t{1}, size_t{5}, size_t{128}, size_t{200}}) {
    CAPTURE(window);
    AttentionShape shape{heads, kv_heads, hd};
    shape.window = window;
    shape.sinks = sinks.data();
    Matrix out(n, heads * hd), out_threads(n, heads * hd);
    causal_attention<Fp32Math>(q.cref(), k.cref(), v.cref(), shape, out.ref());
    causal_attention<Fp32Math>(q.cref(), k.cref(), v.cref(), shape, out_threads.ref(), &pool);
    CHECK(bitwise_equal(out.cref(), out_threads.cref()));
    std::vector<double> ref(n * heads * hd);
    for (size_t h = 0; h < heads; ++h) {
      const size_t g = h / (heads / kv_heads);
      for (size_t t = 0; t < n; ++t) {
        const size_t first = t + 1 > window ? t + 1 - window : 0;
        std::vector<double> s(t + 1 - first);
        double max = sinks[h];
        for (size_t u = first; u <= t; ++u) {
          double dot = 0.0;
          for (size_t i = 0; i < hd; ++i)
            dot += static_cast<double>(q(t, h * hd + i)) * k(u, g * hd + i);
          s[u - first] = dot / std::sqrt(static_cast<double>(hd));
          max = std::max(max, s[u - first]);
        }
        double sum = std::exp(sinks[h] - max);
        for (auto& e : s) sum += (e = std::exp(e - max));
        for (size_t i = 0; i < hd; ++i) {
          double o = 0.0;
          for (size_t u = first; u <= t; ++u) o += s[u - first] / sum * v(u, g * hd + i);
          ref[t * heads * hd + h * hd + i] = o;
        }
      }
    }
    check_close(
        out.cref(), [&](size_t r, size_t c) { return ref[r * heads * hd + c]; },
        [](size_t, size_t) { return 1.0; }, 1e-6);
  }
}

TEST_CASE("softmax_row subtracts the max and maps -inf to 0") {
  std::vector<float> row = {1000.0f, 999.0f, -std::numeric_limits<float>::infinity(), 998.0f};
  softmax_row(row.data(), row.size());
  const double z = 1.0 + std::exp(-1.0) + std::exp(-2.0);
  CHECK(row[0] == doctest::Approx(1.0 / z).epsilon(1e-6));
  CHECK(row[1] == doctest::Approx(std::exp(-1.0) / z).epsilon(1e-6));
  CHECK(row[2] == 0.0f);
  CHECK(row[3] == doctest::Approx(std::exp(-2.0) / z).epsilon(1e-6));
}

TEST_CASE("top_k: descending, lower index first on ties, never a masked or -inf expert") {
  const float inf = std::numeric_limits<float>::infinity();
  const std::vector<float> values = {0.1f, 0.5f, 0.3f, 0.5f, -inf, 0.3f, 0.7f, 0.5f};
  int32_t idx[8];
  float val[8];
  REQUIRE(top_k(values.data(), values.size(), 4, {}, idx, val) == 4);
  CHECK(std::vector<int32_t>(idx, idx + 4) == std::vector<int32_t>{6, 1, 3, 7});
  CHECK(std::vector<float>(val, val + 4) == std::vector<float>{0.7f, 0.5f, 0.5f, 0.5f});
  REQUIRE(top_k(values.data(), values.size(), 5, {}, idx, val) == 5);
  CHECK(idx[4] == 2);  // 0.3 at 2 before 0.3 at 5
  // -inf is never picked: 7 finite values.
  CHECK(top_k(values.data(), values.size(), 8, {}, idx, val) == 7);
  CHECK(std::find(idx, idx + 7, 4) == idx + 7);
  // Masked experts are skipped even when their value is finite.
  const std::vector<uint8_t> keep = {1, 0, 1, 1, 1, 1, 0, 0};
  REQUIRE(top_k(values.data(), values.size(), 3, keep, idx, val) == 3);
  CHECK(std::vector<int32_t>(idx, idx + 3) == std::vector<int32_t>{3, 2, 5});
  CHECK(top_k(values.data(), values.size(), 8, keep, idx, val) == 4);
  // NaN ranks first, as in PyTorch.
  const std::vector<float> with_nan = {0.2f, std::nanf(""), 0.9f};
  REQUIRE(top_k(with_nan.data(), 3, 2, {}, idx, val) == 2);
  CHECK(idx[0] == 1);
  CHECK(idx[1] == 2);
}

TEST_CASE("route_softmax_topk: softmax over all experts, top-k, optional renormalisation") {
  const size_t n = 6, experts = 10, k = 3;
  const Matrix logits = random_matrix(n, experts, 14, 3.0f);
  for (bool renorm : {false, true}) {
    Matrix probs = logits;
    const Routing routing = route_softmax_topk(probs.ref(), k, renorm);
    CHECK(routing.tokens == n);
    CHECK(routing.k == k);
    for (size_t t = 0; t < n; ++t) {
      double z = 0.0;
      for (size_t e = 0; e < experts; ++e) z += std::exp(static_cast<double>(logits(t, e)));
      std::vector<size_t> order(experts);
      std::iota(order.begin(), order.end(), 0);
      std::stable_sort(order.begin(), order.end(),
                       [&](size_t a, size_t b) { return logits(t, a) > logits(t, b); });
      double picked = 0.0;
      for (size_t s = 0; s < k; ++s)
        picked += std::exp(static_cast<double>(logits(t, order[s]))) / z;
      for (size_t e = 0; e < experts; ++e)
        CHECK(probs(t, e) ==
              doctest::Approx(std::exp(static_cast<double>(logits(t, e))) / z).epsilon(1e-6));
      for (size_t s = 0; s < k; ++s) {
        CHECK(routing.expert_at(t, s) == static_cast<int32_t>(order[s]));
        const double p = std::exp(static_cast<double>(logits(t, order[s]))) / z;
        CHECK(routing.weight_at(t, s) == doctest::Approx(renorm ? p / picked : p).epsilon(1e-6));
      }
    }
  }
}

TEST_CASE("masked routing equals the full softmax with dropped logits at -inf") {
  const size_t n = 5, experts = 8, k = 4;
  const Matrix logits = random_matrix(n, experts, 15, 2.0f);
  const std::vector<uint8_t> keep = {1, 0, 1, 1, 0, 0, 1, 0};  // 4 kept
  Matrix masked = logits;
  const Routing routing = route_softmax_topk(masked.ref(), k, false, keep);
  for (size_t t = 0; t < n; ++t) {
    double z = 0.0;
    for (size_t e = 0; e < experts; ++e)
      if (keep[e]) z += std::exp(static_cast<double>(logits(t, e)));
    for (size_t e = 0; e < experts; ++e)
      CHECK(masked(t, e) ==
            doctest::Approx(keep[e] ? std::exp(static_cast<double>(logits(t, e))) / z : 0.0)
                .epsilon(1e-6));
    double total = 0.0;
    for (size_t s = 0; s < k; ++s) {
      const int32_t e = routing.expert_at(t, s);
      REQUIRE(e >= 0);
      CHECK(keep[static_cast<size_t>(e)] == 1);
      total += routing.weight_at(t, s);
    }
    CHECK(total == doctest::Approx(1.0).epsilon(1e-6));  // k == kept: all probability mass
  }
  // Fewer kept experts than k: min(k, kept) slots, the rest empty.
  const std::vector<uint8_t> keep_two = {0, 0, 1, 0, 0, 0, 1, 0};
  Matrix masked2 = logits;
  const Routing two = route_softmax_topk(masked2.ref(), k, true, keep_two);
  for (size_t t = 0; t < n; ++t) {
    CHECK(two.expert_at(t, 2) == -1);
    CHECK(two.expert_at(t, 3) == -1);
    CHECK(two.weight_at(t, 2) == 0.0f);
    CHECK(two.weight_at(t, 0) + two.weight_at(t, 1) == doctest::Approx(1.0));
  }
}

TEST_CASE("route_emo: split softmax, shared experts last with weight 1, no renormalisation") {
  const size_t n = 4, experts = 9, k = 4, shared = 1;
  const Matrix logits = random_matrix(n, experts, 16, 2.0f);
  Matrix probs = logits;
  const Routing routing = route_emo(probs.ref(), k, shared);
  for (size_t t = 0; t < n; ++t) {
    double z = 0.0;
    for (size_t e = 0; e < experts - shared; ++e) z += std::exp(static_cast<double>(logits(t, e)));
    std::vector<size_t> order(experts - shared);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [&](size_t a, size_t b) { return logits(t, a) > logits(t, b); });
    for (size_t s = 0; s < k - shared; ++s) {
      CHECK(routing.expert_at(t, s) == static_cast<int32_t>(order[s]));
      CHECK(routing.weight_at(t, s) ==
            doctest::Approx(std::exp(static_cast<double>(logits(t, order[s]))) / z).epsilon(1e-6));
    }
    CHECK(routing.expert_at(t, k - 1) == static_cast<int32_t>(experts - 1));
    CHECK(routing.weight_at(t, k - 1) == 1.0f);
    CHECK(probs(t, experts - 1) == 1.0f);
  }
  // Two shared experts: their own softmax and top-2, indices offset by E - S.
  Matrix probs2 = logits;
  const Routing two = route_emo(probs2.ref(), k, 2);
  for (size_t t = 0; t < n; ++t) {
    const double a = logits(t, 7), b = logits(t, 8);
    const double pa = 1.0 / (1.0 + std::exp(b - a));
    const bool a_first = a >= b;
    CHECK(two.expert_at(t, 2) == (a_first ? 7 : 8));
    CHECK(two.expert_at(t, 3) == (a_first ? 8 : 7));
    CHECK(two.weight_at(t, 2) == doctest::Approx(a_first ? pa : 1.0 - pa).epsilon(1e-6));
  }
  // Masking routed experts leaves the shared one alone.
  std::vector<uint8_t> keep(experts, 1);
  keep[0] = keep[1] = keep[2] = keep[3] = keep[4] = keep[5] = 0;  // routed kept: 6, 7
  Matrix probs3 = logits;
  const Routing masked = route_emo(probs3.ref(), k, shared, keep);
  for (size_t t = 0; t < n; ++t) {
    CHECK(masked.expert_at(t, 2) == 8);  // only two routed experts left, then the shared one
    CHECK(masked.weight_at(t, 2) == 1.0f);
    CHECK(masked.expert_at(t, 3) == -1);
    CHECK(masked.weight_at(t, 0) + masked.weight_at(t, 1) == doctest::Approx(1.0));
  }
}

TEST_CASE("moe_experts matches per-token double MLPs, deterministically across thread counts") {
  const size_t n = 37, hidden = 64, width = 48, experts = 6, k = 2;
  const RandomExperts random_experts(
      experts, hidden, width, 100,
      [](size_t e) { return e % 3 == 0 ? DType::BF16 : (e % 3 == 1 ? DType::F16 : DType::F32); },
      1);
  const std::vector<StoredWeights>& stored = random_experts.stored;
  const std::vector<ExpertMlp>& mlps = random_experts.mlps;

  const Matrix x = random_matrix(n, hidden, 17);
  Matrix logits = random_matrix(n, experts, 18, 2.0f);
  Routing routing = route_softmax_topk(logits.ref(), k, false);
  // One token with an empty second slot (as when too few experts are kept); expert 5 unused.
  routing.expert[3 * k + 1] = -1;
  routing.weight[3 * k + 1] = 0.0f;
  for (size_t i = 0; i < n * k; ++i)
    if (routing.expert[i] == 5) routing.expert[i] = 4;

  Matrix y(n, hidden);
  std::vector<float> norms(n * k, -1.0f);
  moe_experts<Fp32Math>(x.cref(), routing, mlps, y.ref(), norms);

  std::vector<double> ref(n * hidden, 0.0);
  std::vector<double> scale(n * hidden, 0.0);
  for (size_t t = 0; t < n; ++t)
    for (size_t s = 0; s < k; ++s) {
      const int32_t e = routing.expert_at(t, s);
      if (e < 0) {
        CHECK(norms[t * k + s] == 0.0f);
        continue;
      }
      const auto ue = static_cast<size_t>(e);
      const std::vector<double> o = ref_mlp(x.row(t), hidden, stored[3 * ue].exact,
                                            stored[3 * ue + 1].exact, stored[3 * ue + 2].exact);
      double norm = 0.0;
      for (size_t c = 0; c < hidden; ++c) {
        ref[t * hidden + c] += routing.weight_at(t, s) * o[c];
        scale[t * hidden + c] += std::abs(routing.weight_at(t, s) * o[c]);
        norm += o[c] * o[c];
      }
      CHECK(norms[t * k + s] == doctest::Approx(std::sqrt(norm)).epsilon(1e-6));
    }
  // Relative to the size of the token's output row (MLP outputs are sums of many terms).
  std::vector<double> row_scale(n, 0.0);
  for (size_t t = 0; t < n; ++t)
    for (size_t c = 0; c < hidden; ++c)
      row_scale[t] = std::max(row_scale[t], scale[t * hidden + c]);
  check_close(
      y.cref(), [&](size_t r, size_t c) { return ref[r * hidden + c]; },
      [&](size_t r, size_t) { return row_scale[r] + 1e-30; }, 1e-6);

  // Eight threads put several experts in flight at once (each has one gate/up block here).
  for (size_t threads : {1u, 2u, 3u, 8u}) {
    ThreadPool pool(threads);
    Matrix y_threads(n, hidden);
    std::vector<float> norms_threads(n * k);
    moe_experts<Fp32Math>(x.cref(), routing, mlps, y_threads.ref(), norms_threads, &pool);
    CHECK(bitwise_equal(y.cref(), y_threads.cref()));
    CHECK(norms == norms_threads);
  }
}

TEST_CASE("expert_mlp over several weight blocks and the Qwen2-MoE sigmoid-gated shared expert") {
  // hidden 4096 -> 128-row gate/up half-blocks, so width 300 spans three blocks.
  const size_t n = 3, hidden = 4096, width = 300;
  const StoredWeights gate(random_matrix(width, hidden, 20, 0.05f), DType::BF16);
  const StoredWeights up(random_matrix(width, hidden, 21, 0.05f), DType::BF16);
  const StoredWeights down(random_matrix(hidden, width, 22, 0.05f), DType::BF16);
  const ExpertMlp mlp{gate.weights(), up.weights(), down.weights()};
  const Matrix x = random_matrix(n, hidden, 23);
  const Matrix gate_w = random_matrix(1, hidden, 24, 0.02f);
  Matrix plain(n, hidden);
  Matrix y(n, hidden);  // zero: the gated expert's output is added to it
  ThreadPool pool(2);
  expert_mlp<Fp32Math>(x.cref(), mlp, plain.ref(), &pool);
  add_sigmoid_gated_expert<Fp32Math>(x.cref(), mlp, std::span<const float>(gate_w.data(), hidden),
                                     y.ref(), &pool);
  std::vector<std::vector<double>> ref(n), ref_plain(n);
  std::vector<double> row_max(n, 0.0), plain_max(n, 0.0);
  for (size_t t = 0; t < n; ++t) {
    ref[t] = ref_mlp(x.row(t), hidden, gate.exact, up.exact, down.exact);
    ref_plain[t] = ref[t];
    for (double v : ref[t]) plain_max[t] = std::max(plain_max[t], std::abs(v));
    double g = 0.0;
    for (size_t c = 0; c < hidden; ++c) g += static_cast<double>(x(t, c)) * gate_w(0, c);
    for (double& v : ref[t]) {
      v *= 1.0 / (1.0 + std::exp(-g));
      row_max[t] = std::max(row_max[t], std::abs(v));
    }
  }
  check_close(
      plain.cref(), [&](size_t r, size_t c) { return ref_plain[r][c]; },
      [&](size_t r, size_t) { return plain_max[r]; }, 1e-5);
  check_close(
      y.cref(), [&](size_t r, size_t c) { return ref[r][c]; },
      [&](size_t r, size_t) { return row_max[r]; }, 1e-5);
}

TEST_CASE("activations") {
  CHECK(silu(0.0f) == 0.0f);
  CHECK(silu(2.0f) == doctest::Approx(2.0 / (1.0 + std::exp(-2.0))).epsilon(1e-7));
  CHECK(silu(-100.0f) == doctest::Approx(0.0));
  CHECK(sigmoid(0.0f) == 0.5f);
  const std::vector<float> g = {-1.0f, 0.5f, 3.0f}, u = {2.0f, -1.0f, 0.25f};
  for (size_t i = 0; i < 3; ++i)
    CHECK(glu<Fp32Math>(g[i], u[i]) == doctest::Approx(ref_silu(g[i]) * u[i]).epsilon(1e-6));
  std::vector<float> v(37);
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i) * 0.5f;
  double ss = 0.0;
  for (float e : v) ss += static_cast<double>(e) * e;
  CHECK(sum_of_squares(v.data(), v.size()) == doctest::Approx(ss).epsilon(1e-7));
}

TEST_CASE(
    "exp_vectorizable is within 2 ulp of exp over the float range and saturates at its ends") {
  double worst_ulps = 0;
  for (float x = -87.0f; x <= 88.0f; x += 0.000731f) {
    const double exact = std::exp(static_cast<double>(x));
    const float got = kernels::exp_vectorizable(x);
    const double ulp =
        std::nextafter(static_cast<float>(exact), INFINITY) - static_cast<float>(exact);
    worst_ulps = std::max(worst_ulps, std::abs(got - exact) / ulp);
  }
  CHECK(worst_ulps <= 2.0);
  CHECK(kernels::exp_vectorizable(0.0f) == 1.0f);
  CHECK(kernels::exp_vectorizable(-INFINITY) == 0.0f);
  CHECK(kernels::exp_vectorizable(-90.0f) == 0.0f);
  CHECK(std::isfinite(kernels::exp_vectorizable(1000.0f)));
  CHECK(kernels::silu(-200.0f) == doctest::Approx(0.0f));
  CHECK(std::isnan(kernels::exp_vectorizable(NAN)));
}

// ---- precision policies (kernels/precision.h) ----

namespace {

// The bf16 policy's GEMMs need oneDNN with AVX-512; elsewhere the tests that run them are skipped.
bool bf16_gemm_runs() {
  try {
    Bf16Math::require_available();
    return true;
  } catch (const UnsupportedError& e) {
    MESSAGE("bf16 GEMM tests skipped: " << e.what());
    return false;
  }
}

Matrix rounded_to_bf16(Matrix m) {
  for (size_t i = 0; i < m.rows() * m.cols(); ++i) m.data()[i] = round_bf16(m.data()[i]);
  return m;
}

bool all_bf16(ConstMatrixRef m) {
  for (size_t r = 0; r < m.rows; ++r)
    for (size_t c = 0; c < m.cols; ++c)
      if (round_bf16(m(r, c)) != m(r, c)) return false;
  return true;
}

}  // namespace

TEST_CASE("BasicMatrixRef: fp32 and BF16 views share one layout and convert to read-only") {
  static_assert(std::is_convertible_v<MatrixRef, ConstMatrixRef>);
  static_assert(std::is_convertible_v<Bf16Ref, ConstBf16Ref>);
  static_assert(!std::is_convertible_v<ConstMatrixRef, MatrixRef>);
  static_assert(!std::is_convertible_v<Bf16Ref, ConstMatrixRef>);
  Bf16Matrix m(3, 5);
  for (size_t r = 0; r < 3; ++r)
    for (size_t c = 0; c < 5; ++c) m(r, c) = static_cast<uint16_t>(10 * r + c);
  const ConstBf16Ref block = m.cref().columns(1, 3).row_range(1, 2);
  CHECK(block.rows == 2);
  CHECK(block.cols == 3);
  CHECK(block.stride == 5);
  CHECK(block(0, 0) == 11);
  CHECK(block(1, 2) == 23);
  const Bf16Ref writable = m.ref().columns(2, 2);
  writable(0, 1) = 99;
  const ConstBf16Ref read_only = writable;
  CHECK(read_only(0, 1) == 99);
  CHECK(m(0, 3) == 99);
}

TEST_CASE("precision policies: rounding, operands, SiLU-GLU and weighted accumulation") {
  // Fp32Math rounds nothing; Bf16Math to the nearest BF16, ties to even.
  CHECK(Fp32Math::round(1.0f + 0x1p-10f) == 1.0f + 0x1p-10f);
  CHECK(Bf16Math::round(1.0f + 0x1p-8f) == 1.0f);
  CHECK(Bf16Math::round(1.0f + 3 * 0x1p-8f) == 1.0f + 0x1p-6f);
  CHECK(Fp32Math::to_operand(0.1f) == 0.1f);
  CHECK(bf16_bits_to_f32(Bf16Math::to_operand(0.1f)) == round_bf16(0.1f));

  // Activations as operands: fp32 is the matrix itself, bf16 a converted copy.
  const Matrix x = random_matrix(3, 7, 30);
  Matrix unused;
  CHECK(Fp32Math::operand(x.cref(), unused).data == x.data());
  Bf16Matrix scratch;
  const ConstBf16Ref xb = Bf16Math::operand(x.cref(), scratch);
  for (size_t r = 0; r < 3; ++r)
    for (size_t c = 0; c < 7; ++c) CHECK(bf16_bits_to_f32(xb(r, c)) == round_bf16(x(r, c)));

  // The GLU: bf16 rounds gate, up, each step of the SiLU and the product.
  for (float g : {-3.0f, -0.4f, 0.1f, 1.7f, 6.0f})
    for (float u : {-2.0f, 0.3f, 1.1f}) {
      const double exact = ref_silu(g) * u;
      CHECK(glu<Fp32Math>(g, u) == doctest::Approx(exact).epsilon(1e-6));
      const float b = bf16_bits_to_f32(glu<Bf16Math>(g, u));
      CHECK(round_bf16(b) == b);
      CHECK(std::abs(b - exact) <= 4 * 0x1p-8 * std::abs(exact) + 1e-6);
      CHECK(Bf16Math::silu(g) == round_bf16(Bf16Math::silu(g)));
    }

  // Weighted expert outputs: fp32 adds in fp32; bf16 rounds the weight, the product and the sum.
  std::vector<float> fp32 = {256.0f, 1.0f, 0.0f};
  std::vector<float> bf16 = fp32;
  const std::vector<float> out = {0.75f, 0x1p-9f, 3.0f};
  Fp32Math::add_weighted(fp32.data(), out.data(), 1.0f + 0x1p-9f, 3);
  Bf16Math::add_weighted(bf16.data(), out.data(), 1.0f + 0x1p-9f, 3);
  CHECK(fp32[0] == 256.0f + 0.75f * (1.0f + 0x1p-9f));
  CHECK(fp32[2] == 3.0f * (1.0f + 0x1p-9f));
  CHECK(bf16 == std::vector<float>{256.0f, 1.0f, 3.0f});

  // The residual add and the rounding of embeddings.
  Matrix h(1, 2);
  h(0, 0) = 256.0f;
  h(0, 1) = 1.0f;
  Matrix add(1, 2);
  add(0, 0) = 0.75f;
  add(0, 1) = 0.5f;
  Matrix h_fp32 = h;
  add_into<Fp32Math>(h_fp32.ref(), add.cref());
  add_into<Bf16Math>(h.ref(), add.cref());
  CHECK(h_fp32(0, 0) == 256.75f);
  CHECK(h(0, 0) == 256.0f);
  CHECK(h(0, 1) == 1.5f);
  Matrix embedded = x;
  round_activations<Fp32Math>(embedded.ref());
  CHECK(bitwise_equal(embedded.cref(), x.cref()));
  round_activations<Bf16Math>(embedded.ref());
  CHECK(bitwise_equal(embedded.cref(), rounded_to_bf16(x).cref()));
}

TEST_CASE(
    "precision policies: GEMM outputs in place or in a dense tile, stored with the rounding") {
  Matrix out(2, 6);
  std::fill(out.data(), out.data() + 12, -5.0f);
  const MatrixRef strided = out.ref().columns(1, 3);
  std::vector<float> scratch;
  CHECK(gemm_output<Fp32Math>(strided, scratch).data == strided.data);
  const MatrixRef tile = gemm_output<Bf16Math>(strided, scratch);
  CHECK(tile.data == scratch.data());
  CHECK(tile.stride == 3);
  CHECK(gemm_output<Bf16Math>(out.ref(), scratch).data == out.data());  // already dense

  for (size_t r = 0; r < 2; ++r)
    for (size_t j = 0; j < 3; ++j) tile(r, j) = 1.0f + static_cast<float>(r * 3 + j) * 0x1p-9f;
  const std::vector<float> bias = {0.5f, 0.0f, -1.0f};
  store_results<Bf16Math>(tile, strided, bias);
  for (size_t r = 0; r < 2; ++r) {
    CHECK(out(r, 0) == -5.0f);
    CHECK(out(r, 4) == -5.0f);
    for (size_t j = 0; j < 3; ++j) CHECK(out(r, 1 + j) == round_bf16(tile(r, j) + bias[j]));
  }
  // fp32 in place: unchanged without a bias, the bias added exactly with one.
  Matrix y = random_matrix(2, 3, 31);
  const Matrix before = y;
  store_results<Fp32Math>(y.cref(), y.ref());
  CHECK(bitwise_equal(y.cref(), before.cref()));
  store_results<Fp32Math>(y.cref(), y.ref(), bias);
  for (size_t r = 0; r < 2; ++r)
    for (size_t j = 0; j < 3; ++j) CHECK(y(r, j) == before(r, j) + bias[j]);
}

TEST_CASE("precision policies: head operands, and RoPE rounded once or per product") {
  const size_t hd = 8, heads = 2, n = 5;
  const Matrix x = rounded_to_bf16(random_matrix(n, heads * hd, 32));
  std::vector<float> fp32_storage;
  std::vector<uint16_t> bf16_storage;
  const HeadOperands<float> fp32_heads = Fp32Math::heads(x.cref(), heads, hd, fp32_storage);
  const HeadOperands<uint16_t> bf16_heads = Bf16Math::heads(x.cref(), heads, hd, bf16_storage);
  CHECK(fp32_heads.head(1).data == x.data() + hd);  // a view of x itself
  CHECK(bf16_heads.head(1).stride == hd);           // dense per head
  for (size_t t = 0; t < n; ++t)
    for (size_t c = 0; c < hd; ++c) {
      CHECK(fp32_heads.head(1)(t, c) == x(t, hd + c));
      CHECK(bf16_bits_to_f32(bf16_heads.head(1)(t, c)) == x(t, hd + c));
    }

  const RopeTable table(hd, 10000.0, 16);
  const size_t first = 3;
  Matrix fp32 = x, fp32_cast = x, once = x, cast = x;
  apply_rope<Fp32Math>(fp32.ref(), heads, table, first);
  apply_rope<Fp32Math>(fp32_cast.ref(), heads, table, first, /*cast_tables=*/true);
  apply_rope<Bf16Math>(once.ref(), heads, table, first);
  apply_rope<Bf16Math>(cast.ref(), heads, table, first, /*cast_tables=*/true);
  CHECK(bitwise_equal(fp32.cref(), fp32_cast.cref()));  // nothing to cast in fp32
  size_t differing = 0;
  for (size_t t = 0; t < n; ++t)
    for (size_t c = 0; c < heads * hd; ++c) {
      // OLMo2 style: the fp32 rotation rounded once.
      CHECK(once(t, c) == round_bf16(fp32(t, c)));
      // Llama style: x * bf16(cos) + rotate_half(x) * bf16(sin), each product and the sum rounded.
      const size_t h = c / hd, i = c % hd, j = i % (hd / 2);
      const float cs = round_bf16(table.cos(first + t)[j]);
      const float sn = round_bf16(table.sin(first + t)[j]);
      const float lo = x(t, h * hd + j), hi = x(t, h * hd + j + hd / 2);
      const float expected = i < hd / 2 ? round_bf16(round_bf16(lo * cs) - round_bf16(hi * sn))
                                        : round_bf16(round_bf16(hi * cs) + round_bf16(lo * sn));
      CHECK(cast(t, c) == expected);
      differing += cast(t, c) != once(t, c);
    }
  CHECK(differing > 0);
}

TEST_CASE("Fp32Math gate/up: one fused GEMM, or dot products for a few tokens") {
  const size_t hidden = 64, width = 40, begin = 5, count = 20;
  const Matrix x = random_matrix(9, hidden, 33);
  const StoredWeights gate(random_matrix(width, hidden, 34, 0.2f), DType::BF16);
  const StoredWeights up(random_matrix(width, hidden, 35, 0.2f), DType::F16);
  const std::vector<double> ref_gate = ref_linear(x.cref(), gate.exact, {});
  const std::vector<double> ref_up = ref_linear(x.cref(), up.exact, {});
  for (size_t m : {size_t{3}, size_t{9}}) {  // dots, then the GEMM
    CAPTURE(m);
    const GateUpProducts products =
        Fp32Math::gate_up(x.cref().row_range(0, m), gate.weights(), up.weights(), begin, count);
    CHECK(products.gate.rows == m);
    CHECK(products.up.cols == count);
    for (size_t t = 0; t < m; ++t)
      for (size_t j = 0; j < count; ++j) {
        CHECK(products.gate(t, j) ==
              doctest::Approx(ref_gate[t * width + begin + j]).epsilon(1e-5));
        CHECK(products.up(t, j) == doctest::Approx(ref_up[t * width + begin + j]).epsilon(1e-5));
      }
  }
}

TEST_CASE("Bf16Math: scores rounded twice, gate/up as two GEMMs") {
  if (!bf16_gemm_runs()) return;
  const size_t hd = 12;  // hd^-0.5 is not a BF16 value: the scale is rounded first
  const Matrix q = random_matrix(5, hd, 36, 2.0f), k = random_matrix(7, hd, 37, 2.0f);
  Bf16Matrix qb, kb;
  const ConstBf16Ref q_op = Bf16Math::operand(q.cref(), qb), k_op = Bf16Math::operand(k.cref(), kb);
  Matrix raw(5, 7), scores(5, 7);
  Bf16Math::gemm_abt(q_op, k_op, raw.ref());
  Bf16Math::attention_scores(q_op, k_op, scores.ref(), hd, 0);
  const float scale = round_bf16(static_cast<float>(1.0 / std::sqrt(12.0)));
  CHECK(scale != static_cast<float>(1.0 / std::sqrt(12.0)));
  for (size_t r = 0; r < 5; ++r)
    for (size_t c = 0; c < 7; ++c) CHECK(scores(r, c) == round_bf16(round_bf16(raw(r, c)) * scale));

  const StoredWeights gate(random_matrix(30, hd, 38, 0.2f), DType::BF16, 0);
  const StoredWeights up(random_matrix(30, hd, 39, 0.2f), DType::F32, 0);
  const GateUpProducts products = Bf16Math::gate_up(q_op, gate.weights(), up.weights(), 4, 20);
  Matrix g(5, 20), u(5, 20);
  Bf16Math::expert_product(q_op, gate.weights(), 4, 20, g.ref());
  Bf16Math::expert_product(q_op, up.weights(), 4, 20, u.ref());
  CHECK(bitwise_equal(products.gate, g.cref()));
  CHECK(bitwise_equal(products.up, u.cref()));
}

TEST_CASE("bf16 ops: BF16 results near fp32, the same for any thread count and weight storage") {
  if (!bf16_gemm_runs()) return;
  ThreadPool pool(2);

  SUBCASE("matmul_xWt over several weight blocks, with bias") {
    // 8192 inputs give 64-row BF16 blocks: 150 outputs span three.
    const size_t n = 9, in = 8192, out = 150;
    CHECK(Bf16Math::weight_block_rows(in) == 64);
    const Matrix x = rounded_to_bf16(random_matrix(n, in, 40));
    const Matrix w = rounded_to_bf16(random_matrix(out, in, 41, 0.05f));
    const Matrix bias_m = rounded_to_bf16(random_matrix(1, out, 42));
    const std::vector<float> bias(bias_m.data(), bias_m.data() + out);
    const StoredWeights in_place(w, DType::BF16, 0), converted(w, DType::F32, 0);
    Matrix y(n, out), y_converted(n, out), y_threads(n, out), y_fp32(n, out);
    matmul_xWt<Bf16Math>(x.cref(), in_place.weights(), y.ref(), bias);
    matmul_xWt<Bf16Math>(x.cref(), converted.weights(), y_converted.ref(), bias);
    matmul_xWt<Bf16Math>(x.cref(), in_place.weights(), y_threads.ref(), bias, &pool);
    matmul_xWt<Fp32Math>(x.cref(), in_place.weights(), y_fp32.ref(), bias);
    CHECK(all_bf16(y.cref()));
    CHECK(bitwise_equal(y.cref(), y_converted.cref()));
    CHECK(bitwise_equal(y.cref(), y_threads.cref()));
    // One rounding of the same fp32-accumulated sum.
    check_close(
        y.cref(), [&](size_t r, size_t c) { return y_fp32(r, c); },
        [&](size_t r, size_t c) { return std::abs(y_fp32(r, c)) + 1e-3; }, 0x1p-8);
  }

  SUBCASE("causal attention") {
    const size_t n = 300, heads = 4, kv_heads = 2, hd = 32;
    const Matrix q = rounded_to_bf16(random_matrix(n, heads * hd, 43, 2.0f));
    const Matrix k = rounded_to_bf16(random_matrix(n, kv_heads * hd, 44, 2.0f));
    const Matrix v = rounded_to_bf16(random_matrix(n, kv_heads * hd, 45));
    const AttentionShape shape{heads, kv_heads, hd};
    Matrix out(n, heads * hd), out_threads(n, heads * hd), out_fp32(n, heads * hd);
    causal_attention<Bf16Math>(q.cref(), k.cref(), v.cref(), shape, out.ref());
    causal_attention<Bf16Math>(q.cref(), k.cref(), v.cref(), shape, out_threads.ref(), &pool);
    causal_attention<Fp32Math>(q.cref(), k.cref(), v.cref(), shape, out_fp32.ref());
    CHECK(all_bf16(out.cref()));
    CHECK(bitwise_equal(out.cref(), out_threads.cref()));
    // Convex combinations of v (|v| <= 1) with probabilities rounded to BF16.
    check_close(
        out.cref(), [&](size_t r, size_t c) { return out_fp32(r, c); },
        [](size_t, size_t) { return 1.0; }, 3e-2);
  }

  SUBCASE("moe_experts and the gated shared expert") {
    const size_t n = 37, hidden = 64, width = 48, experts = 4, k = 2;
    const RandomExperts random_experts(
        experts, hidden, width, 200, [](size_t e) { return e % 2 == 0 ? DType::BF16 : DType::F32; },
        0);
    const std::vector<ExpertMlp>& mlps = random_experts.mlps;
    const Matrix x = rounded_to_bf16(random_matrix(n, hidden, 46));
    Matrix logits = random_matrix(n, experts, 47, 2.0f);
    const Routing routing = route_softmax_topk(logits.ref(), k, false);
    Matrix y(n, hidden), y_threads(n, hidden), y_fp32(n, hidden);
    std::vector<float> norms(n * k), norms_threads(n * k), norms_fp32(n * k);
    moe_experts<Bf16Math>(x.cref(), routing, mlps, y.ref(), norms);
    moe_experts<Bf16Math>(x.cref(), routing, mlps, y_threads.ref(), norms_threads, &pool);
    moe_experts<Fp32Math>(x.cref(), routing, mlps, y_fp32.ref(), norms_fp32);
    CHECK(all_bf16(y.cref()));
    CHECK(bitwise_equal(y.cref(), y_threads.cref()));
    CHECK(norms == norms_threads);
    std::vector<double> row_max(n, 0.0);
    for (size_t t = 0; t < n; ++t)
      for (size_t c = 0; c < hidden; ++c)
        row_max[t] = std::max(row_max[t], std::abs(static_cast<double>(y_fp32(t, c))));
    check_close(
        y.cref(), [&](size_t r, size_t c) { return y_fp32(r, c); },
        [&](size_t r, size_t) { return row_max[r]; }, 4e-2);
    for (size_t i = 0; i < n * k; ++i)
      CHECK(norms[i] == doctest::Approx(norms_fp32[i]).epsilon(4e-2));

    const Matrix gate_w = rounded_to_bf16(random_matrix(1, hidden, 48, 0.2f));
    Matrix shared = y, shared_fp32 = y;
    add_sigmoid_gated_expert<Bf16Math>(x.cref(), mlps[0], {gate_w.data(), hidden}, shared.ref(),
                                       &pool);
    add_sigmoid_gated_expert<Fp32Math>(x.cref(), mlps[0], {gate_w.data(), hidden},
                                       shared_fp32.ref(), &pool);
    CHECK(all_bf16(shared.cref()));
    check_close(
        shared.cref(), [&](size_t r, size_t c) { return shared_fp32(r, c); },
        [&](size_t r, size_t) { return row_max[r] + 1.0; }, 4e-2);
  }
}

// What pooling the windows of a layer-major block rests on (kernels/moe.h, kBatchableRows): a
// row of an fp32 GEMM with at least kBatchableRows rows has the same bits whatever the other
// rows are and wherever it sits. If a oneDNN release breaks this, this test fails first.
TEST_CASE(
    "gemm_abt: rows of products of at least kBatchableRows rows are independent of the rest") {
  for (const auto& [inner, outputs] :
       {std::pair<size_t, size_t>{2048, 128}, {1024, 256}, {700, 90}}) {
    const size_t all = 600;
    const Matrix a = random_matrix(all, inner, 60);
    const Matrix b = random_matrix(outputs, inner, 61, 0.05f);
    Matrix c(all, outputs);
    gemm_abt(a.cref(), b.cref(), c.ref());
    for (const size_t rows : {kBatchableRows, kBatchableRows + 1, size_t{31}, size_t{257}})
      for (const size_t first : {size_t{0}, size_t{5}, all - rows}) {
        Matrix part(rows, outputs);
        gemm_abt(a.cref().row_range(first, rows), b.cref(), part.ref());
        INFO("K " << inner << ", N " << outputs << ", rows " << first << " + " << rows);
        CHECK(bitwise_equal(part.cref(), c.cref().row_range(first, rows)));
      }
  }
}

template <class Math>
void check_segments_equal_separate_calls() {
  // Segment sizes such that an expert gets fewer than 8, fewer than kBatchableRows and more
  // tokens from different segments.
  const std::vector<size_t> lengths = {5, 40, 12, 70, 9, 33, 1};
  const size_t n = std::accumulate(lengths.begin(), lengths.end(), size_t{0});
  const size_t hidden = 64, width = 48, experts = 4, k = 2;
  const RandomExperts random_experts(
      experts, hidden, width, 300, [](size_t e) { return e % 2 == 0 ? DType::BF16 : DType::F32; },
      0);
  const Matrix x = rounded_to_bf16(random_matrix(n, hidden, 62));
  Matrix logits = random_matrix(n, experts, 63, 2.0f);
  const Routing routing = route_softmax_topk(logits.ref(), k, false);
  ThreadPool pool(2);
  Matrix pooled(n, hidden);
  std::vector<float> pooled_norms(n * k);
  moe_experts<Math>(x.cref(), routing, random_experts.mlps, pooled.ref(), pooled_norms, &pool,
                    lengths);
  size_t first = 0;
  for (const size_t length : lengths) {
    Routing part;
    part.tokens = length;
    part.k = k;
    part.expert.assign(routing.expert.begin() + static_cast<std::ptrdiff_t>(first * k),
                       routing.expert.begin() + static_cast<std::ptrdiff_t>((first + length) * k));
    part.weight.assign(routing.weight.begin() + static_cast<std::ptrdiff_t>(first * k),
                       routing.weight.begin() + static_cast<std::ptrdiff_t>((first + length) * k));
    Matrix alone(length, hidden);
    std::vector<float> norms(length * k);
    moe_experts<Math>(x.cref().row_range(first, length), part, random_experts.mlps, alone.ref(),
                      norms, &pool);
    INFO("segment at " << first << " of " << length << " tokens");
    CHECK(bitwise_equal(alone.cref(), pooled.cref().row_range(first, length)));
    CHECK(std::equal(norms.begin(), norms.end(),
                     pooled_norms.begin() + static_cast<std::ptrdiff_t>(first * k)));
    first += length;
  }
}

TEST_CASE("moe_experts over segments equals one call per segment, bit for bit") {
  SUBCASE("fp32") { check_segments_equal_separate_calls<Fp32Math>(); }
  SUBCASE("bf16") {
    if (bf16_gemm_runs()) check_segments_equal_separate_calls<Bf16Math>();
  }
}
