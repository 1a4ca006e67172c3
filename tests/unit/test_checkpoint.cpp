// Checkpoint directories: writing tensors as one file or as shards plus an index, reading them back
// bit-exact through Checkpoint, the index's total_size, and the byte-size flag parser.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "common/atomic_output.h"
#include "common/error.h"
#include "format/checkpoint.h"
#include "format/safetensors_writer.h"
#include "test_util.h"

namespace moeslice {
namespace {

namespace fs = std::filesystem;
using test::check_mentions;
using test::counting_bytes;
using test::TempDir;
using test::thrown_message;

// `count` tensors "layer.<i>.weight" of BF16 [4, 5] (40 bytes each), each with its own bytes.
std::vector<TensorSource> layers(size_t count) {
  std::vector<TensorSource> tensors;
  for (size_t i = 0; i < count; ++i)
    tensors.push_back(TensorSource::from_bytes(fmt::format("layer.{}.weight", i), DType::BF16,
                                               {4, 5}, counting_bytes(40, unsigned(7 * i))));
  return tensors;
}

std::vector<std::byte> produced(const TensorSource& source) {
  std::vector<std::byte> bytes;
  source.produce([&](std::span<const std::byte> chunk) { test::append(bytes, chunk); });
  return bytes;
}

// Writes a checkpoint (config.json plus tensors) into `out` through an AtomicOutputDir, as the
// apps do; returns the file names written, relative to `out`.
std::vector<std::string> write_checkpoint(const fs::path& out,
                                          std::span<const TensorSource> tensors,
                                          uint64_t max_shard_bytes) {
  AtomicOutputDir output(out, /*overwrite=*/false);
  write_file_atomically(output.staging() / kConfigFileName, R"({"model_type":"test"})", false);
  std::vector<std::string> names;
  for (const auto& path :
       write_checkpoint_tensors(output.staging(), tensors, {{"k", "v"}}, max_shard_bytes))
    names.push_back(path.filename().string());
  output.commit();
  return names;
}

void check_same_tensors(const Checkpoint& checkpoint, std::span<const TensorSource> tensors) {
  REQUIRE(checkpoint.tensors().size() == tensors.size());
  for (const auto& source : tensors) {
    CAPTURE(source.name);
    const TensorView& view = checkpoint.tensor(source.name);
    CHECK(view.dtype == source.dtype);
    CHECK(view.shape == source.shape);
    const auto expected = produced(source);
    CHECK(std::equal(view.bytes.begin(), view.bytes.end(), expected.begin(), expected.end()));
  }
}

TEST_CASE(
    "a checkpoint over the shard limit is written as shards plus an index, read back bit-exact") {
  TempDir dir;
  const auto out = dir / "sharded";
  const auto tensors = layers(7);  // 7 x 40 bytes; a 100-byte limit holds two per shard
  const auto written = write_checkpoint(out, tensors, 100);
  CHECK(written == std::vector<std::string>{"model-00001-of-00004.safetensors",
                                            "model-00002-of-00004.safetensors",
                                            "model-00003-of-00004.safetensors",
                                            "model-00004-of-00004.safetensors", kIndexFileName});

  const auto checkpoint = Checkpoint::open(out);
  CHECK(checkpoint.sharded());
  CHECK(checkpoint.shards().size() == 4);
  check_same_tensors(checkpoint, tensors);
  CHECK(checkpoint.total_tensor_bytes() == 7 * 40);
  CHECK(checkpoint.file_of("layer.0.weight").path().filename() ==
        "model-00001-of-00004.safetensors");
  CHECK(checkpoint.file_of("layer.6.weight").path().filename() ==
        "model-00004-of-00004.safetensors");
  for (const auto& shard : checkpoint.shards()) {
    CAPTURE(shard->path());
    CHECK(shard->mapped().size() - shard->data_start() <= 100);
    CHECK(shard->metadata().at("format") == "pt");
    CHECK(shard->metadata().at("k") == "v");
  }
  CHECK(checkpoint.config().at("model_type") == "test");
}

TEST_CASE("the index's total_size is the sum of tensor bytes and weight_map names each shard") {
  TempDir dir;
  const auto out = dir / "sharded";
  auto tensors = layers(5);
  tensors.push_back(TensorSource::from_bytes("scalar", DType::I64, {}, counting_bytes(8)));
  tensors.push_back(TensorSource::from_bytes("empty", DType::F32, {0, 8}, {}));
  write_checkpoint(out, tensors, 90);
  const auto index = read_json_file(out / kIndexFileName);
  CHECK(index.at("metadata").at("total_size").get<uint64_t>() == 5 * 40 + 8);
  const auto& weight_map = index.at("weight_map");
  CHECK(weight_map.size() == tensors.size());
  for (const auto& source : tensors) {
    CAPTURE(source.name);
    const auto shard = weight_map.at(source.name).get<std::string>();
    CHECK(SafetensorsFile::open(out / shard)->find(source.name) != nullptr);
  }
  check_same_tensors(Checkpoint::open(out), tensors);
}

TEST_CASE("a tensor larger than the shard limit gets a shard of its own") {
  TempDir dir;
  const auto out = dir / "big";
  std::vector<TensorSource> tensors = layers(1);
  tensors.push_back(TensorSource::from_bytes("big", DType::U8, {500}, counting_bytes(500)));
  tensors.push_back(layers(3)[2]);
  const auto written = write_checkpoint(out, tensors, 100);
  CHECK(written.size() == 4);  // three shards and the index
  const auto checkpoint = Checkpoint::open(out);
  CHECK(checkpoint.file_of("big").tensors().size() == 1);
  check_same_tensors(checkpoint, tensors);
}

TEST_CASE("a checkpoint that fits the limit is one model.safetensors without an index") {
  TempDir dir;
  SUBCASE("well under the limit") {
    CHECK(write_checkpoint(dir / "single", layers(3), kDefaultMaxShardBytes) ==
          std::vector<std::string>{kSingleFileName});
  }
  SUBCASE("exactly at the limit") {
    CHECK(write_checkpoint(dir / "single", layers(3), 120) ==
          std::vector<std::string>{kSingleFileName});
  }
  SUBCASE("no tensors at all") {
    CHECK(write_checkpoint(dir / "single", {}, 100) == std::vector<std::string>{kSingleFileName});
  }
  const auto checkpoint = Checkpoint::open(dir / "single");
  CHECK_FALSE(checkpoint.sharded());
  CHECK(checkpoint.shards().size() == 1);
  CHECK_FALSE(fs::exists(dir / "single" / kIndexFileName));
  CHECK(checkpoint.total_tensor_bytes() == checkpoint.tensors().size() * 40);
}

TEST_CASE("a sharded checkpoint copied with copy_of into one file is bit-exact") {
  TempDir dir;
  const auto tensors = layers(6);
  write_checkpoint(dir / "sharded", tensors, 100);
  const auto sharded = Checkpoint::open(dir / "sharded");
  std::vector<TensorSource> copies;
  for (const auto& source : tensors)
    copies.push_back(
        TensorSource::copy_of(sharded.tensor(source.name), &sharded.file_of(source.name).mapped()));
  write_checkpoint(dir / "merged", copies, kDefaultMaxShardBytes);
  const auto merged = Checkpoint::open(dir / "merged");
  CHECK_FALSE(merged.sharded());
  check_same_tensors(merged, tensors);
}

TEST_CASE("write_checkpoint_tensors refuses the same name twice, even in different shards") {
  TempDir dir;
  auto tensors = layers(4);
  tensors.push_back(layers(1)[0]);
  check_mentions(thrown_message<InputError>(
                     [&] { (void)write_checkpoint_tensors(dir.path(), tensors, {}, 100); }),
                 {"tensor 'layer.0.weight'", "twice"});
  CHECK(fs::is_empty(dir.path()));
}

TEST_CASE("looking up a tensor a checkpoint lacks is a ModelError naming it and the directory") {
  TempDir dir;
  write_checkpoint(dir / "ckpt", layers(2), kDefaultMaxShardBytes);
  const auto checkpoint = Checkpoint::open(dir / "ckpt");
  CHECK(checkpoint.find("layer.1.weight") != nullptr);
  CHECK(checkpoint.find("absent") == nullptr);
  check_mentions(thrown_message<ModelError>([&] { (void)checkpoint.tensor("absent"); }),
                 {"'absent'", (dir / "ckpt").string()});
  check_mentions(thrown_message<ModelError>([&] { (void)checkpoint.file_of("absent"); }),
                 {"'absent'"});
}

TEST_CASE("read_json_file refuses a missing file and a file that is not JSON") {
  TempDir dir;
  check_mentions(thrown_message<InputError>([&] { (void)read_json_file(dir / "none.json"); }),
                 {(dir / "none.json").string(), "does not exist"});
  test::write_file(dir / "bad.json", "{\"a\": [1, 2}");
  check_mentions(thrown_message<FormatError>([&] { (void)read_json_file(dir / "bad.json"); }),
                 {(dir / "bad.json").string(), "not valid JSON"});
  test::write_file(dir / "good.json", "{\"a\": [1, 2]}");
  CHECK(read_json_file(dir / "good.json").at("a").size() == 2);
}

TEST_CASE("byte sizes parse with decimal and binary units, as Hugging Face writes them") {
  CHECK(parse_byte_size("5GB") == 5'000'000'000u);
  CHECK(parse_byte_size("500MB") == 500'000'000u);
  CHECK(parse_byte_size("2GiB") == 2ull << 30);
  CHECK(parse_byte_size("1.5KB") == 1500u);
  CHECK(parse_byte_size("10kib") == 10240u);
  CHECK(parse_byte_size("1000000") == 1'000'000u);
  CHECK(parse_byte_size("64B") == 64u);
  for (const char* bad :
       {"", "GB", "-1GB", "0", "5 GB", "5XB", "nanGB", "infGB", "1e30", "20000000TB", "0.1B"}) {
    INFO("text = " << std::string(bad));
    check_mentions(thrown_message<InputError>([&] { (void)parse_byte_size(bad); }),
                   {fmt::format("'{}'", bad)});
  }
  CHECK(format_byte_size(999) == "999 B");
  CHECK(format_byte_size(1500) == "1.50 kB");
  CHECK(format_byte_size(5'000'000'000) == "5.00 GB");
}

}  // namespace
}  // namespace moeslice
