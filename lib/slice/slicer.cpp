// Writing a sliced checkpoint: tensor selection and renaming, config rewrite, side files, verify.
#include "slice/slicer.h"

#include <algorithm>
#include <cmath>
#include <future>
#include <map>
#include <random>
#include <tuple>

#include <fmt/core.h>
#include <fmt/ranges.h>

#include "common/atomic_output.h"
#include "common/error.h"
#include "format/format_registry.h"
#include "format/json_file.h"
#include "format/safetensors/checkpoint.h"
#include "forward/layer_weights.h"
#include "forward/moe_block.h"
#include "kernels/thread_pool.h"
#include "model/sliced_config.h"

namespace moeslice {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// Copies the rows `kept` (along axis 0) of a mapped tensor.
TensorSource kept_rows(const TensorView& view, const std::vector<int32_t>& kept,
                       const TensorStore& store) {
  TensorSource source;
  source.name = view.name;
  source.dtype = view.dtype;
  source.shape = view.shape;
  source.shape[0] = static_cast<int64_t>(kept.size());
  const auto bytes = view.bytes;
  const size_t row_bytes = bytes.size() / static_cast<size_t>(view.shape[0]);
  source.produce = [&view, bytes, row_bytes, kept, &store](const ByteSink& sink) {
    for (int32_t id : kept) sink(bytes.subspan(static_cast<size_t>(id) * row_bytes, row_bytes));
    store.release_pages(view);
  };
  return source;
}

// The original-model ids of the kept experts: when the input is itself a slice, its
// pruning_metadata.json maps its ids back to the model it was cut from.
json original_ids(const TensorStore& checkpoint, const KeepPlan& plan,
                  std::string& original_model) {
  json layers = json::array();
  const fs::path previous = checkpoint.path() / kPruningMetadataFileName;
  json earlier;
  if (fs::exists(previous)) {
    earlier = read_json_file(previous);
    if (earlier.contains("original_model") && earlier["original_model"].is_string())
      original_model = earlier["original_model"].get<std::string>();
  }
  for (size_t l = 0; l < plan.kept.size(); ++l) {
    if (!plan.kept[l]) {
      layers.push_back(nullptr);
      continue;
    }
    json ids = json::array();
    const json* mapping = nullptr;
    if (earlier.contains("experts_kept_per_layer") &&
        earlier["experts_kept_per_layer"].is_array() &&
        l < earlier["experts_kept_per_layer"].size() &&
        earlier["experts_kept_per_layer"][l].is_array())
      mapping = &earlier["experts_kept_per_layer"][l];
    for (int32_t id : *plan.kept[l]) {
      if (mapping != nullptr && static_cast<size_t>(id) < mapping->size())
        ids.push_back((*mapping)[static_cast<size_t>(id)]);
      else
        ids.push_back(id);
    }
    layers.push_back(ids);
  }
  return layers;
}

}  // namespace

