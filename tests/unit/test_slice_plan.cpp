// plan_slice on its own, without files (models held in memory): every tensor's fate for each
// family's layout (per-expert and fused experts, dense layers, shared experts, EMO's nonuniform
// counts, DeepSeek's groups and FP8 scale companions, Mixtral's names), the output in the input's
// byte order, the sliced config, pruning_metadata.json, the report's numbers, the tensors the
// slicer streams from a plan, and every refusal's message.
#include <doctest/doctest.h>

#include <algorithm>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "common/error.h"
#include "memory_tensor_store.h"
#include "model/random_checkpoint.h"
#include "slice/slice_plan.h"
#include "slice/slicer.h"
#include "test_util.h"

using namespace moeslice;
using moeslice::test::check_mentions;
using moeslice::test::MemoryTensor;
using moeslice::test::MemoryTensorStore;
using moeslice::test::thrown_message;
using nlohmann::json;

namespace {

// A make-random model of `family` held in memory under /models/<family>, its tensors split over
// two files (b.safetensors first, a.safetensors second, so that path order is not write order).
struct MemoryModel {
  ModelSpec spec;
  std::vector<MemoryTensor> written;  // in file order
  std::unique_ptr<MemoryTensorStore> store;
};

MemoryModel memory_model(const std::string& family, std::map<Dim, int64_t> dims = {},
                         json overrides = json::object(),
                         const std::function<void(std::vector<MemoryTensor>&)>& edit = {}) {
  RandomModelOptions options;
  options.family = family;
  options.dims = std::move(dims);
  options.config_overrides = std::move(overrides);
  const json config = random_model_config(options);
  const test::fs::path dir = "/models/" + family;
  MemoryModel model{resolve_model_spec(config, dir / "config.json"), {}, nullptr};
  model.written = test::random_checkpoint_tensors(model.spec);
  if (edit) edit(model.written);
  model.store = std::make_unique<MemoryTensorStore>(
      dir, config, model.written, std::vector<std::string>{"b.safetensors", "a.safetensors"},
      (model.written.size() + 1) / 2);
  return model;
}

KeepPlan plan_of(std::vector<std::optional<std::vector<int32_t>>> layers) {
  KeepPlan plan;
  plan.source = "plan.json";
  plan.kept = std::move(layers);
  return plan;
}

SlicePlan plan_for(const MemoryModel& model, const KeepPlan& plan,
                   const SliceProvenance& provenance = {}) {
  return plan_slice(model.spec, *model.store, plan, provenance);
}

const PlannedTensor& planned(const SlicePlan& plan, const std::string& name) {
  const PlannedTensor* tensor = plan.find(name);
  INFO(name);
  REQUIRE(tensor != nullptr);
  return *tensor;
}

void check_fate(const SlicePlan& plan, const std::string& name, TensorFate fate,
                const std::string& output_name) {
  const PlannedTensor& tensor = planned(plan, name);
  CAPTURE(name);
  CHECK(std::string(fate_name(tensor.fate)) == std::string(fate_name(fate)));
  CHECK(tensor.output_name == output_name);
  if (fate != TensorFate::kCutAlongExperts) {
    CHECK(tensor.output_shape == tensor.source->shape);
    CHECK(tensor.kept_rows.empty());
  }
}

void check_cut(const SlicePlan& plan, const std::string& name, std::vector<int32_t> rows) {
  const PlannedTensor& tensor = planned(plan, name);
  CAPTURE(name);
  CHECK(tensor.fate == TensorFate::kCutAlongExperts);
  CHECK(tensor.output_name == name);
  CHECK(tensor.kept_rows == rows);
  std::vector<int64_t> shape = tensor.source->shape;
  shape[0] = static_cast<int64_t>(rows.size());
  CHECK(tensor.output_shape == shape);
}

std::map<TensorFate, int> fate_counts(const SlicePlan& plan) {
  std::map<TensorFate, int> counts;
  for (const auto& tensor : plan.tensors) ++counts[tensor.fate];
  return counts;
}

// The input names of the tensors written, in output order.
std::vector<std::string> written_sources(const SlicePlan& plan) {
  std::vector<std::string> names;
  for (size_t i : plan.output_order) names.push_back(plan.tensors[i].source->name);
  return names;
}

// The output names, in output order.
std::vector<std::string> output_names(const SlicePlan& plan) {
  std::vector<std::string> names;
  for (size_t i : plan.output_order) names.push_back(plan.tensors[i].output_name);
  return names;
}

std::vector<std::byte> produced(const TensorSource& source) {
  std::vector<std::byte> bytes;
  source.produce_checked([&](std::span<const std::byte> chunk) {
    bytes.insert(bytes.end(), chunk.begin(), chunk.end());
  });
  return bytes;
}

// The config with the given keys removed, to compare what a slice must leave alone.
json without(json config, std::initializer_list<const char*> keys) {
  for (const char* key : keys) config.erase(key);
  return config;
}

const std::vector<int32_t> kLayer0 = {0, 2, 5, 6};
const std::vector<int32_t> kLayer1 = {1, 3, 4, 7};

}  // namespace

