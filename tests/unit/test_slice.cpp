// The slicer's built-in check: a correct slice passes, and a slice checked against a different
// plan (what a renumbering or row-cutting bug would produce) is caught, naming the layer. Kept
// experts' tensors, companions the profile does not list included, are renumbered.
#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>

#include "common/error.h"
#include "format/safetensors/checkpoint.h"
#include "format/safetensors/writer.h"
#include "model/random_checkpoint.h"
#include "slice/slicer.h"
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
