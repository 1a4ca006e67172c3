// The forward pass's blocks chosen by profile kinds: the router registry (one router per routing
// kind the forward pass implements, the slots rule, the refusals), torch.topk's tie order, and
// the attention block registry.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <random>
#include <set>
#include <span>
#include <string>
#include <utility>
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

TEST_CASE("routers: gpt-oss takes the top-k of the logits and softmaxes those k") {
  const Matrix logits = random_logits(5, 8, 9);
  const std::vector<int32_t> kept = {1, 2, 4, 6, 7};
  for (const std::vector<int32_t>* plan :
       {static_cast<const std::vector<int32_t>*>(nullptr), &kept}) {
    Matrix probs = logits;
    const auto router = make_router({RoutingKind::kGptOssTopKSoftmax, 8, 3, 0, false}, plan);
    CHECK(router->slots() == 3);
    const Routing chosen = router->route(probs.ref(), TopKTies::kLowerIndexFirst);
    for (size_t t = 0; t < chosen.tokens; ++t) {
      // The k largest kept logits, descending; weights exp(l - max) / sum over those k.
      std::vector<std::pair<float, int32_t>> order;
      for (int32_t e = 0; e < 8; ++e)
        if (plan == nullptr || std::count(plan->begin(), plan->end(), e) == 1)
          order.push_back({logits.row(t)[e], e});
      std::sort(order.begin(), order.end(), [](auto a, auto b) { return a.first > b.first; });
      double sum = 0;
      for (size_t s = 0; s < 3; ++s) sum += std::exp(double(order[s].first - order[0].first));
      float prob_sum = 0;
      for (size_t s = 0; s < 3; ++s) {
        CHECK(chosen.expert_at(t, s) == order[s].second);
        CHECK(
            chosen.weight_at(t, s) ==
            doctest::Approx(std::exp(double(order[s].first - order[0].first)) / sum).epsilon(1e-6));
        prob_sum += probs.row(t)[order[s].second];
      }
      // The probabilities left for the profiler: the softmax over every kept expert.
      float total = 0;
      for (size_t e = 0; e < 8; ++e) total += probs.row(t)[e];
      CHECK(total == doctest::Approx(1.0).epsilon(1e-5));
      CHECK(prob_sum <= doctest::Approx(1.0));
    }
  }
}

// DeepSeek-V3 settings: 8 experts in `groups` groups, top-3, routed_scaling_factor 2.5.
RouterSettings group_sigmoid(size_t experts, size_t top_k, size_t groups, size_t groups_per_token,
                             bool renormalise, std::vector<float> bias) {
  RouterSettings settings{RoutingKind::kDeepseekGroupSigmoid, experts, top_k, 0, renormalise};
  settings.groups = groups;
  settings.groups_per_token = groups_per_token;
  settings.scaling = 2.5f;
  settings.choice_bias = std::move(bias);
  return settings;
}

TEST_CASE("group sigmoid router: groups by their top-2 biased scores, weights unbiased") {
  // Every logit 0 (score 0.5), so the bias alone decides. Choice scores by group of two:
  // g0 0.6 + 0.45 = 1.05, g1 0.3 + 0.8 = 1.1, g2 0.7 + 0.6 = 1.3, g3 0.0 + 0.9 = 0.9: g2 and g1
  // are kept, and the best three of their experts are 3, 4, 5 (expert 7's 0.9 is in g3).
  const std::vector<float> bias = {0.1f, -0.05f, -0.2f, 0.3f, 0.2f, 0.1f, -0.5f, 0.4f};
  for (bool renormalise : {true, false}) {
    Matrix scores(2, 8);
    const auto router = make_router(group_sigmoid(8, 3, 4, 2, renormalise, bias), nullptr);
    CHECK(router->slots() == 3);
    CHECK(router->fp32_logits());
    const Routing chosen = router->route(scores.ref(), TopKTies::kTorchTopk);
    for (size_t t = 0; t < 2; ++t) {
      CHECK(chosen.expert_at(t, 0) == 3);
      CHECK(chosen.expert_at(t, 1) == 4);
      CHECK(chosen.expert_at(t, 2) == 5);
      // Unbiased scores 0.5 each: renormalised 1/3, times 2.5.
      for (size_t s = 0; s < 3; ++s)
        CHECK(chosen.weight_at(t, s) == doctest::Approx(renormalise ? 2.5 / 3 : 1.25));
    }
    CHECK(scores(0, 0) == 0.5f);  // sigmoid scores in place, unbiased
  }
  // The plan drops expert 3: g1 scores -inf, g2 and g0 are kept; expert 2 of the dropped group
  // is set to 0.0 and not chosen; ties (experts 0 and 5 at 0.6) go to the lower id.
  const std::vector<int32_t> kept = {0, 1, 2, 4, 5, 6, 7};
  Matrix scores(1, 8);
  const auto masked = make_router(group_sigmoid(8, 3, 4, 2, true, bias), &kept);
  const Routing chosen = masked->route(scores.ref(), TopKTies::kLowerIndexFirst);
  CHECK(chosen.expert == std::vector<int32_t>{4, 0, 5});
  CHECK(scores(0, 3) == 0.0f);  // a dropped expert's score is sigmoid(-inf)
}

TEST_CASE("group sigmoid router: experts outside the kept groups score 0.0, as the code does") {
  // Negative choice scores everywhere: g0 -0.4 - 0.3 = -0.7 loses to g1 -0.2 - 0.45 = -0.65, yet
  // g0's experts, set to 0.0, beat g1's own negative scores in the final top-k.
  Matrix scores(1, 4);
  const auto router =
      make_router(group_sigmoid(4, 3, 2, 1, false, {-0.9f, -0.8f, -0.7f, -0.95f}), nullptr);
  CHECK(router->route(scores.ref(), TopKTies::kLowerIndexFirst).expert ==
        std::vector<int32_t>{0, 1, 2});
}

TEST_CASE("group sigmoid router: group settings the experts do not fit are refused") {
  CHECK(test::thrown_message<ModelError>([] {
          make_router(group_sigmoid(8, 2, 3, 1, false, {}), nullptr);
        }) == "8 experts do not split into n_group = 3 equal routing groups");
  CHECK(test::thrown_message<ModelError>([] {
          make_router(group_sigmoid(8, 2, 4, 5, false, {}), nullptr);
        }) == "topk_group is 5, expected between 1 and n_group = 4");
  CHECK(test::thrown_message<ModelError>([] {
          make_router(group_sigmoid(8, 2, 4, 2, false, {0.0f}), nullptr);
        }) == "the router's correction bias has 1 values, expected 8");
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
