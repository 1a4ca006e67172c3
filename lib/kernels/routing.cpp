// Routing: masking, softmax, top-k and the per-family rules.
#include "kernels/routing.h"

#include <cassert>
#include <cmath>
#include <limits>

#include "kernels/softmax.h"

namespace moeslice::kernels {
namespace {

constexpr float kMinusInf = -std::numeric_limits<float>::infinity();

// Strict "a ranks before b" for values only; index order breaks ties at the caller.
bool greater(float a, float b) { return (a > b) || (std::isnan(a) && !std::isnan(b)); }

}  // namespace

void mask_logits(MatrixRef logits, std::span<const uint8_t> keep) {
  if (keep.empty()) return;
  assert(keep.size() == logits.cols);
  for (size_t r = 0; r < logits.rows; ++r) {
    float* row = logits.row(r);
    for (size_t e = 0; e < logits.cols; ++e)
      if (keep[e] == 0) row[e] = kMinusInf;
  }
}

void softmax_rows(MatrixRef values, size_t begin, size_t count) {
  assert(begin + count <= values.cols);
  for (size_t r = 0; r < values.rows; ++r) softmax_row(values.row(r) + begin, count);
}

size_t top_k(const float* values, size_t n, size_t k, std::span<const uint8_t> keep, int32_t* index,
             float* value) {
  assert(keep.empty() || keep.size() == n);
  if (k == 0) return 0;
  // Insertion into a sorted prefix: k is small (<= 8 in every family) and the scan is in index
  // order, so an equal later value goes after the earlier one, giving the lower-index-first ties.
  size_t count = 0;
  for (size_t i = 0; i < n; ++i) {
    const float v = values[i];
    if (v == kMinusInf || (!keep.empty() && keep[i] == 0)) continue;
    if (count == k && !greater(v, value[k - 1])) continue;
    size_t pos = count < k ? count++ : k - 1;
    while (pos > 0 && greater(v, value[pos - 1])) {
      value[pos] = value[pos - 1];
      index[pos] = index[pos - 1];
      --pos;
    }
    value[pos] = v;
    index[pos] = static_cast<int32_t>(i);
  }
  return count;
}

Routing route_softmax_topk(MatrixRef logits, size_t k, bool renormalize,
                           std::span<const uint8_t> keep) {
  assert(k > 0 && k <= logits.cols);
  mask_logits(logits, keep);
  softmax_rows(logits);
  Routing routing(logits.rows, k);
  for (size_t t = 0; t < logits.rows; ++t) {
    int32_t* idx = routing.expert.data() + t * k;
    float* w = routing.weight.data() + t * k;
    const size_t picked = top_k(logits.row(t), logits.cols, k, keep, idx, w);
    if (renormalize && picked > 0) {
      float sum = 0.0f;
      for (size_t s = 0; s < picked; ++s) sum += w[s];
      for (size_t s = 0; s < picked; ++s) w[s] /= sum;
    }
  }
  return routing;
}

Routing route_emo(MatrixRef logits, size_t k, size_t shared, std::span<const uint8_t> keep) {
  const size_t experts = logits.cols;
  assert(shared < k && k <= experts && shared < experts);
  const size_t routed = experts - shared;
  mask_logits(logits, keep);
  softmax_rows(logits, 0, routed);
  if (shared > 0) softmax_rows(logits, routed, shared);
  const std::span<const uint8_t> keep_routed = keep.empty() ? keep : keep.first(routed);
  const std::span<const uint8_t> keep_shared = keep.empty() ? keep : keep.subspan(routed);
  Routing routing(logits.rows, k);
  for (size_t t = 0; t < logits.rows; ++t) {
    int32_t* idx = routing.expert.data() + t * k;
    float* w = routing.weight.data() + t * k;
    const float* row = logits.row(t);
    const size_t picked = top_k(row, routed, k - shared, keep_routed, idx, w);
    if (shared == 0) continue;
    int32_t* shared_idx = idx + picked;
    float* shared_w = w + picked;
    const size_t picked_shared =
        top_k(row + routed, shared, shared, keep_shared, shared_idx, shared_w);
    for (size_t s = 0; s < picked_shared; ++s) shared_idx[s] += static_cast<int32_t>(routed);
  }
  return routing;
}

}  // namespace moeslice::kernels