TEST_CASE(
    "olmoe: routers cut, kept experts renumbered, the others dropped, shared tensors copied") {
  const MemoryModel model = memory_model("olmoe");
  const SlicePlan plan = plan_for(model, plan_of({kLayer0, kLayer1}));

  check_cut(plan, "model.layers.0.mlp.gate.weight", kLayer0);
  check_cut(plan, "model.layers.1.mlp.gate.weight", kLayer1);
  check_fate(plan, "model.layers.0.mlp.experts.0.up_proj.weight", TensorFate::kKeptExpert,
             "model.layers.0.mlp.experts.0.up_proj.weight");
  check_fate(plan, "model.layers.0.mlp.experts.6.gate_proj.weight", TensorFate::kKeptExpert,
             "model.layers.0.mlp.experts.3.gate_proj.weight");
  check_fate(plan, "model.layers.1.mlp.experts.4.down_proj.weight", TensorFate::kKeptExpert,
             "model.layers.1.mlp.experts.2.down_proj.weight");
  check_fate(plan, "model.layers.0.mlp.experts.1.gate_proj.weight", TensorFate::kDropped, "");
  check_fate(plan, "model.layers.1.mlp.experts.6.up_proj.weight", TensorFate::kDropped, "");
  check_fate(plan, "model.embed_tokens.weight", TensorFate::kCopied, "model.embed_tokens.weight");
  check_fate(plan, "model.layers.1.self_attn.q_norm.weight", TensorFate::kCopied,
             "model.layers.1.self_attn.q_norm.weight");
  const auto counts = fate_counts(plan);
  CHECK(counts.at(TensorFate::kCutAlongExperts) == 2);
  CHECK(counts.at(TensorFate::kKeptExpert) == 2 * 4 * 3);
  CHECK(counts.at(TensorFate::kDropped) == 2 * 4 * 3);
  CHECK(plan.tensors.size() == model.written.size());
  CHECK(std::is_sorted(plan.tensors.begin(), plan.tensors.end(), [](const auto& a, const auto& b) {
    return a.source->name < b.source->name;
  }));

  // Output order: the input's bytes front to back, a.safetensors (the second half written) first.
  std::vector<std::string> expected;
  const size_t half = (model.written.size() + 1) / 2;
  for (size_t i = 0; i < model.written.size(); ++i) {
    const auto& name = model.written[(i + half) % model.written.size()].name;
    if (planned(plan, name).fate != TensorFate::kDropped) expected.push_back(name);
  }
  CHECK(written_sources(plan) == expected);
  const auto names = output_names(plan);
  CHECK(std::find(names.begin(), names.end(), "model.layers.1.mlp.experts.3.up_proj.weight") !=
        names.end());
  CHECK(std::find(names.begin(), names.end(), "model.layers.1.mlp.experts.4.up_proj.weight") ==
        names.end());

  CHECK(plan.kept_counts == std::vector<int64_t>{4, 4});
  CHECK(plan.keep_k == 4);
  CHECK(plan.config["num_experts"] == 4);
  CHECK(plan.config["num_experts_per_tok"] == 2);
  CHECK(without(plan.config, {"num_experts", "num_experts_per_tok"}) ==
        without(model.store->config(), {"num_experts", "num_experts_per_tok"}));
  CHECK(plan.format_metadata == Metadata{{"moeslice", "slice"}, {"prune_keep_k", "4"}});

  const uint64_t expert_bytes = 32 * 64 * 4, router_row_bytes = 64 * 4;
  const SliceSummary& summary = plan.summary;
  CHECK(summary.bytes_before == model.store->total_tensor_bytes());
  CHECK(summary.bytes_after ==
        summary.bytes_before - 2 * 4 * 3 * expert_bytes - 2 * 4 * router_row_bytes);
  CHECK(summary.experts_before == 8);
  CHECK(summary.experts_after == 4);
  CHECK(summary.experts_after_each_layer.empty());
  CHECK(summary.experts_per_token_after == 2);
  CHECK(summary.tensors_written == static_cast<int64_t>(model.written.size() - 2 * 4 * 3));
}

