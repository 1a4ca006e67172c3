// Routing: masking, softmax, top-k and the per-family rules.
#include "kernels/routing.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <limits>
#include <numeric>
#include <vector>

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

void softmax_over_chosen(ConstMatrixRef logits, Routing& routing) {
  std::vector<float> chosen(routing.k);
  for (size_t t = 0; t < routing.tokens; ++t) {
    const int32_t* idx = routing.expert.data() + t * routing.k;
    float* w = routing.weight.data() + t * routing.k;
    size_t picked = 0;
    while (picked < routing.k && idx[picked] >= 0) {
      chosen[picked] = logits.row(t)[idx[picked]];
      ++picked;
    }
    if (picked == 0) continue;
    softmax_row(chosen.data(), picked);
    std::copy(chosen.begin(), chosen.begin() + static_cast<std::ptrdiff_t>(picked), w);
  }
}

Routing route_topk_softmax(MatrixRef logits, size_t k, std::span<const uint8_t> keep) {
  assert(k > 0 && k <= logits.cols);
  mask_logits(logits, keep);
  Routing routing(logits.rows, k);
  for (size_t t = 0; t < logits.rows; ++t)
    top_k(logits.row(t), logits.cols, k, keep, routing.expert.data() + t * k,
          routing.weight.data() + t * k);
  softmax_over_chosen(logits, routing);
  softmax_rows(logits);
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

Routing route_group_sigmoid(MatrixRef logits, const GroupSigmoidRule& rule,
                            std::span<const uint8_t> keep) {
  const size_t experts = logits.cols;
  assert(rule.groups > 0 && experts % rule.groups == 0);
  assert(rule.groups_per_token >= 1 && rule.groups_per_token <= rule.groups);
  assert(rule.choice_bias.empty() || rule.choice_bias.size() == experts);
  const size_t group_size = experts / rule.groups;
  mask_logits(logits, keep);
  Routing routing(logits.rows, rule.k);
  std::vector<float> choice(experts), group_score(rule.groups);
  std::vector<size_t> group_order(rule.groups);
  for (size_t t = 0; t < logits.rows; ++t) {
    float* scores = logits.row(t);
    for (size_t e = 0; e < experts; ++e) {
      // torch.sigmoid in fp32; sigmoid(-inf) = 0 for a dropped expert.
      scores[e] = 1.0f / (1.0f + std::exp(-scores[e]));
      const bool dropped = !keep.empty() && keep[e] == 0;
      choice[e] =
          dropped ? kMinusInf : scores[e] + (rule.choice_bias.empty() ? 0.0f : rule.choice_bias[e]);
    }
    // A group's score: the sum of its two largest choice scores (-inf when fewer than two kept).
    for (size_t g = 0; g < rule.groups; ++g) {
      float first = kMinusInf, second = kMinusInf;
      for (size_t e = g * group_size; e < (g + 1) * group_size; ++e) {
        if (greater(choice[e], first)) {
          second = first;
          first = choice[e];
        } else if (greater(choice[e], second)) {
          second = choice[e];
        }
      }
      group_score[g] = group_size >= 2 ? first + second : first;
    }
    // The groups kept: the top groups_per_token scores, the lower group first on ties.
    std::iota(group_order.begin(), group_order.end(), size_t{0});
    std::stable_sort(group_order.begin(), group_order.end(),
                     [&](size_t a, size_t b) { return greater(group_score[a], group_score[b]); });
    for (size_t i = rule.groups_per_token; i < rule.groups; ++i) {
      const size_t g = group_order[i];
      for (size_t e = g * group_size; e < (g + 1) * group_size; ++e)
        if (choice[e] != kMinusInf) choice[e] = 0.0f;
    }
    int32_t* idx = routing.expert.data() + t * rule.k;
    float* w = routing.weight.data() + t * rule.k;
    const size_t picked = top_k(choice.data(), experts, rule.k, keep, idx, w);
    float sum = 0.0f;
    for (size_t s = 0; s < picked; ++s) {
      w[s] = scores[idx[s]];
      sum += w[s];
    }
    for (size_t s = 0; s < picked; ++s) {
      if (rule.renormalize) w[s] /= sum + 1e-20f;
      w[s] *= rule.scaling;
    }
  }
  return routing;
}

}  // namespace moeslice::kernels
