// RoPE tables and rotation.
#include "kernels/rope.h"

#include <cassert>
#include <cmath>
#include <vector>

#include "kernels/precision.h"

namespace moeslice::kernels {

RopeTable::RopeTable(size_t head_dim, double theta, size_t positions)
    : head_dim_(head_dim), positions_(positions) {
  assert(head_dim % 2 == 0 && head_dim > 0);
  const size_t half = head_dim / 2;
  inv_freq_.resize(half);
  const float base = static_cast<float>(theta);
  for (size_t j = 0; j < half; ++j) {
    const float exponent = static_cast<float>(2 * j) / static_cast<float>(head_dim);
    inv_freq_[j] = 1.0f / std::pow(base, exponent);
  }
  cos_.resize(positions * half);
  sin_.resize(positions * half);
  for (size_t p = 0; p < positions; ++p)
    for (size_t j = 0; j < half; ++j) {
      const float angle = static_cast<float>(p) * inv_freq_[j];
      cos_[p * half + j] = std::cos(angle);
      sin_[p * half + j] = std::sin(angle);
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
