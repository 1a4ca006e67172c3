// Router helpers: masking to a kept expert subset, softmax, top-k with PyTorch's order, and the
// routing rules of the supported families (softmax -> top-k [-> renormalise], EMO's split softmax
// with shared experts last, and DeepSeek-V3's group-limited sigmoid routing).
//
// A sliced model must compute what the full model computes with the dropped experts' logits at
// -inf, so masking happens before the softmax, and top-k never picks a dropped expert: a token
// gets min(k, kept) experts and the remaining slots stay empty (expert -1, weight 0).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "kernels/matrix.h"

namespace moeslice::kernels {

// The experts chosen for n tokens, k slots per token, slot order as top-k returned them.
struct Routing {
  size_t tokens = 0;
  size_t k = 0;
  std::vector<int32_t> expert;  // [tokens * k]; -1 marks an empty slot
  std::vector<float> weight;    // [tokens * k]; 0 for an empty slot

  Routing() = default;
  Routing(size_t n, size_t slots) : tokens(n), k(slots), expert(n * slots, -1), weight(n * slots) {}
  int32_t expert_at(size_t token, size_t slot) const { return expert[token * k + slot]; }
  float weight_at(size_t token, size_t slot) const { return weight[token * k + slot]; }
};

// Sets logits of experts with keep[e] == 0 to -inf. keep has one entry per column; empty keeps all.
void mask_logits(MatrixRef logits, std::span<const uint8_t> keep);

// Row-wise softmax (max subtraction, float accumulation) of columns [begin, begin + count).
void softmax_rows(MatrixRef values, size_t begin, size_t count);
inline void softmax_rows(MatrixRef values) { softmax_rows(values, 0, values.cols); }

// The k largest of values[0..n) in PyTorch topk order: descending, and on exact ties the lower
// index first (NaN counts as largest, as in PyTorch). Entries equal to -inf and entries with
// keep[i] == 0 (keep empty: none) are never picked. Writes min(k, eligible) indices and values
// and returns that count.
size_t top_k(const float* values, size_t n, size_t k, std::span<const uint8_t> keep, int32_t* index,
             float* value);

// olmoe, flex_olmo, qwen2/3_moe, mixtral: logits [n, E] are masked and replaced by the softmax
// probabilities (in place; the profiler reads them), then top-k per token, weights renormalised
// to sum 1 when `renormalize`.
Routing route_softmax_topk(MatrixRef logits, size_t k, bool renormalize,
                           std::span<const uint8_t> keep = {});

// gpt-oss (GptOssTopKRouter): the top-k of the masked logits [n, E], weights the softmax over
// those k logits (no renormalisation needed: they sum to 1). The logits are then replaced in place
// by the softmax over every kept expert, the probabilities the profiler reads (the chosen
// experts' weights are those probabilities renormalised over the chosen).
Routing route_topk_softmax(MatrixRef logits, size_t k, std::span<const uint8_t> keep = {});

// The weights of `routing` recomputed as the softmax, per token, of logits [n, E] over that
// token's chosen experts (in slot order; empty slots stay 0).
void softmax_over_chosen(ConstMatrixRef logits, Routing& routing);

// EMO: of E experts the last `shared` are shared. logits [n, E] are masked and replaced by two
// independent softmaxes, over the first E - shared columns and over the last `shared`; a token
// takes top-(k - shared) of the first part and top-`shared` of the second (indices offset by
// E - shared), routed slots first. No renormalisation.
Routing route_emo(MatrixRef logits, size_t k, size_t shared, std::span<const uint8_t> keep = {});

// DeepSeek-V3 / GLM-4.5 (transformers' DeepseekV3TopkRouter): the settings of one layer.
struct GroupSigmoidRule {
  size_t k = 0;                        // slots: experts per token, or fewer under a plan
  size_t groups = 1;                   // n_group: experts [g * E / groups, (g + 1) * E / groups)
  size_t groups_per_token = 1;         // topk_group
  bool renormalize = false;            // norm_topk_prob
  float scaling = 1.0f;                // routed_scaling_factor
  std::span<const float> choice_bias;  // [E] e_score_correction_bias; empty: zeros
};

// Group-limited sigmoid routing: logits [n, E] are masked and replaced by s = sigmoid(logit) in
// place (a dropped expert's s is 0). The choice score c = s + choice_bias (-inf for a dropped
// expert); each group is scored by the sum of its two largest c, the top groups_per_token groups
// are kept, and c of every other expert is set to 0.0 (not -inf, as the modeling code does;
// dropped experts stay -inf); a token takes the top-k of c. Its weights are the s of the chosen
// experts, divided by (sum + 1e-20) when `renormalize`, times `scaling`. Slots in descending c.
Routing route_group_sigmoid(MatrixRef logits, const GroupSigmoidRule& rule,
                            std::span<const uint8_t> keep = {});

}  // namespace moeslice::kernels
