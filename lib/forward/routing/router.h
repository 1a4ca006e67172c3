// The router as a block chosen by the profile's RoutingKind: the interface every routing kind
// implements (router logits -> probabilities, each token's chosen experts and gate weights, under
// the keep plan's mask and the kind's slots rule), the registry that maps a kind to its router
// (one file per kind beside this one: softmax_topk_router.h, emo_split_softmax_router.h,
// group_sigmoid_router.h), and a
// MoE layer's routing as the forward pass and the slice check hold it.
//
// A sliced model must compute what the full model computes with the dropped experts' logits at
// -inf, so every router masks before it normalises and never chooses a dropped expert.
//
// Thread safety: a router is immutable after construction.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "kernels/matrix.h"
#include "kernels/routing.h"
#include "model/family_profile.h"
#include "model/model_spec.h"

namespace moeslice {

// How top-k orders exactly tied scores: the lower expert id first (fp32), or as torch.topk does
// on CPU (bf16, whose tied router probabilities are common; torch_tie_order.h).
enum class TopKTies { kLowerIndexFirst, kTorchTopk };

// One MoE layer's routing as the profile and config resolve it, before a plan.
struct RouterSettings {
  RoutingKind kind = RoutingKind::kSoftmaxTopK;
  size_t experts = 0;  // router outputs (EMO: shared experts included)
  size_t top_k = 0;    // experts per token (EMO: shared experts included)
  size_t shared = 0;   // EMO: the last `shared` experts, always chosen
  bool renormalise = false;
  // Group-limited sigmoid routing (group_sigmoid_router.h): n_group, topk_group,
  // routed_scaling_factor and the per-expert e_score_correction_bias (empty: zeros).
  size_t groups = 1;
  size_t groups_per_token = 1;
  float scaling = 1.0f;
  std::vector<float> choice_bias{};
};

class Router {
 public:
  virtual ~Router() = default;
  size_t experts() const { return experts_; }
  // Experts chosen per token: top_k, or fewer when the plan keeps fewer (the kind's rule).
  size_t slots() const { return slots_; }
  // scores [n, experts] holds the raw router logits and is replaced in place by the probabilities
  // the profiler reads; returns slots() chosen experts per token in top-k order with their gate
  // weights (empty slots: expert -1, weight 0).
  virtual kernels::Routing route(kernels::MatrixRef scores, TopKTies ties) const = 0;
  // True when the router's logits are computed in fp32 whatever the compute mode (DeepSeek-V3
  // casts x and the router weight to fp32); otherwise they are rounded as any Linear.
  virtual bool fp32_logits() const { return false; }

 protected:
  // `kept`: the plan's ascending ids in this layer, or nullptr (all kept).
  Router(size_t experts, const std::vector<int32_t>* kept, size_t slots);
  // One flag per expert, 1 where kept; empty when all are kept.
  std::span<const uint8_t> keep() const { return keep_; }

 private:
  size_t experts_;
  std::vector<uint8_t> keep_;
  size_t slots_;
};

// How many experts a plan keeps in a layer of `experts` (all when `kept` is null).
inline size_t kept_count(size_t experts, const std::vector<int32_t>* kept) {
  return kept ? kept->size() : experts;
}

// The router of settings.kind over `kept` (the plan's ascending ids in this layer, or nullptr).
// Throws UnsupportedError for routing kinds the forward pass does not implement (gpt-oss), and
// ModelError for group settings the experts do not fit (group_sigmoid_router.h).
std::unique_ptr<const Router> make_router(const RouterSettings& settings,
                                          const std::vector<int32_t>* kept);

// One MoE layer's router with the keep plan folded in.
struct MoeRouting {
  size_t experts = 0;  // router outputs
  size_t slots = 0;    // router->slots()
  std::unique_ptr<const Router> router;
};

// The router of `settings` as a MoeRouting. `kept` is the plan's ascending ids for this layer, or
// nullptr. Throws as make_router.
MoeRouting make_moe_routing(const RouterSettings& settings, const std::vector<int32_t>* kept);
MoeRouting make_moe_routing(RoutingKind kind, size_t experts, size_t top_k, size_t shared,
                            bool renormalise, const std::vector<int32_t>* kept);

// The routing of MoE layer `layer` of `spec` (its own expert count, the model's top-k and
// spec.routing) over `kept` experts (all when null); `choice_bias` is the layer's router
// correction bias (group-limited routing; empty otherwise). The forward pass and the slicer's
// check both route through here.
MoeRouting layer_routing(const ModelSpec& spec, const LayerSpec& layer,
                         const std::vector<int32_t>* kept, std::span<const float> choice_bias = {});

}  // namespace moeslice
