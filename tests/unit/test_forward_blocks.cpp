// The forward pass's blocks chosen by profile kinds: the router registry (one router per routing
// kind the forward pass implements, the slots rule, the refusals), torch.topk's tie order, and
// the attention block registry.
#include <cstddef>
#include <cstdint>
#include <random>
#include <set>
#include <span>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "common/error.h"
#include "forward/attention/attention_block.h"
#include "forward/routing/router.h"
#include "forward/routing/torch_tie_order.h"
#include "kernels/matrix.h"
#include "kernels/precision.h"
#include "kernels/routing.h"
#include "model/family_profile.h"
#include "test_util.h"

namespace moeslice {
namespace {

using kernels::Matrix;
using kernels::Routing;

Matrix random_logits(size_t rows, size_t cols, uint32_t seed) {
  Matrix m(rows, cols);
  std::mt19937 random(seed);
  std::normal_distribution<float> normal(0.0f, 2.0f);
  for (size_t i = 0; i < rows * cols; ++i) m.data()[i] = normal(random);
  return m;
}

// Two routings agree exactly.
void check_same(const Routing& a, const Routing& b) {
  CHECK(a.k == b.k);
  CHECK(a.expert == b.expert);
  CHECK(a.weight == b.weight);
}

TEST_CASE("routers: one per implemented routing kind, each the kernel's rule") {
  const Matrix logits = random_logits(7, 9, 3);
  for (bool renormalise : {false, true}) {
    Matrix probs = logits, expected_probs = logits;
    const auto router = make_router({RoutingKind::kSoftmaxTopK, 9, 3, 0, renormalise}, nullptr);
    CHECK(router->slots() == 3);
    check_same(router->route(probs.ref(), TopKTies::kLowerIndexFirst),
               kernels::route_softmax_topk(expected_probs.ref(), 3, renormalise));
    CHECK(probs.data()[5] == expected_probs.data()[5]);  // probabilities in place
  }
  {
    // Mixtral always renormalises.
    Matrix probs = logits, expected_probs = logits;
    const auto router =
        make_router({RoutingKind::kSoftmaxTopKRenormalised, 9, 2, 0, false}, nullptr);
    check_same(router->route(probs.ref(), TopKTies::kLowerIndexFirst),
               kernels::route_softmax_topk(expected_probs.ref(), 2, true));
  }
  {
    // EMO: 8 routed + 1 shared, top-3.
    Matrix probs = logits, expected_probs = logits;
    const auto router = make_router({RoutingKind::kEmoSplitSoftmax, 9, 3, 1, true}, nullptr);
    check_same(router->route(probs.ref(), TopKTies::kLowerIndexFirst),
               kernels::route_emo(expected_probs.ref(), 3, 1));
  }
  {
    // EMO without shared experts is softmax top-k, renormalised when the config says so.
    Matrix probs = logits, expected_probs = logits;
    const auto router = make_router({RoutingKind::kEmoSplitSoftmax, 9, 3, 0, true}, nullptr);
    check_same(router->route(probs.ref(), TopKTies::kLowerIndexFirst),
               kernels::route_softmax_topk(expected_probs.ref(), 3, true));
  }
}

TEST_CASE("routers: the keep plan's mask and slots rule") {
  const Matrix logits = random_logits(5, 9, 4);
  const std::vector<int32_t> two = {2, 6};
  Matrix probs = logits;
  const auto softmax = make_router({RoutingKind::kSoftmaxTopK, 9, 3, 0, false}, &two);
  CHECK(softmax->slots() == 2);
  for (int32_t e : softmax->route(probs.ref(), TopKTies::kTorchTopk).expert)
    CHECK((e == 2 || e == 6));
  // EMO: the plan keeps one routed expert and the shared one: min(3 - 1, 1) + 1 slots.
  const std::vector<int32_t> one_routed = {5, 8};
  probs = logits;
  const auto emo = make_router({RoutingKind::kEmoSplitSoftmax, 9, 3, 1, false}, &one_routed);
  CHECK(emo->slots() == 2);
  const Routing chosen = emo->route(probs.ref(), TopKTies::kTorchTopk);
  for (size_t t = 0; t < chosen.tokens; ++t) {
    CHECK(chosen.expert_at(t, 0) == 5);
    CHECK(chosen.expert_at(t, 1) == 8);
  }
  const MoeRouting routing =
      make_moe_routing(RoutingKind::kEmoSplitSoftmax, 9, 3, 1, false, &one_routed);
  CHECK(routing.experts == 9);
  CHECK(routing.slots == routing.router->slots());
}

TEST_CASE("routers: kinds the forward pass does not implement are refused as before") {
  for (RoutingKind kind : {RoutingKind::kDeepseekGroupSigmoid, RoutingKind::kGptOssTopKSoftmax}) {
    const std::string message = test::thrown_message<UnsupportedError>([&] {
      make_router({kind, 8, 2, 0, false}, nullptr);
    });
    CHECK(message ==
          "this family's routing (group-limited sigmoid or top-k-then-softmax) is not "
          "implemented by the forward pass");
  }
}

TEST_CASE("torch tie order: only tied picks move, never onto a dropped expert") {
  // Token 0: no ties; token 1: every routed expert tied; token 2: ties, expert 1 dropped.
  Matrix probs(3, 6);
  const float distinct[] = {0.1f, 0.3f, 0.05f, 0.25f, 0.2f, 0.1f};
  for (size_t e = 0; e < 6; ++e) {
    probs(0, e) = distinct[e];
    probs(1, e) = 0.125f;
    probs(2, e) = e == 5 ? 0.5f : 0.1f;
  }
  const std::vector<uint8_t> keep = {1, 0, 1, 1, 1, 1};
  Routing chosen(3, 3);
  for (size_t t = 0; t < 3; ++t) {
    const std::span<const uint8_t> mask =
        t == 2 ? std::span<const uint8_t>(keep) : std::span<const uint8_t>();
    kernels::top_k(probs.row(t), 6, 3, mask, chosen.expert.data() + t * 3,
                   chosen.weight.data() + t * 3);
  }
  const Routing before = chosen;
  const TopKSegment all[] = {{0, 6}};
  apply_torch_tie_order(probs.cref(), all, {}, chosen);
  CHECK(chosen.weight == before.weight);
  for (size_t s = 0; s < 3; ++s) CHECK(chosen.expert_at(0, s) == before.expert_at(0, s));
  std::set<int32_t> distinct_ids(chosen.expert.begin() + 3, chosen.expert.begin() + 6);
  CHECK(distinct_ids.size() == 3);
  // With the mask, expert 1 stays out whatever order torch would take.
  Routing masked = before;
  apply_torch_tie_order(probs.cref(), all, keep, masked);
  CHECK(masked.expert_at(2, 0) == 5);
  for (size_t s = 0; s < 3; ++s) CHECK(masked.expert_at(2, s) != 1);
}

TEST_CASE("attention blocks: the registry builds the standard kind for both policies") {
  AttentionParams params;
  params.kind = AttentionKind::kStandard;
  params.heads = 4;
  params.kv_heads = 2;
  params.head_dim = 8;
  CHECK(make_attention_block<kernels::Fp32Math>(params) != nullptr);
  CHECK(make_attention_block<kernels::Bf16Math>(params) != nullptr);
}

TEST_CASE("kind names are the profiles' spellings") {
  CHECK(attention_kind_name(AttentionKind::kStandard) == "standard");
  CHECK(routing_kind_name(RoutingKind::kSoftmaxTopK) == "softmax_topk");
  CHECK(routing_kind_name(RoutingKind::kEmoSplitSoftmax) == "emo_split_softmax");
  CHECK(routing_kind_name(RoutingKind::kDeepseekGroupSigmoid) == "deepseek_group_sigmoid");
}

}  // namespace
}  // namespace moeslice
