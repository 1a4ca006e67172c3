// The layer-by-layer driver: ForwardPass's layer steps applied to every calibration window before
// moving to the next layer, each MoE layer measured unrestricted (its router alone unless the
// expert output norms are wanted), then restricted to its choice.
#include "rank/layerwise_select.h"

#include <numeric>
#include <utility>
#include <vector>

#include <fmt/core.h>

#include "common/atomic_output.h"
#include "common/error.h"
#include "common/json_parse.h"
#include "forward/forward_pass.h"
#include "forward/run_settings.h"
#include "profile/profiler.h"
#include "profile/usage_exchange.h"
#include "rank/rank_metric.h"

namespace moeslice {

SelectResult select_experts(const Model& model, std::span<const TokenDocument> documents,
                            const SelectOptions& options) {
  if (options.rank.domain)
    throw InputError("select ranks the whole calibration corpus; a domain filter does not apply");
  if (options.rank.nonuniform)
    throw InputError(
        "select chooses layer by layer and cannot spend a global budget "
        "(nonuniform); use rank --nonuniform on a profile");
  if (documents.empty()) throw InputError("the calibration corpus holds no document");
  const ModelSpec& spec = model.spec;

  SelectResult result;
  RankedPlan& plan = result.plan;
  plan.layout = layout_from_spec(spec, normalized_absolute_path(model.checkpoint->path()));
  plan.options = options.rank;
  plan.method = fmt::format("moeslice-select-{}", metric_name(options.rank.metric));
  const ExpertLayout& layout = plan.layout;
  plan.keep_count = resolve_keep_count(options.rank.keep, layout.experts,
                                       static_cast<int64_t>(layout.shared.size()));
  check_group_balance(layout, options.rank, plan.keep_count, "--keep");

  ProfileOptions profile_options;
  profile_options.run = options.run;
  UsageProfile& usage = result.usage;
  usage = empty_usage_profile(model, profile_options);

  ForwardOptions pass_options = forward_options(options.run);
  pass_options.stop_after_last_moe_layer = true;
  ForwardPass forward(model, std::move(pass_options));

  // Every window of every document, embedded; each carries its document's profile row.
  DocumentWindows windows(usage);
  const Cluster& cluster = *options.cluster;
  for (const TokenDocument& document : documents) {
    const int64_t index = usage.add_document({document.id, document.domain});
    usage.tokens[static_cast<size_t>(index)] = static_cast<int64_t>(document.tokens.size());
    if (!cluster.owns(index)) continue;  // another rank computes it
    try {
      for (const Window& window : forward.windows_for(document.tokens.size()))
        windows.add(index, forward.embed(document.tokens, window));
    } catch (const InputError& e) {
      throw InputError(fmt::format("document {}: {}", document.id, e.what()));
    }
  }

  std::vector<int64_t> all_documents(static_cast<size_t>(usage.document_count()));
  std::iota(all_documents.begin(), all_documents.end(), int64_t{0});
  for (int64_t d : all_documents) plan.tokens += usage.tokens[static_cast<size_t>(d)];
  plan.documents = usage.document_count();
  plan.layers.resize(static_cast<size_t>(layout.layers));

  // The windows go through each layer together (ForwardPass's batch steps pool their experts'
  // tokens; every state ends as the one-window steps would leave it), then each window's hidden
  // state is checked, naming its document.
  const bool measure_norms =
      options.usage_output_norms || metric_needs_output_norms(options.rank.metric);
  const ForwardPass::MoeObservation observed =
      measure_norms ? ForwardPass::MoeObservation::kRoutingAndExpertNorms
                    : ForwardPass::MoeObservation::kRouting;
  if (!measure_norms) usage.info["gate_norm"] = "not measured";
  const int64_t moe_layers = static_cast<int64_t>(layout.expert_layers.size());
  int64_t moe_done = 0;
  for (int64_t l = 0; l <= forward.last_layer(); ++l) {
    if (!spec.layers[static_cast<size_t>(l)].has_experts) {
      forward.run_layer_batch(l, windows.states());
      windows.check_layer_output(forward, l);
      continue;
    }
    // Measure with this layer unrestricted (earlier layers already are as chosen).
    for (WindowState* state : windows.states()) forward.run_attention(l, *state);
    forward.observe_moe_batch(l, windows.states(), windows.observers(), /*unrestricted=*/true,
                              observed);
    share_layer_rows(cluster, usage, l);
    // Choose, exactly as rank does from a profile.
    LayerChoice choice = score_layer(usage, l, all_documents, options.rank);
    std::vector<int32_t> kept =
        choose_experts(choice.scores, plan.keep_count, layout, options.rank);
    set_kept(choice, std::move(kept), usage, l, all_documents, layout, options.rank.weighting);
    // Carry the hidden states through the restricted layer.
    forward.restrict_layer(l, choice.kept);
    forward.run_mlp_batch(l, windows.states());
    windows.check_layer_output(forward, l);
    plan.layers[static_cast<size_t>(l)] = std::move(choice);
    if (options.progress) options.progress(++moe_done, moe_layers);
  }
  usage.info["layerwise_select"] =
      parse_json(keep_plan_json(to_keep_plan(plan)), "the selected plan");
  plan.source = {{"max_seq", usage.info.value("max_seq", nlohmann::json())}};
  return result;
}

}  // namespace moeslice
