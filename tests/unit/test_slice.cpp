// The slicer's built-in check: a correct slice passes, and a slice checked against a different
// plan (what a renumbering or row-cutting bug would produce) is caught, naming the layer. Kept
// experts' tensors, companions the profile does not list included, are renumbered.
#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <map>

#include "common/error.h"
#include "format/safetensors/checkpoint.h"
#include "format/safetensors/writer.h"
#include "model/random_checkpoint.h"
#include "slice/slicer.h"
#include "slice/unslicer.h"
#include "test_util.h"

using namespace moeslice;
using moeslice::test::check_mentions;
using moeslice::test::thrown_message;

namespace {

KeepPlan plan_of(std::vector<std::vector<int32_t>> layers) {
  KeepPlan plan;
  plan.source = "plan";
  for (auto& kept : layers) plan.kept.emplace_back(std::move(kept));
  return plan;
}

}  // namespace

TEST_CASE("the slice check passes a correct slice and catches a wrong one") {
  for (const char* family : {"emo", "olmoe", "qwen2_moe"}) {
    CAPTURE(family);
    test::TempDir dir;
    RandomModelOptions random_options;
    random_options.family = family;
    random_options.seed = 7;
    write_random_checkpoint(random_options, dir / "full");
    const Model full = open_model(dir / "full");
    const KeepPlan plan = plan_of({{0, 2, 5, 7}, {1, 3, 4, 7}});
    SliceOptions options;
    const SliceReport report =
        slice_checkpoint(full, plan, nlohmann::json::object(), dir / "sliced", options);
    CHECK(report.verify_max_relative_error >= 0);
    CHECK(report.verify_max_relative_error <= 1e-5);
    const Model sliced = open_model(dir / "sliced");
    CHECK(check_sliced_layers(sliced, restricted_layer_outputs(full, plan)) <= 1e-5);
    // Same counts, one expert swapped in layer 1: the check names that layer.
    const KeepPlan other = plan_of({{0, 2, 5, 7}, {1, 3, 6, 7}});
    check_mentions(thrown_message<Error>(
                       [&] { check_sliced_layers(sliced, restricted_layer_outputs(full, other)); }),
                   {"verification failed: layer 1 of the sliced model differs"});
  }
}

TEST_CASE("a slice renumbers every tensor an expert owns, FP8 scales the profile omits included") {
  test::TempDir dir;
  RandomModelOptions random_options;
  random_options.family = "deepseek_v3";
  random_options.dims = {{Dim::kLayers, 3}};  // layer 0 is dense
  random_options.seed = 4;
  write_random_checkpoint(random_options, dir / "plain");
  {
    // The same checkpoint with a distinct one-value scale beside every expert weight.
    const auto plain = SafetensorsCheckpoint::open(dir / "plain");
    std::vector<TensorSource> tensors;
    float scale = 0;
    for (const auto& [name, view] : plain->tensors()) {
      tensors.push_back(TensorSource::copy_of(*view));
      if (name.find(".experts.") != std::string::npos && name.ends_with(".weight"))
        tensors.push_back(
            TensorSource::from_floats(name + "_scale_inv", DType::F32, {1}, {++scale}));
    }
    std::filesystem::create_directories(dir / "fp8");
    write_checkpoint_tensors(dir / "fp8", tensors, {}, SliceOptions{}.max_shard_bytes);
    std::filesystem::copy_file(dir / "plain" / kConfigFileName, dir / "fp8" / kConfigFileName);
  }
  const Model full = open_model(dir / "fp8");
  KeepPlan plan = plan_of({{}, {0, 2, 5, 7}, {1, 3, 4, 6}});
  plan.kept[0].reset();
  slice_checkpoint(full, plan, nlohmann::json::object(), dir / "sliced", SliceOptions{});
  const Model sliced = open_model(dir / "sliced");
  int scales = 0;
  for (const auto& [name, view] : sliced.checkpoint->tensors()) {
    const auto owner = sliced.spec.expert_tensor(name);
    if (!owner || name.find("_scale_inv") == std::string::npos) continue;
    ++scales;
    const int32_t original = (*plan.kept_in(owner->layer))[static_cast<size_t>(owner->expert)];
    const TensorView& source =
        full.checkpoint->tensor(full.spec.expert_tensor_name(*owner, original));
    CAPTURE(name);
    CHECK(std::equal(view->bytes.begin(), view->bytes.end(), source.bytes.begin(),
                     source.bytes.end()));
  }
  CHECK(scales == 2 * 4 * 3);  // two MoE layers, four kept experts, three weights each
  CHECK(sliced.checkpoint->tensors().size() ==
        full.checkpoint->tensors().size() - 2 * 4 * 3 * 2);  // dropped: weights and scales
}

