// torch.topk's order among exactly tied router probabilities, for routers under a precision
// policy with kTorchTopkTies (bf16; TopKTies::kTorchTopk): BF16 router logits tie exactly far more
// often than fp32 ones, and on exact ties torch.topk (CPU, PyTorch 1.13) does not take the lower
// index first. The routing kernels (kernels/routing.h) pick lower index first; this replays
// torch's selection afterwards and takes its expert ids where only tied ids differ.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "kernels/matrix.h"
#include "kernels/routing.h"

namespace moeslice {

// Expert ids [begin, end) over which a router takes one top-k (EMO: the routed experts, then the
// shared ones); a token's slots hold each segment's picks in turn.
struct TopKSegment {
  size_t begin = 0;
  size_t end = 0;
};

// For every token of `chosen`, reorders the picks of each segment among tied probabilities as
// torch.topk would (`probs` [tokens, experts] after the router's softmax; `keep` the plan's mask,
// empty: all kept). Weights are unchanged: tied entries carry equal values.
void apply_torch_tie_order(kernels::ConstMatrixRef probs, std::span<const TopKSegment> segments,
                           std::span<const uint8_t> keep, kernels::Routing& chosen);

}  // namespace moeslice
