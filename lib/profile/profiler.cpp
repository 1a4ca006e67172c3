// Accumulating counts, router mass, gate x output norm and gate weights from the forward pass's MoE
// events.
#include "profile/profiler.h"

#include <filesystem>
#include <utility>
#include <vector>

#include "common/atomic_output.h"
#include "common/json_parse.h"
#include "model/keep_plan.h"

namespace moeslice {

void UsageAccumulator::on_moe_layer(const MoeLayerEvent& event) {
  // The layer's own experts: fewer than the profile's E columns in an EMO slice with per-layer
  // counts, whose remaining columns stay zero.
  const size_t experts = event.experts;
  const size_t base = profile_.index(document_, event.layer, 0);
  int32_t* counts = &profile_.counts[base];
  float* mass = &profile_.mass[base];
  float* gate_norm = &profile_.gate_norm[base];
  float* gate_weight = &profile_.gate_weight[base];
  for (size_t t = 0; t < event.tokens; ++t) {
    const float* probabilities = event.router_probs.row(t);
    for (size_t e = 0; e < experts; ++e) mass[e] += probabilities[e];
    for (size_t s = 0; s < event.slots; ++s) {
      const size_t slot = t * event.slots + s;
      const int32_t expert = event.chosen[slot];
      if (expert < 0) continue;  // a slot left empty under a keep plan
      counts[expert] += 1;
      if (!event.expert_out_norms.empty())  // the layer-wise selector may observe routing only
        gate_norm[expert] += event.weights[slot] * event.expert_out_norms[slot];
      gate_weight[expert] += event.weights[slot];
    }
  }
}

namespace {

ForwardOptions profiling_options(const ProfileOptions& options) {
  ForwardOptions forward = forward_options(options.run);
  forward.keep = options.keep;
  forward.skip_lm_head = true;
  forward.stop_after_last_moe_layer = true;
  return forward;
}

}  // namespace

UsageProfile empty_usage_profile(const Model& model, const ProfileOptions& options) {
  const ModelSpec& spec = model.spec;
  UsageProfile profile;
  profile.layers = spec.num_layers;
  profile.experts = spec.num_experts;
  ForwardPass probe(model, profiling_options(options));
  profile.info = {
      {"family", spec.family->family},
      {"model", normalized_absolute_path(model.checkpoint->path())},
      {"layers", spec.num_layers},
      {"experts", spec.num_experts},
      {"expert_layers", spec.expert_layers()},
      {"top_k", spec.experts_per_token},
      {"shared_experts", spec.shared_experts},
      {"max_seq", probe.max_window()},
      {"compute", std::string(compute_mode_name(options.run.compute))},
      {"keep_plan", options.keep ? parse_json(keep_plan_json(*options.keep), "the keep plan")
                                 : nlohmann::json()},
      {"moeslice_version", MOESLICE_VERSION},
      {"sources", nlohmann::json::array()}};
  if (spec.routing.groups > 1) {
    // Group-limited routing: rank keeps the same number of experts in every group.
    profile.info["routing_groups"] = spec.routing.groups;
    profile.info["routing_groups_per_token"] = spec.routing.groups_per_token;
  }
  if (!spec.uniform_experts()) {
    // A slice with per-layer counts: layer l uses experts [0, its count) of the E columns.
    nlohmann::json counts = nlohmann::json::array();
    for (const auto& layer : spec.layers) counts.push_back(layer.num_experts);
    profile.info["experts_per_layer"] = counts;
  }
  return profile;
}

namespace {

void profile_one(ForwardPass& forward, const TokenDocument& document, const std::string& domain,
                 UsageProfile& profile) {
  const int64_t index = profile.add_document({document.id, domain});
  UsageAccumulator accumulator(profile, index);
  naming_document(document.id, [&] { forward.run(document.tokens, &accumulator); });
  profile.tokens[static_cast<size_t>(index)] = static_cast<int64_t>(document.tokens.size());
}

}  // namespace

void profile_documents(const Model& model, std::span<const TokenDocument> documents,
                       std::span<const std::string> domains, const ProfileOptions& options,
                       UsageProfile& profile) {
  ForwardPass forward(model, profiling_options(options));
  int64_t tokens_done = 0;
  for (size_t i = 0; i < documents.size(); ++i) {
    const TokenDocument& document = documents[i];
    profile_one(forward, document, domains.empty() ? document.domain : domains[i], profile);
    tokens_done += static_cast<int64_t>(document.tokens.size());
    if (options.progress) options.progress(static_cast<int64_t>(i) + 1, tokens_done);
  }
}

void DocumentWindows::add(int64_t document, WindowState state) {
  documents_.push_back(document);
  owned_.push_back(std::make_unique<WindowState>(std::move(state)));
  accumulators_.push_back(std::make_unique<UsageAccumulator>(profile_, document));
  states_.push_back(owned_.back().get());
  observers_.push_back(accumulators_.back().get());
}

void DocumentWindows::check_layer_output(const ForwardPass& forward, int64_t layer) const {
  for (size_t i = 0; i < states_.size(); ++i)
    naming_document(profile_.documents[static_cast<size_t>(documents_[i])].id,
                    [&] { forward.check_layer_output(layer, *states_[i]); });
}

namespace {

// Layer-major: every window of `documents` through layer l before layer l + 1.
void profile_block(ForwardPass& forward, std::vector<TokenDocument>& documents,
                   UsageProfile& profile) {
  DocumentWindows block(profile);
  for (TokenDocument& document : documents) {
    const int64_t index = profile.add_document({document.id, document.domain});
    profile.tokens[static_cast<size_t>(index)] = static_cast<int64_t>(document.tokens.size());
    for (const Window& window : forward.windows_for(document.tokens.size()))
      block.add(index, naming_document(document.id,
                                       [&] { return forward.embed(document.tokens, window); }));
    document.tokens = {};  // the windows hold what is needed from here on
  }
  for (int64_t l = 0; l <= forward.last_layer(); ++l) {
    // The windows' experts computed together (ForwardPass::run_layer_batch), each window's state
    // and usage exactly as run_layer on it alone would leave them.
    forward.run_layer_batch(l, block.states(), block.observers());
    block.check_layer_output(forward, l);
    forward.release_layer(l);
  }
}

}  // namespace

void profile_documents(const Model& model, const DocumentSource& next,
                       const ProfileOptions& options, UsageProfile& profile) {
  ForwardPass forward(model, profiling_options(options));
  int64_t documents_done = 0, tokens_done = 0;
  if (options.order == ProfileOrder::kDocuments) {
    while (std::optional<TokenDocument> document = next()) {
      profile_one(forward, *document, document->domain, profile);
      tokens_done += static_cast<int64_t>(document->tokens.size());
      if (options.progress) options.progress(++documents_done, tokens_done);
    }
    return;
  }
  for (bool more = true; more;) {
    std::vector<TokenDocument> documents;
    size_t block_tokens = 0;
    while (documents.empty() || block_tokens < options.block_tokens) {
      std::optional<TokenDocument> document = next();
      if (!document) {
        more = false;
        break;
      }
      block_tokens += document->tokens.size();
      documents.push_back(std::move(*document));
    }
    if (documents.empty()) break;
    profile_block(forward, documents, profile);
    documents_done += static_cast<int64_t>(documents.size());
    tokens_done += static_cast<int64_t>(block_tokens);
    if (options.progress) options.progress(documents_done, tokens_done);
  }
}

}  // namespace moeslice