TEST_CASE("unslice puts a tuned slice's experts back, the dropped ones from the full model") {
  const std::map<std::string, int64_t> cut_per_layer = {
      {"olmoe", 1}, {"deepseek_v3", 2}, {"gpt_oss", 6}};  // router (bias, fused experts)
  for (const auto& [family, cut_tensors] : cut_per_layer) {
    CAPTURE(family);
    test::TempDir dir;
    RandomModelOptions random_options;
    random_options.family = family;
    random_options.dims = {{Dim::kLayers, 3}};  // deepseek_v3: layer 0 is dense
    random_options.seed = 9;
    write_random_checkpoint(random_options, dir / "full");
    const Model full = open_model(dir / "full");
    KeepPlan plan = plan_of({{0, 2, 5, 7}, {0, 2, 5, 7}, {1, 3, 4, 6}});
    if (!full.spec.layers[0].has_experts) plan.kept[0].reset();
    slice_checkpoint(full, plan, nlohmann::json::object(), dir / "sliced", SliceOptions{});
    {
      // "Fine-tuning": every byte of the slice flipped.
      const auto sliced = SafetensorsCheckpoint::open(dir / "sliced");
      std::vector<TensorSource> tensors;
      for (const auto& [name, view] : sliced->tensors()) {
        std::vector<std::byte> bytes(view->bytes.begin(), view->bytes.end());
        for (auto& byte : bytes) byte = ~byte;
        tensors.push_back(TensorSource::from_bytes(name, view->dtype, view->shape, bytes));
      }
      std::filesystem::create_directories(dir / "tuned");
      write_checkpoint_tensors(dir / "tuned", tensors, {}, SliceOptions{}.max_shard_bytes);
      for (const char* file : {kConfigFileName, kPruningMetadataFileName})
        std::filesystem::copy_file(dir / "sliced" / file, dir / "tuned" / file);
    }
    const Model tuned = open_model(dir / "tuned");
    const UnsliceReport report =
        unslice_checkpoint(full, tuned, dir / "unsliced", SliceOptions{}.max_shard_bytes, false);
    const Model unsliced = open_model(dir / "unsliced");
    REQUIRE(unsliced.checkpoint->tensors().size() == full.checkpoint->tensors().size());
    // The full model's bytes, flipped where the slice held them.
    auto kept = [&](int64_t layer, int64_t expert) {
      const auto& ids = *plan.kept_in(layer);
      return std::find(ids.begin(), ids.end(), expert) != ids.end();
    };
    std::map<std::string, int64_t> cut_layer;
    for (const auto& layer : full.spec.layers)
      for (const auto& tensor : layer.tensors)
        if (layer.has_experts && tensor.expert_axis) cut_layer[tensor.name] = layer.index;
    for (const auto& [name, view] : full.checkpoint->tensors()) {
      std::vector<std::byte> expected(view->bytes.begin(), view->bytes.end());
      const auto owner = full.spec.expert_tensor(name);
      const size_t rows = static_cast<size_t>(view->shape[0]), row = expected.size() / rows;
      for (size_t r = 0; r < rows; ++r) {
        const bool from_slice =
            owner ? kept(owner->layer, owner->expert)
                  : !cut_layer.count(name) || kept(cut_layer[name], static_cast<int64_t>(r));
        if (from_slice)
          for (size_t i = r * row; i < (r + 1) * row; ++i) expected[i] = ~expected[i];
      }
      const TensorView& back = unsliced.checkpoint->tensor(name);
      CAPTURE(name);
      CHECK(back.shape == view->shape);
      CHECK(std::equal(back.bytes.begin(), back.bytes.end(), expected.begin(), expected.end()));
    }
    const auto moe_layers = static_cast<int64_t>(full.spec.expert_layers().size());
    const bool fused = full.spec.family->expert_storage == ExpertStorage::kFused;
    CHECK(report.tensors_merged == moe_layers * cut_tensors);
    CHECK(report.tensors_from_full == (fused ? 0 : moe_layers * 4 * 3));
    CHECK(report.tensors_from_sliced + report.tensors_from_full + report.tensors_merged ==
          static_cast<int64_t>(full.checkpoint->tensors().size()));
  }
}
