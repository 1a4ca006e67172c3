// The slicer's built-in check: a correct slice passes, and a slice checked against a different
// plan (what a renumbering or row-cutting bug would produce) is caught, naming the layer.
#include <doctest/doctest.h>

#include "common/error.h"
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
