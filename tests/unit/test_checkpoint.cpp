// Safetensors checkpoint directories: writing tensors as one file or as shards plus an index (also
// through the CheckpointWriter interface), reading them back bit-exact through
// SafetensorsCheckpoint and its TensorStore interface, the index's total_size, and the byte-size
// flag parser.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "common/atomic_output.h"
#include "common/error.h"
#include "format/byte_size.h"
#include "format/json_file.h"
#include "format/safetensors/checkpoint.h"
#include "format/safetensors/writer.h"
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

void check_same_tensors(const TensorStore& checkpoint, std::span<const TensorSource> tensors) {
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

  const auto checkpoint = SafetensorsCheckpoint::open(out);
  CHECK(checkpoint->sharded());
  CHECK(checkpoint->shards().size() == 4);
  check_same_tensors(*checkpoint, tensors);
  CHECK(checkpoint->total_tensor_bytes() == 7 * 40);
  CHECK(checkpoint->file_of("layer.0.weight").path().filename() ==
        "model-00001-of-00004.safetensors");
  CHECK(checkpoint->file_of("layer.6.weight").path().filename() ==
        "model-00004-of-00004.safetensors");
  for (const auto& shard : checkpoint->shards()) {
    CAPTURE(shard->path());
    CHECK(shard->mapped().size() - shard->data_start() <= 100);
    CHECK(shard->metadata().at("format") == "pt");
    CHECK(shard->metadata().at("k") == "v");
  }
  CHECK(checkpoint->config().at("model_type") == "test");
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
  check_same_tensors(*SafetensorsCheckpoint::open(out), tensors);
}

TEST_CASE("a tensor larger than the shard limit gets a shard of its own") {
  TempDir dir;
  const auto out = dir / "big";
  std::vector<TensorSource> tensors = layers(1);
  tensors.push_back(TensorSource::from_bytes("big", DType::U8, {500}, counting_bytes(500)));
  tensors.push_back(layers(3)[2]);
  const auto written = write_checkpoint(out, tensors, 100);
  CHECK(written.size() == 4);  // three shards and the index
  const auto checkpoint = SafetensorsCheckpoint::open(out);
  CHECK(checkpoint->file_of("big").tensors().size() == 1);
  check_same_tensors(*checkpoint, tensors);
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
  const auto checkpoint = SafetensorsCheckpoint::open(dir / "single");
  CHECK_FALSE(checkpoint->sharded());
  CHECK(checkpoint->shards().size() == 1);
  CHECK_FALSE(fs::exists(dir / "single" / kIndexFileName));
  CHECK(checkpoint->total_tensor_bytes() == checkpoint->tensors().size() * 40);
}

TEST_CASE("a sharded checkpoint copied with copy_of into one file is bit-exact") {
  TempDir dir;
  const auto tensors = layers(6);
  write_checkpoint(dir / "sharded", tensors, 100);
  const auto sharded = SafetensorsCheckpoint::open(dir / "sharded");
  std::vector<TensorSource> copies;
  for (const auto& source : tensors)
    copies.push_back(TensorSource::copy_of(*sharded, sharded->tensor(source.name)));
  write_checkpoint(dir / "merged", copies, kDefaultMaxShardBytes);
  const auto merged = SafetensorsCheckpoint::open(dir / "merged");
  CHECK_FALSE(merged->sharded());
  check_same_tensors(*merged, tensors);
}

TEST_CASE("the TensorStore interface: files, file ranges, inputs and released pages") {
  TempDir dir;
  const auto tensors = layers(7);
  write_checkpoint(dir / "sharded", tensors, 100);
  const auto checkpoint = SafetensorsCheckpoint::open(dir / "sharded");
  const TensorStore& store = *checkpoint;
  CHECK(store.format_name() == "safetensors");
  CHECK(store.path() == dir / "sharded");
  CHECK(store.config_path() == dir / "sharded" / kConfigFileName);
  CHECK(store.input_paths() == std::vector<fs::path>{dir / "sharded"});
  const auto files = store.tensor_files();
  REQUIRE(files.size() == 4);
  for (size_t i = 0; i < files.size(); ++i) {
    CAPTURE(i);
    CHECK(files[i].path == checkpoint->shards()[i]->path());
    CHECK(files[i].bytes == fs::file_size(files[i].path));
    CHECK(files[i].tensors == (i < 3 ? 2 : 1));
  }
  for (const auto& source : tensors) {
    CAPTURE(source.name);
    const TensorView& view = store.tensor(source.name);
    const auto range = store.file_range(view);
    REQUIRE(range.has_value());
    CHECK(range->path == checkpoint->file_of(source.name).path());
    CHECK(range->length == view.bytes.size());
    const auto file = test::read_file(range->path);
    REQUIRE(range->offset + range->length <= file.size());
    CHECK(std::equal(view.bytes.begin(), view.bytes.end(),
                     file.begin() + static_cast<std::ptrdiff_t>(range->offset)));
    // Released pages are read back from the page cache (or the disk) unchanged.
    store.release_pages(view);
    store.release_pages(view, 1, 2);
    const auto expected = produced(source);
    CHECK(std::equal(view.bytes.begin(), view.bytes.end(), expected.begin(), expected.end()));
  }
  TensorView stranger = store.tensor("layer.0.weight");
  stranger.name = "not.in.the.store";
  CHECK_FALSE(store.file_range(stranger).has_value());
  store.release_pages(stranger);  // not one of its tensors: nothing to release
}

