// The slice check: restricted full layers against sliced layers on the same random inputs.
#include "slice/slice_check.h"

#include <algorithm>
#include <cmath>
#include <random>

#include <fmt/core.h>

#include "common/error.h"
#include "forward/layer_weights.h"
#include "forward/moe_block.h"
#include "forward/routing/router.h"
#include "kernels/thread_pool.h"

namespace moeslice {

namespace {

constexpr size_t kVerifyTokens = 8;

}  // namespace

RestrictedOutputs restricted_layer_outputs(const Model& full, const KeepPlan& plan) {
  const ModelWeights weights = load_model_weights(full.spec, *full.checkpoint);
  kernels::ThreadPool pool(0);  // every core: converting the experts' weights is the cost
  const auto hidden = static_cast<size_t>(full.spec.hidden);
  RestrictedOutputs out;
  out.x = kernels::Matrix(kVerifyTokens, hidden);
  std::mt19937 random(1234);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (size_t i = 0; i < kVerifyTokens * hidden; ++i) out.x.data()[i] = normal(random);
  out.y.resize(full.spec.layers.size());
  for (const auto& layer : full.spec.layers) {
    if (!layer.has_experts) continue;
    const auto l = static_cast<size_t>(layer.index);
    out.y[l] = kernels::Matrix(kVerifyTokens, hidden);
    MoeRecord record;
    const MoeWeights& moe = *weights.layers[l].moe;
    moe_block(moe,
              layer_routing(full.spec, layer, plan.kept_in(layer.index), moe.router_choice_bias),
              out.x.cref(), out.y[l].ref(), record, &pool);
    // The full layer's routed experts may be most of a huge checkpoint: keep memory near a layer.
    release_layer_pages(*full.checkpoint, layer);
  }
  return out;
}

double check_sliced_layers(const Model& sliced, const RestrictedOutputs& expected) {
  const ModelWeights weights = load_model_weights(sliced.spec, *sliced.checkpoint);
  kernels::ThreadPool pool(0);
  kernels::Matrix y(expected.x.rows(), expected.x.cols());
  double worst = 0;
  for (const auto& layer : sliced.spec.layers) {
    if (!layer.has_experts) continue;
    const auto l = static_cast<size_t>(layer.index);
    MoeRecord record;
    const MoeWeights& moe = *weights.layers[l].moe;
    moe_block(moe, layer_routing(sliced.spec, layer, nullptr, moe.router_choice_bias),
              expected.x.cref(), y.ref(), record, &pool);
    const kernels::Matrix& reference = expected.y[l];
    double max_diff = 0, max_ref = 0;
    for (size_t i = 0; i < y.rows() * y.cols(); ++i) {
      max_diff = std::max(max_diff, std::fabs(double{reference.data()[i]} - y.data()[i]));
      max_ref = std::max(max_ref, std::fabs(double{reference.data()[i]}));
    }
    const double relative = max_ref > 0 ? max_diff / max_ref : max_diff;
    worst = std::max(worst, relative);
    release_layer_pages(*sliced.checkpoint, layer);
    // Different GEMM shapes (the router has E rows in one model, K in the other) may round
    // differently: ~1e-7 per value at hidden 2048, so the bar is 1e-5; a wrong expert is O(1).
    if (relative > 1e-5)
      throw Error(
          fmt::format("verification failed: layer {} of the sliced model differs from the "
                      "restricted full layer by {:.3g} (relative); nothing was written",
                      layer.index, relative));
  }
  return worst;
}

}  // namespace moeslice