TEST_CASE("pruning_metadata.json keeps the plan's keys and records the slice") {
  const MemoryModel model = memory_model("olmoe");
  SliceProvenance provenance;
  provenance.plan_document = {{"experts_kept_per_layer", "ignored"}, {"budget", 0.5}};
  const SlicePlan plan = plan_for(model, plan_of({kLayer0, kLayer1}), provenance);
  const json expected = {{"budget", 0.5},
                         {"experts_kept_per_layer", {kLayer0, kLayer1}},
                         {"original_model", "/models/olmoe"},
                         {"sliced_from", "/models/olmoe"},
                         {"prune_keep_k", 4},
                         {"num_shared_experts", 0},
                         {"pruning_method", "moeslice"},
                         {"moeslice_version", MOESLICE_VERSION}};
  CHECK(plan.metadata == expected);

  SUBCASE("a slice of a slice names the original model's ids and keeps its method") {
    provenance.plan_document = {{"pruning_method", "rank"}};
    provenance.input_metadata = {
        {"experts_kept_per_layer", {{1, 3, 4, 6, 8, 9, 12, 15}, {0, 1, 2, 3, 4, 5, 6, 7}}},
        {"original_model", "/models/original"}};
    const SlicePlan again = plan_for(model, plan_of({kLayer0, kLayer1}), provenance);
    CHECK(again.metadata["experts_kept_per_layer"] == json{{1, 4, 9, 12}, kLayer1});
    CHECK(again.metadata["original_model"] == "/models/original");
    CHECK(again.metadata["sliced_from"] == "/models/olmoe");
    CHECK(again.metadata["pruning_method"] == "rank");
  }
}

TEST_CASE("the slicer streams a plan: copies keep their file range, cut tensors their kept rows") {
  const MemoryModel model = memory_model("olmoe");
  const SlicePlan plan = plan_for(model, plan_of({kLayer0, kLayer1}));
  const std::vector<TensorSource> sources = slice_tensor_sources(*model.store, plan);
  REQUIRE(sources.size() == plan.output_order.size());
  for (size_t k = 0; k < sources.size(); ++k) {
    const TensorSource& source = sources[k];
    const PlannedTensor& tensor = plan.tensors[plan.output_order[k]];
    CAPTURE(source.name);
    CHECK(source.name == tensor.output_name);
    CHECK(source.dtype == tensor.source->dtype);
    CHECK(source.shape == tensor.output_shape);
    CHECK(source.byte_size() == tensor.output_bytes());
    const std::vector<std::byte> bytes = produced(source);
    const auto input = tensor.source->bytes;
    if (tensor.fate == TensorFate::kCutAlongExperts) {
      CHECK(!source.file_range);
      const size_t row = input.size() / static_cast<size_t>(tensor.source->shape[0]);
      std::vector<std::byte> rows;
      for (int32_t id : tensor.kept_rows)
        rows.insert(rows.end(), input.begin() + id * static_cast<ptrdiff_t>(row),
                    input.begin() + (id + 1) * static_cast<ptrdiff_t>(row));
      CHECK(bytes == rows);
    } else {
      REQUIRE(source.file_range);
      CHECK(source.file_range->path == tensor.range->path);
      CHECK(source.file_range->offset == tensor.range->offset);
      CHECK(source.file_range->length == input.size());
      CHECK(std::equal(bytes.begin(), bytes.end(), input.begin(), input.end()));
    }
  }
}

