// RoPE tables and rotation.
#include "kernels/rope.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <vector>

#include "kernels/precision.h"

namespace moeslice::kernels {

namespace {

// YaRN's inverse frequencies from the plain ones' denominators theta^(2j/d), step by step in
// fp32 as _compute_yarn_parameters computes them (the correction range in double, as Python).
std::vector<float> yarn_inv_freq(const std::vector<float>& pos_freqs, size_t dim, double theta,
                                 const YarnScaling& yarn) {
  const double pi = 3.14159265358979323846;
  const auto correction_dim = [&](double rotations) {
    return (static_cast<double>(dim) *
            std::log(yarn.original_max_positions / (rotations * 2 * pi))) /
           (2 * std::log(theta));
  };
  double low = correction_dim(yarn.beta_fast);
  double high = correction_dim(yarn.beta_slow);
  if (yarn.truncate) {
    low = std::floor(low);
    high = std::ceil(high);
  }
  low = std::max(low, 0.0);
  high = std::min(high, static_cast<double>(dim - 1));
  if (low == high) high += 0.001;  // as the modeling code: no division by zero
  const float low_f = static_cast<float>(low);
  const float span = static_cast<float>(high - low);
  const float factor = static_cast<float>(yarn.factor);
  std::vector<float> inv_freq(pos_freqs.size());
  for (size_t j = 0; j < pos_freqs.size(); ++j) {
    const float extrapolation = 1.0f / pos_freqs[j];
    const float interpolation = 1.0f / (factor * pos_freqs[j]);
    const float ramp = std::clamp((static_cast<float>(j) - low_f) / span, 0.0f, 1.0f);
    const float extrapolation_factor = 1.0f - ramp;
    inv_freq[j] =
        interpolation * (1.0f - extrapolation_factor) + extrapolation * extrapolation_factor;
  }
  return inv_freq;
}

}  // namespace

RopeTable::RopeTable(size_t head_dim, double theta, size_t positions,
                     const std::optional<YarnScaling>& yarn)
    : head_dim_(head_dim), positions_(positions) {
  assert(head_dim % 2 == 0 && head_dim > 0);
  const size_t half = head_dim / 2;
  std::vector<float> pos_freqs(half);
  const float base = static_cast<float>(theta);
  for (size_t j = 0; j < half; ++j) {
    const float exponent = static_cast<float>(2 * j) / static_cast<float>(head_dim);
    pos_freqs[j] = std::pow(base, exponent);
  }
  inv_freq_.resize(half);
  for (size_t j = 0; j < half; ++j) inv_freq_[j] = 1.0f / pos_freqs[j];
  float attention_factor = 1.0f;
  if (yarn) {
    inv_freq_ = yarn_inv_freq(pos_freqs, head_dim, theta, *yarn);
    attention_factor = static_cast<float>(yarn->attention_factor);
  }
  cos_.resize(positions * half);
  sin_.resize(positions * half);
  for (size_t p = 0; p < positions; ++p)
    for (size_t j = 0; j < half; ++j) {
      const float angle = static_cast<float>(p) * inv_freq_[j];
      cos_[p * half + j] = std::cos(angle);
      sin_[p * half + j] = std::sin(angle);
      if (yarn) {
        cos_[p * half + j] *= attention_factor;
        sin_[p * half + j] *= attention_factor;
      }
    }
}

namespace {

// One RoPE variant: kCastTables rounds the tables and every product (Llama style), otherwise only
// the rotated value is rounded.
template <class Math, bool kCastTables>
void rotate(MatrixRef x, size_t heads, const RopeTable& table, size_t first_position) {
  const size_t d = table.head_dim();
  const size_t half = d / 2;
  assert(x.cols == heads * d);
  assert(first_position + x.rows <= table.positions());
  const auto product = [](float value) { return kCastTables ? Math::round(value) : value; };
  std::vector<float> cos_cast(kCastTables ? half : 0), sin_cast(kCastTables ? half : 0);
  for (size_t t = 0; t < x.rows; ++t) {
    const float* c = table.cos(first_position + t);
    const float* s = table.sin(first_position + t);
    if constexpr (kCastTables) {
      for (size_t j = 0; j < half; ++j) {
        cos_cast[j] = Math::round(c[j]);
        sin_cast[j] = Math::round(s[j]);
      }
      c = cos_cast.data();
      s = sin_cast.data();
    }
    float* row = x.row(t);
    for (size_t h = 0; h < heads; ++h) {
      float* lo = row + h * d;
      float* hi = lo + half;
      for (size_t j = 0; j < half; ++j) {
        // q * cos + rotate_half(q) * sin, with rotate_half(q) = [-q_hi, q_lo].
        const float a = lo[j];
        const float b = hi[j];
        lo[j] = Math::round(product(a * c[j]) - product(b * s[j]));
        hi[j] = Math::round(product(b * c[j]) + product(a * s[j]));
      }
    }
  }
}

}  // namespace

template <class Math>
void apply_rope(MatrixRef x, size_t heads, const RopeTable& table, size_t first_position,
                bool cast_tables) {
  // Without rounding, casting the tables changes nothing: one variant serves.
  if constexpr (Math::kRoundsResults)
    if (cast_tables) return rotate<Math, true>(x, heads, table, first_position);
  rotate<Math, false>(x, heads, table, first_position);
}

template void apply_rope<Fp32Math>(MatrixRef, size_t, const RopeTable&, size_t, bool);
template void apply_rope<Bf16Math>(MatrixRef, size_t, const RopeTable&, size_t, bool);

}  // namespace moeslice::kernels
