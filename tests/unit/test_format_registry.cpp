// The format registry: a checkpoint directory opens as safetensors through open_tensor_store and
// open_model, a broken or missing one keeps the safetensors messages, a path no format claims is
// refused with the list of known formats, and formats are found by name with their writers.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/atomic_output.h"
#include "common/error.h"
#include "format/format_registry.h"
#include "format/safetensors/checkpoint.h"
#include "model/family_profile.h"
#include "model/model_spec.h"
#include "model/random_checkpoint.h"
#include "test_util.h"

namespace moeslice {
namespace {

namespace fs = std::filesystem;

// A checkpoint directory of two tensors written through the registry's safetensors writer.
void write_tiny_checkpoint(const fs::path& out) {
  const std::vector<TensorSource> tensors = {
      TensorSource::from_bytes("a", DType::U8, {3}, test::counting_bytes(3)),
      TensorSource::from_bytes("b", DType::F32, {2}, test::counting_bytes(8, 9))};
  AtomicOutputDir output(out, /*overwrite=*/false);
  checkpoint_format("safetensors")
      .writer->write(output.staging(), {{"model_type", "test"}}, tensors, {{"k", "v"}}, {});
  output.commit();
}

TEST_CASE("the registry knows safetensors, by name, with a writer") {
  REQUIRE(checkpoint_formats().size() >= 1);
  const CheckpointFormat& format = checkpoint_format("safetensors");
  CHECK(format.name == "safetensors");
  REQUIRE(format.writer != nullptr);
  CHECK(format.writer->format_name() == "safetensors");
  for (const CheckpointFormat& known : checkpoint_formats()) {
    CAPTURE(std::string(known.name));
    CHECK(static_cast<bool>(known.claims));
    CHECK(static_cast<bool>(known.open));
    CHECK(&checkpoint_format(known.name) == &known);
    CHECK(known_checkpoint_formats().find(known.layout) != std::string::npos);
  }
  test::check_mentions(
      test::thrown_message<UnsupportedError>([] { (void)checkpoint_format("onnx"); }),
      {"'onnx'", "safetensors (a directory with config.json"});
}

TEST_CASE("a checkpoint directory opens as safetensors through the registry") {
  test::TempDir dir;
  write_tiny_checkpoint(dir / "ckpt");
  const auto store = open_tensor_store(dir / "ckpt");
  CHECK(store->format_name() == "safetensors");
  CHECK(store->path() == dir / "ckpt");
  CHECK(store->config().at("model_type") == "test");
  CHECK(store->tensors().size() == 2);
  CHECK(store->tensor("b").shape == std::vector<int64_t>{2});
  test::check_mentions(test::thrown_message<ModelError>([&] { (void)store->tensor("c"); }),
                       {"'c'", (dir / "ckpt").string()});
}

TEST_CASE("open_model goes through the registry: every family's checkpoint opens from its dir") {
  test::TempDir dir;
  for (const FamilyProfile& family : all_families()) {
    CAPTURE(family.family);
    RandomModelOptions options;
    options.family = family.family;
    write_random_checkpoint(options, dir / family.family);
    const Model model = open_model(dir / family.family);
    REQUIRE(model.checkpoint != nullptr);
    CHECK(model.checkpoint->format_name() == "safetensors");
    CHECK(model.checkpoint->path() == dir / family.family);
    CHECK(model.spec.config_path == dir / family.family / kConfigFileName);
    CHECK(model.spec.family == &family);
  }
}

TEST_CASE("a missing or broken directory keeps the safetensors format's own messages") {
  test::TempDir dir;
  test::check_mentions(
      test::thrown_message<InputError>([&] { (void)open_tensor_store(dir / "none"); }),
      {"model directory", (dir / "none").string(), "does not exist"});
  fs::create_directory(dir / "empty");
  test::check_mentions(
      test::thrown_message<InputError>([&] { (void)open_tensor_store(dir / "empty"); }),
      {(dir / "empty" / kConfigFileName).string(), "does not exist"});
  test::write_file(dir / "empty" / kConfigFileName, "{}");
  test::check_mentions(
      test::thrown_message<InputError>([&] { (void)open_tensor_store(dir / "empty"); }),
      {"holds neither", kSingleFileName, kIndexFileName});
}

TEST_CASE("a path no format claims is refused with the list of known formats") {
  test::TempDir dir;
  write_tiny_checkpoint(dir / "ckpt");
  for (const fs::path& path : {dir / "ckpt" / kSingleFileName, dir / "ckpt" / kConfigFileName}) {
    CAPTURE(path);
    const auto message =
        test::thrown_message<UnsupportedError>([&] { (void)open_tensor_store(path); });
    test::check_mentions(message, {path.string(), "not a checkpoint in a format moeslice reads",
                                   "known: safetensors (a directory with config.json"});
    // open_model says the same: nothing is opened as what it is not.
    test::check_mentions(test::thrown_message<UnsupportedError>([&] { (void)open_model(path); }),
                         {path.string(), "known: safetensors"});
  }
}

}  // namespace
}  // namespace moeslice