TEST_CASE("qwen2_moe: a dense layer and the shared expert are copied, the dense layer uncut") {
  const MemoryModel model =
      memory_model("qwen2_moe", {{Dim::kLayers, 3}}, {{"mlp_only_layers", {1}}});
  const SlicePlan plan = plan_for(model, plan_of({kLayer0, std::nullopt, kLayer1}));
  check_cut(plan, "model.layers.0.mlp.gate.weight", kLayer0);
  check_cut(plan, "model.layers.2.mlp.gate.weight", kLayer1);
  for (const char* name :
       {"model.layers.1.mlp.gate_proj.weight", "model.layers.1.mlp.down_proj.weight",
        "model.layers.0.mlp.shared_expert.gate_proj.weight",
        "model.layers.2.mlp.shared_expert.down_proj.weight",
        "model.layers.2.mlp.shared_expert_gate.weight"})
    check_fate(plan, name, TensorFate::kCopied, name);
  check_fate(plan, "model.layers.2.mlp.experts.7.up_proj.weight", TensorFate::kKeptExpert,
             "model.layers.2.mlp.experts.3.up_proj.weight");
  for (const auto& tensor : plan.tensors)
    if (tensor.source->name.starts_with("model.layers.1."))
      CHECK(tensor.fate == TensorFate::kCopied);
  CHECK(plan.kept_counts == std::vector<int64_t>{4, 0, 4});
  CHECK(plan.config["num_experts"] == 4);
  CHECK(plan.config["mlp_only_layers"] == json{1});
  CHECK(plan.metadata["experts_kept_per_layer"] == json{kLayer0, nullptr, kLayer1});
  CHECK(plan.summary.experts_after == 4);
  CHECK(plan.summary.tensors_written == static_cast<int64_t>(model.written.size() - 2 * 4 * 3));
}

TEST_CASE("emo: a nonuniform plan keeps per-layer counts, shared experts renumbered last") {
  const MemoryModel model = memory_model("emo");  // 8 experts, 7 is the shared one; top-k 2
  const SlicePlan plan =
      plan_for(model, plan_of({std::vector<int32_t>{0, 2, 5, 7}, std::vector<int32_t>{1, 3, 7}}));
  check_fate(plan, "model.layers.0.mlp.experts.7.down_proj.weight", TensorFate::kKeptExpert,
             "model.layers.0.mlp.experts.3.down_proj.weight");
  check_fate(plan, "model.layers.1.mlp.experts.7.down_proj.weight", TensorFate::kKeptExpert,
             "model.layers.1.mlp.experts.2.down_proj.weight");
  check_fate(plan, "model.layers.1.mlp.experts.5.gate_proj.weight", TensorFate::kDropped, "");
  check_cut(plan, "model.layers.1.mlp.gate.weight", {1, 3, 7});
  CHECK(plan.kept_counts == std::vector<int64_t>{4, 3});
  CHECK(plan.keep_k == 4);  // the average, rounded: (4 + 3) / 2
  CHECK(plan.config["num_experts"] == 4);
  CHECK(plan.config["num_experts_per_layer"] == json{4, 3});
  CHECK(plan.config["num_experts_per_tok"] == 2);
  CHECK(plan.config["num_shared_experts"] == 1);
  CHECK(plan.metadata["prune_keep_k"] == 4);
  CHECK(plan.metadata["num_shared_experts"] == 1);
  CHECK(plan.format_metadata.at("prune_keep_k") == "4");
  CHECK(plan.summary.experts_after == 4);
  CHECK(plan.summary.experts_after_each_layer == std::vector<int64_t>{4, 3});
  CHECK(plan.summary.experts_per_token_after == 2);
  CHECK(plan.summary.tensors_written == static_cast<int64_t>(model.written.size() - 9 * 3));
}