constexpr size_t kVerifyTokens = 8;

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
    moe_block(*weights.layers[l].moe, layer_routing(full.spec, layer, plan.kept_in(layer.index)),
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
    moe_block(*weights.layers[l].moe, layer_routing(sliced.spec, layer, nullptr), expected.x.cref(),
              y.ref(), record, &pool);
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

std::vector<int64_t> kept_counts(const KeepPlan& plan, const ModelSpec& spec) {
  if (!spec.uniform_experts())
    throw UnsupportedError(fmt::format(
        "{}: the model already keeps different expert counts per layer; slice the full model",
        spec.config_path.string()));
  std::vector<int64_t> counts(spec.layers.size(), 0);
  int64_t first = -1;
  for (const auto& layer : spec.layers) {
    if (!layer.has_experts) continue;
    const auto* kept = plan.kept_in(layer.index);
    if (kept == nullptr)
      throw InputError(
          fmt::format("{}: layer {} has experts but no kept list; a slice needs one "
                      "for every layer with experts",
                      plan.source, layer.index));
    const auto size = static_cast<int64_t>(kept->size());
    if (first >= 0 && size != first && !spec.per_layer_expert_counts())
      throw InputError(
          fmt::format("{}: layer {} keeps {} experts but earlier layers keep {}; "
                      "standard loaders need the same count in every layer (only the emo "
                      "family's config can list per-layer counts)",
                      plan.source, layer.index, size, first));
    if (first < 0) first = size;
    counts[static_cast<size_t>(layer.index)] = size;
    check_plan_fits_routing(spec, layer, *kept, plan.source);
  }
  if (first < 0)
    throw InputError(fmt::format("{}: the model has no layer with experts", plan.source));
  const bool uniform = std::all_of(spec.layers.begin(), spec.layers.end(), [&](const auto& layer) {
    return !layer.has_experts || counts[static_cast<size_t>(layer.index)] == first;
  });
  if (!uniform)
    for (const auto& layer : spec.layers)
      if (layer.has_experts && counts[static_cast<size_t>(layer.index)] < spec.experts_per_token)
        throw InputError(fmt::format(
            "{}: layer {} keeps {} experts, fewer than the {} experts per token; a slice with "
            "per-layer counts routes every layer to the same top-k, so each layer must keep at "
            "least {} (rank --nonuniform plans do)",
            plan.source, layer.index, counts[static_cast<size_t>(layer.index)],
            spec.experts_per_token, spec.experts_per_token));
  return counts;
}

void copy_side_files(const fs::path& from, const fs::path& to) {
  for (const auto& entry : fs::directory_iterator(from)) {
    if (!entry.is_regular_file()) continue;
    const std::string name = entry.path().filename().string();
    if (name == kConfigFileName || name == kIndexFileName || name == kPruningMetadataFileName ||
        entry.path().extension() == ".safetensors")
      continue;
    std::error_code error;
    fs::copy_file(entry.path(), to / name, error);
    if (error)
      throw IoError(fmt::format("cannot copy {} to {}: {}", entry.path().string(),
                                (to / name).string(), error.message()));
  }
}

SliceReport slice_checkpoint(const Model& model, const KeepPlan& plan, const json& plan_document,
                             const fs::path& out_dir, const SliceOptions& options) {
  const ModelSpec& spec = model.spec;
  const TensorStore& checkpoint = *model.checkpoint;
  check_output_outside_inputs(out_dir, checkpoint.input_paths());
  const std::vector<int64_t> counts = kept_counts(plan, spec);
  int64_t kept_total = 0, moe_layers = 0;
  for (const auto& layer : spec.layers)
    if (layer.has_experts) {
      kept_total += counts[static_cast<size_t>(layer.index)];
      ++moe_layers;
    }
  const int64_t kept_count = *std::max_element(counts.begin(), counts.end());
  const bool uniform = kept_total == kept_count * moe_layers;
  // EMO's prune_keep_k: the count per layer, or the average a nonuniform budget allows.
  const int64_t keep_k = uniform ? kept_count : (kept_total + moe_layers / 2) / moe_layers;

  // Decide each tensor's fate: copied, renamed (a kept expert's, companions included), cut along
  // the expert axis, or dropped (an expert not kept).
  std::map<std::string, const std::vector<int32_t>*> cut_rows;
  std::vector<std::vector<int64_t>> new_index(spec.layers.size());  // [layer][expert], -1: dropped
  for (const auto& layer : spec.layers) {
    if (!layer.has_experts) continue;
    const auto& kept = *plan.kept_in(layer.index);
    for (const auto& tensor : layer.tensors)
      if (tensor.expert_axis) {
        if (*tensor.expert_axis != 0)
          throw UnsupportedError(fmt::format("tensor '{}': slicing along axis {} is not supported",
                                             tensor.name, *tensor.expert_axis));
        cut_rows[tensor.name] = &kept;
      }
    auto& index = new_index[static_cast<size_t>(layer.index)];
    index.assign(static_cast<size_t>(layer.num_experts), -1);
    for (size_t i = 0; i < kept.size(); ++i)
      index[static_cast<size_t>(kept[i])] = static_cast<int64_t>(i);
  }

  SliceReport report;
  report.bytes_before = checkpoint.total_tensor_bytes();
  report.experts_before = spec.num_experts;
  report.experts_after = kept_count;
  if (!uniform)
    for (const auto& layer : spec.layers)
      if (layer.has_experts)
        report.experts_after_each_layer.push_back(counts[static_cast<size_t>(layer.index)]);
  report.experts_per_token_after = std::min(spec.experts_per_token, kept_count);
  // Written in the order the bytes lie in the input (shard, then offset): the kept experts are
  // then read front to back, which the page cache serves a third faster than name order.
  struct Placed {
    std::string shard;
    uint64_t offset = 0;
    TensorSource tensor;
  };
  std::vector<Placed> placed;
  for (const auto& [name, view] : checkpoint.tensors()) {
    const std::optional<ExpertTensor> owner = spec.expert_tensor(name);
    const int64_t new_id =
        owner ? new_index[static_cast<size_t>(owner->layer)][static_cast<size_t>(owner->expert)]
              : -1;
    if (owner && new_id < 0) continue;
    const std::optional<FileRange> range = checkpoint.file_range(*view);
    Placed entry{range ? range->path.string() : std::string(), range ? range->offset : 0, {}};
    if (auto cut = cut_rows.find(name); cut != cut_rows.end())
      entry.tensor = kept_rows(*view, *cut->second, checkpoint);
    else if (owner)
      entry.tensor =
          TensorSource::copy_of(checkpoint, *view, spec.expert_tensor_name(*owner, new_id));
    else
      entry.tensor = TensorSource::copy_of(checkpoint, *view);
    placed.push_back(std::move(entry));
  }
  std::sort(placed.begin(), placed.end(), [](const Placed& a, const Placed& b) {
    return std::tie(a.shard, a.offset) < std::tie(b.shard, b.offset);
  });
  std::vector<TensorSource> tensors;
  for (Placed& entry : placed) tensors.push_back(std::move(entry.tensor));
  for (const auto& tensor : tensors) report.bytes_after += tensor.byte_size();
  report.tensors_written = static_cast<int64_t>(tensors.size());

  std::string original_model = normalized_absolute_path(checkpoint.path());
  json metadata = plan_document.is_object() ? plan_document : json::object();
  metadata["experts_kept_per_layer"] = original_ids(checkpoint, plan, original_model);
  metadata["original_model"] = original_model;
  metadata["sliced_from"] = normalized_absolute_path(checkpoint.path());
  metadata["prune_keep_k"] = keep_k;
  metadata["num_shared_experts"] = spec.shared_experts;
  if (!metadata.contains("pruning_method")) metadata["pruning_method"] = "moeslice";
  metadata["moeslice_version"] = MOESLICE_VERSION;

  AtomicOutputDir output(out_dir, options.overwrite);
  // The full model's half of the check overlaps the copy, which mostly waits on the disk.
  std::future<RestrictedOutputs> expected;
  if (options.verify && spec.family->forward_supported)
    expected =
        std::async(std::launch::async, [&] { return restricted_layer_outputs(model, plan); });
  // Written in the input's format, which the check then reads back through the registry.
  checkpoint_format(checkpoint.format_name())
      .writer->write(output.staging(), sliced_config(spec, counts), tensors,
                     {{"moeslice", "slice"}, {"prune_keep_k", std::to_string(keep_k)}},
                     {.max_shard_bytes = options.max_shard_bytes,
                      // Copying past the page cache is fastest, but the check reads the kept
                      // experts back: then they had better stay cached.
                      .copy = expected.valid() ? RangeCopy::kCached : RangeCopy::kDirect});
  write_file_atomically(output.staging() / kPruningMetadataFileName, metadata.dump(2) + "\n",
                        false);
  copy_side_files(checkpoint.path(), output.staging());
  // The written checkpoint must open as its family expects before it is published.
  const Model sliced = open_model(output.staging());
  if (expected.valid())
    report.verify_max_relative_error = check_sliced_layers(sliced, expected.get());
  output.commit();
  return report;
}

}  // namespace moeslice
