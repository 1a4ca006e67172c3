// Replaying torch.topk's selection among tied values.
#include "forward/routing/torch_tie_order.h"

#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

namespace moeslice {
namespace {

// torch.topk selects with std::nth_element and sorts the first k - 1 (std::partial_sort when
// k * 64 <= n), comparing values only. This replays that selection on one token's probabilities
// [0, n) and, when it picks the same values as the routing kernel (it always does; only tied ids
// can differ), takes its expert ids.
void apply_torch_tie_order(const float* probs, size_t n, int32_t offset,
                           std::span<const uint8_t> keep, int32_t* ids, size_t picked) {
  if (picked == 0) return;
  using Elem = std::pair<double, int64_t>;  // PyTorch's accumulate type for float is double
  std::vector<Elem> queue(n);
  for (size_t i = 0; i < n; ++i) queue[i] = {probs[i], static_cast<int64_t>(i)};
  const auto larger = [](const Elem& x, const Elem& y) {
    return (std::isnan(x.first) && !std::isnan(y.first)) || x.first > y.first;
  };
  const auto k = static_cast<std::ptrdiff_t>(picked);
  if (picked * 64 <= n) {
    std::partial_sort(queue.begin(), queue.begin() + k, queue.end(), larger);
  } else {
    std::nth_element(queue.begin(), queue.begin() + k - 1, queue.end(), larger);
    std::sort(queue.begin(), queue.begin() + k - 1, larger);
  }
  for (size_t s = 0; s < picked; ++s) {
    const auto torch_id = static_cast<size_t>(queue[s].second);
    if (ids[s] < offset) return;
    const auto kernel_id = static_cast<size_t>(ids[s] - offset);
    if (!(probs[torch_id] == probs[kernel_id])) return;  // not a tie: keep the kernel's choice
    if (!keep.empty() && keep[torch_id + static_cast<size_t>(offset)] == 0) return;
  }
  for (size_t s = 0; s < picked; ++s) ids[s] = static_cast<int32_t>(queue[s].second) + offset;
}

}  // namespace

void apply_torch_tie_order(kernels::ConstMatrixRef probs, std::span<const TopKSegment> segments,
                           std::span<const uint8_t> keep, kernels::Routing& chosen) {
  for (size_t t = 0; t < chosen.tokens; ++t) {
    int32_t* ids = chosen.expert.data() + t * chosen.k;
    const float* row = probs.row(t);
    size_t slot = 0;
    for (const TopKSegment& segment : segments) {
      // The segment's picks fill the next slots; empty slots are -1.
      size_t picked = 0;
      while (slot + picked < chosen.k && ids[slot + picked] >= 0 &&
             static_cast<size_t>(ids[slot + picked]) < segment.end)
        ++picked;
      apply_torch_tie_order(row + segment.begin, segment.end - segment.begin,
                            static_cast<int32_t>(segment.begin), keep, ids + slot, picked);
      slot += picked;
    }
  }
}

}  // namespace moeslice