TEST_CASE("gpt_oss: fused expert tensors and the router's bias are cut along the expert axis") {
  const MemoryModel model = memory_model("gpt_oss");
  const SlicePlan plan = plan_for(model, plan_of({kLayer0, kLayer1}));
  for (const char* tensor :
       {"mlp.router.weight", "mlp.router.bias", "mlp.experts.gate_up_proj",
        "mlp.experts.gate_up_proj_bias", "mlp.experts.down_proj", "mlp.experts.down_proj_bias"}) {
    check_cut(plan, std::string("model.layers.0.") + tensor, kLayer0);
    check_cut(plan, std::string("model.layers.1.") + tensor, kLayer1);
  }
  check_fate(plan, "model.layers.0.self_attn.sinks", TensorFate::kCopied,
             "model.layers.0.self_attn.sinks");
  const auto counts = fate_counts(plan);
  CHECK(counts.count(TensorFate::kKeptExpert) == 0);
  CHECK(counts.count(TensorFate::kDropped) == 0);
  CHECK(counts.at(TensorFate::kCutAlongExperts) == 2 * 6);
  CHECK(plan.config["num_local_experts"] == 4);
  CHECK(plan.summary.tensors_written == static_cast<int64_t>(model.written.size()));
  // Per expert: its gate_up and down matrices, their biases, its router row and router bias.
  const uint64_t gate_up = 64 * 64 * 4, down = 32 * 64 * 4, others = (64 + 64 + 64 + 1) * 4;
  CHECK(plan.summary.bytes_before - plan.summary.bytes_after == 2 * 4 * (gate_up + down + others));
  // The cut rows of a fused tensor are whole experts.
  const auto sources = slice_tensor_sources(*model.store, plan);
  const auto source = std::find_if(sources.begin(), sources.end(), [](const TensorSource& s) {
    return s.name == "model.layers.1.mlp.experts.down_proj";
  });
  REQUIRE(source != sources.end());
  const auto input = model.store->tensor("model.layers.1.mlp.experts.down_proj").bytes;
  const std::vector<std::byte> bytes = produced(*source);
  REQUIRE(bytes.size() == 4 * down);
  for (size_t k = 0; k < kLayer1.size(); ++k)
    CHECK(std::equal(bytes.begin() + static_cast<ptrdiff_t>(k * down),
                     bytes.begin() + static_cast<ptrdiff_t>((k + 1) * down),
                     input.begin() + static_cast<ptrdiff_t>(kLayer1[k] * down)));
}

TEST_CASE("deepseek_v3: groups kept whole, correction bias cut, FP8 scales follow their weights") {
  // A one-value scale after every expert weight, one after a shared expert's and one after an
  // attention weight (neither is an expert's).
  auto add_scales = [](std::vector<MemoryTensor>& tensors) {
    std::vector<MemoryTensor> with_scales;
    for (const auto& tensor : tensors) {
      with_scales.push_back(tensor);
      if ((tensor.name.find("experts.") != std::string::npos && tensor.name.ends_with(".weight")) ||
          tensor.name == "model.layers.1.self_attn.kv_b_proj.weight")
        with_scales.push_back({tensor.name + "_scale_inv", DType::F32, {1}});
    }
    tensors = std::move(with_scales);
  };
  const MemoryModel model = memory_model("deepseek_v3", {{Dim::kLayers, 3}}, {}, add_scales);
  const SlicePlan plan = plan_for(model, plan_of({std::nullopt, kLayer0, kLayer1}));
  check_cut(plan, "model.layers.1.mlp.gate.weight", kLayer0);
  check_cut(plan, "model.layers.2.mlp.gate.e_score_correction_bias", kLayer1);
  check_fate(plan, "model.layers.1.mlp.experts.5.up_proj.weight_scale_inv", TensorFate::kKeptExpert,
             "model.layers.1.mlp.experts.2.up_proj.weight_scale_inv");
  check_fate(plan, "model.layers.2.mlp.experts.5.up_proj.weight_scale_inv", TensorFate::kDropped,
             "");
  for (const char* name : {"model.layers.1.mlp.shared_experts.gate_proj.weight_scale_inv",
                           "model.layers.1.self_attn.kv_b_proj.weight_scale_inv",
                           "model.layers.0.mlp.gate_proj.weight"})
    check_fate(plan, name, TensorFate::kCopied, name);
  // Each kept scale is written right after its weight, as in the input.
  const auto names = output_names(plan);
  int scales = 0;
  for (size_t i = 0; i < names.size(); ++i)
    if (names[i].ends_with("_scale_inv")) {
      REQUIRE(i > 0);
      CHECK(names[i] == names[i - 1] + "_scale_inv");
      ++scales;
    }
  CHECK(scales == 2 * 4 * 3 + 2 * 3 + 1);  // kept experts', shared experts', the attention one
  CHECK(plan.kept_counts == std::vector<int64_t>{0, 4, 4});
  CHECK(plan.config["n_routed_experts"] == 4);
  CHECK(plan.config["n_group"] == 2);
  CHECK(plan.config["topk_group"] == model.store->config()["topk_group"]);
  CHECK(plan.summary.tensors_written == static_cast<int64_t>(model.written.size() - 2 * 4 * 3 * 2));
}