TEST_CASE(
    "side_files lists the files a derived checkpoint carries over, sorted, and nothing else") {
  TempDir dir;
  write_checkpoint(dir / "sharded", layers(3), 100);
  CHECK(SafetensorsCheckpoint::open(dir / "sharded")->side_files().empty());
  for (const char* name : {"tokenizer.json", "README.md", "generation_config.json"})
    test::write_file(dir / "sharded" / name, std::string_view("{}"));
  fs::create_directory(dir / "sharded" / "subdir");
  CHECK(SafetensorsCheckpoint::open(dir / "sharded")->side_files() ==
        std::vector<fs::path>{dir / "sharded" / "README.md",
                              dir / "sharded" / "generation_config.json",
                              dir / "sharded" / "tokenizer.json"});
}

TEST_CASE("copy_of a store's tensor carries its file range; copy_of a view does not") {
  TempDir dir;
  write_checkpoint(dir / "ckpt", layers(2), kDefaultMaxShardBytes);
  const auto checkpoint = SafetensorsCheckpoint::open(dir / "ckpt");
  const TensorView& view = checkpoint->tensor("layer.1.weight");
  const TensorSource ranged = TensorSource::copy_of(*checkpoint, view, "renamed");
  CHECK(ranged.name == "renamed");
  REQUIRE(ranged.file_range.has_value());
  CHECK(ranged.file_range->path == dir / "ckpt" / kSingleFileName);
  CHECK(ranged.file_range->length == 40);
  CHECK(produced(ranged) == std::vector<std::byte>(view.bytes.begin(), view.bytes.end()));
  const TensorSource plain = TensorSource::copy_of(view);
  CHECK(plain.name == "layer.1.weight");
  CHECK_FALSE(plain.file_range.has_value());
  CHECK(produced(plain) == produced(ranged));
}

TEST_CASE("SafetensorsWriter writes the tensors, then config.json, as write_checkpoint_tensors") {
  TempDir dir;
  const auto tensors = layers(7);
  const nlohmann::json config = {{"model_type", "test"}, {"hidden_size", 4}};
  for (const RangeCopy copy : {RangeCopy::kCached, RangeCopy::kDirect}) {
    CAPTURE(static_cast<int>(copy));
    const auto out = dir / fmt::format("out{}", static_cast<int>(copy));
    fs::create_directory(out);
    const SafetensorsWriter writer;
    CHECK(writer.format_name() == "safetensors");
    const auto written =
        writer.write(out, config, tensors, {{"k", "v"}}, {.max_shard_bytes = 100, .copy = copy});
    REQUIRE(written.size() == 6);  // four shards, the index, config.json
    CHECK(written[4] == out / kIndexFileName);
    CHECK(written[5] == out / kConfigFileName);
    CHECK(test::read_text(out / kConfigFileName) == config.dump(2) + "\n");
    const auto checkpoint = SafetensorsCheckpoint::open(out);
    CHECK(checkpoint->config() == config);
    CHECK(checkpoint->shards().size() == 4);
    check_same_tensors(*checkpoint, tensors);
  }
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
  const auto checkpoint = SafetensorsCheckpoint::open(dir / "ckpt");
  CHECK(checkpoint->find("layer.1.weight") != nullptr);
  CHECK(checkpoint->find("absent") == nullptr);
  check_mentions(thrown_message<ModelError>([&] { (void)checkpoint->tensor("absent"); }),
                 {"'absent'", (dir / "ckpt").string()});
  check_mentions(thrown_message<ModelError>([&] { (void)checkpoint->file_of("absent"); }),
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

TEST_CASE("byte_size_flag writes a size in the largest unit that divides it, as flags take it") {
  CHECK(byte_size_flag(kDefaultMaxShardBytes) == "5GB");
  CHECK(byte_size_flag(500'000'000) == "500MB");
  CHECK(byte_size_flag(1500) == "1500B");
  CHECK(byte_size_flag(2'000) == "2KB");
  CHECK(byte_size_flag(3'000'000'000'000) == "3TB");
  CHECK(byte_size_flag(1) == "1B");
  for (const uint64_t bytes : {uint64_t{1}, uint64_t{999}, uint64_t{1'000}, uint64_t{123'000'000},
                               kDefaultMaxShardBytes, uint64_t{1} << 40})
    CHECK(parse_byte_size(byte_size_flag(bytes)) == bytes);
}

}  // namespace
}  // namespace moeslice