TEST_CASE("mixtral: experts renumbered under block_sparse_moe's names") {
  const MemoryModel model = memory_model("mixtral");
  const SlicePlan plan = plan_for(model, plan_of({kLayer0, kLayer1}));
  check_fate(plan, "model.layers.0.block_sparse_moe.experts.5.w1.weight", TensorFate::kKeptExpert,
             "model.layers.0.block_sparse_moe.experts.2.w1.weight");
  check_fate(plan, "model.layers.1.block_sparse_moe.experts.7.w2.weight", TensorFate::kKeptExpert,
             "model.layers.1.block_sparse_moe.experts.3.w2.weight");
  check_fate(plan, "model.layers.0.block_sparse_moe.experts.1.w3.weight", TensorFate::kDropped, "");
  check_cut(plan, "model.layers.0.block_sparse_moe.gate.weight", kLayer0);
  CHECK(plan.config["num_local_experts"] == 4);
  CHECK(plan.config["num_experts_per_tok"] == 2);
}

TEST_CASE("plan_slice refuses what a slice cannot be, with the messages it always had") {
  SUBCASE("a layer with experts without a kept list") {
    const MemoryModel model = memory_model("olmoe");
    check_mentions(thrown_message<InputError>([&] {
                     plan_for(model, plan_of({kLayer0, std::nullopt}));
                   }),
                   {"plan.json: layer 1 has experts but no kept list; a slice needs one for "
                    "every layer with experts"});
  }
  SUBCASE("different counts where the family's config has one count") {
    const MemoryModel model = memory_model("olmoe");
    check_mentions(
        thrown_message<InputError>([&] {
          plan_for(model, plan_of({std::vector<int32_t>{0, 1, 2}, kLayer1}));
        }),
        {"plan.json: layer 1 keeps 4 experts but earlier layers keep 3; standard loaders need the "
         "same count in every layer (only the emo family's config can list per-layer counts)"});
  }
  SUBCASE("a nonuniform layer below experts per token") {
    const MemoryModel model = memory_model("emo", {{Dim::kTopK, 3}});
    check_mentions(
        thrown_message<InputError>([&] {
          plan_for(model, plan_of({std::vector<int32_t>{0, 7}, std::vector<int32_t>{0, 1, 2, 7}}));
        }),
        {"plan.json: layer 0 keeps 2 experts, fewer than the 3 experts per token; a slice with "
         "per-layer counts routes every layer to the same top-k, so each layer must keep at "
         "least 3 (rank --nonuniform plans do)"});
  }
  SUBCASE("unbalanced routing groups") {
    const MemoryModel model = memory_model("deepseek_v3", {{Dim::kLayers, 3}});
    const std::vector<int32_t> unbalanced = {0, 1, 2, 4};
    check_mentions(thrown_message<InputError>([&] {
                     plan_for(model, plan_of({std::nullopt, unbalanced, unbalanced}));
                   }),
                   {"plan.json: layer 1 keeps [3, 1] experts in its 2 routing groups; DeepSeek "
                    "group routing needs the same number in every group"});
  }
  SUBCASE("a model already sliced with per-layer counts") {
    const MemoryModel model = memory_model("emo", {}, {{"num_experts_per_layer", {8, 6}}});
    check_mentions(thrown_message<UnsupportedError>([&] {
                     plan_for(model, plan_of({kLayer0, std::vector<int32_t>{0, 1, 2, 3}}));
                   }),
                   {"/models/emo/config.json: the model already keeps different expert counts "
                    "per layer; slice the full model"});
  }
  SUBCASE("a model without experts") {
    const MemoryModel model = memory_model("qwen2_moe", {}, {{"mlp_only_layers", {0, 1}}});
    check_mentions(thrown_message<InputError>([&] {
                     plan_for(model, plan_of({std::nullopt, std::nullopt}));
                   }),
                   {"plan.json: the model has no layer with experts"});
  }
  SUBCASE("an expert axis other than the first") {
    MemoryModel model = memory_model("olmoe");
    for (auto& tensor : model.spec.layers[1].tensors)
      if (tensor.role == TensorRole::kRouter) tensor.expert_axis = 1;
    check_mentions(thrown_message<UnsupportedError>([&] {
                     plan_for(model, plan_of({kLayer0, kLayer1}));
                   }),
                   {"tensor 'model.layers.1.mlp.gate.weight': slicing along axis 1 is not "
                    "supported"});
  }
  SUBCASE("the fates alone need a kept list for every layer with experts") {
    const MemoryModel model = memory_model("olmoe");
    CHECK_THROWS_AS(plan_tensor_fates(model.spec, *model.store, plan_of({kLayer0, std::nullopt})),
                    std::logic_error);
  }
}
