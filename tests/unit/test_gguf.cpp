// GGUF reading and writing: the ggml type table against ggml's block sizes, every metadata value
// type round trip (order kept), tensors of several ggml types written with the writer and read
// back bit-exact through the store (shapes, types, aligned file ranges), split output opened as
// one model, the registry entry, and the writer's refusals.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include <fmt/core.h>

#include "common/error.h"
#include "common/ggml_type.h"
#include "format/format_registry.h"
#include "format/gguf/file.h"
#include "format/gguf/format.h"
#include "format/gguf/model.h"
#include "format/gguf/summary.h"
#include "format/gguf/writer.h"
#include "gguf_fixture.h"
#include "test_util.h"

namespace moeslice {
namespace {

using test::check_mentions;
using test::random_tensor;
using test::TempDir;
using test::thrown_message;
using test::tiny_moe_metadata;
using test::tiny_moe_tensors;
namespace fs = std::filesystem;

std::vector<std::byte> produced(const TensorSource& source) {
  std::vector<std::byte> bytes;
  source.produce([&](std::span<const std::byte> chunk) { test::append(bytes, chunk); });
  return bytes;
}

TEST_CASE("the ggml type table has gguf-py's GGML_QUANT_SIZES (ggml's for Q8_1)") {
  struct Expected {
    uint32_t id;
    std::string_view name;
    uint32_t block, bytes;
  };
  // gguf-py/gguf/constants.py, GGMLQuantizationType and GGML_QUANT_SIZES (QK_K = 256), of the
  // llama.cpp that node-llama-cpp 3.21.1 bundles (NVFP4, Q1_0 and Q2_0 included). Q8_1: gguf-py
  // says 40 bytes, ggml's block_q8_1 is 36 (static_assert(sizeof(block_q8_1) == 2*sizeof(ggml_half)
  // + QK8_1)); files follow ggml.
  const Expected expected[] = {
      {0, "F32", 1, 4},         {1, "F16", 1, 2},         {2, "Q4_0", 32, 18},
      {3, "Q4_1", 32, 20},      {6, "Q5_0", 32, 22},      {7, "Q5_1", 32, 24},
      {8, "Q8_0", 32, 34},      {9, "Q8_1", 32, 36},      {10, "Q2_K", 256, 84},
      {11, "Q3_K", 256, 110},   {12, "Q4_K", 256, 144},   {13, "Q5_K", 256, 176},
      {14, "Q6_K", 256, 210},   {15, "Q8_K", 256, 292},   {16, "IQ2_XXS", 256, 66},
      {17, "IQ2_XS", 256, 74},  {18, "IQ3_XXS", 256, 98}, {19, "IQ1_S", 256, 50},
      {20, "IQ4_NL", 32, 18},   {21, "IQ3_S", 256, 110},  {22, "IQ2_S", 256, 82},
      {23, "IQ4_XS", 256, 136}, {24, "I8", 1, 1},         {25, "I16", 1, 2},
      {26, "I32", 1, 4},        {27, "I64", 1, 8},        {28, "F64", 1, 8},
      {29, "IQ1_M", 256, 56},   {30, "BF16", 1, 2},       {34, "TQ1_0", 256, 54},
      {35, "TQ2_0", 256, 66},   {39, "MXFP4", 32, 17},    {40, "NVFP4", 64, 36},
      {41, "Q1_0", 128, 18},    {42, "Q2_0", 64, 18},
  };
  CHECK(ggml_types().size() == std::size(expected));
  for (const auto& [id, name, block, bytes] : expected) {
    CAPTURE(name);
    const auto type = ggml_type(id);
    REQUIRE(type.has_value());
    CHECK(ggml_type_name(*type) == name);
    CHECK(ggml_type_of(type->dtype)->id == id);
    CHECK(row_byte_size(type->dtype, block) == bytes);
    CHECK(row_byte_size(type->dtype, 3 * block) == 3 * bytes);
    CHECK(ggml_converts_to_f32(*type) == (name == "F32" || name == "F16" || name == "BF16"));
    if (block > 1) CHECK_FALSE(row_byte_size(type->dtype, block + 1).has_value());
  }
  for (uint32_t id : {4u, 5u, 31u, 32u, 33u, 36u, 37u, 38u, 43u, 1000u})
    CHECK_FALSE(ggml_type(id).has_value());
  CHECK_FALSE(ggml_type_of(DType::BOOL).has_value());
  CHECK_FALSE(parse_dtype("Q4_K").has_value());  // safetensors files do not hold ggml types
  CHECK(all_ggml_type_names().find("MXFP4 (39)") != std::string::npos);
}

TEST_CASE("block-quantized tensor sizes: whole blocks along the last axis, overflow-checked") {
  const std::vector<int64_t> shape = {8, 3, 512};
  CHECK(tensor_byte_size(DType::Q4_K, shape) == 8 * 3 * 2 * 144);
  CHECK(tensor_byte_size(DType::MXFP4, std::vector<int64_t>{2, 64}) == 2 * 2 * 17);
  CHECK_FALSE(tensor_byte_size(DType::Q4_K, std::vector<int64_t>{3, 100}).has_value());
  CHECK_FALSE(tensor_byte_size(DType::Q8_0, std::vector<int64_t>{}).has_value());
  CHECK(tensor_byte_size(DType::Q8_0, std::vector<int64_t>{0, 32}) == 0);
  CHECK_FALSE(
      tensor_byte_size(DType::Q8_0, std::vector<int64_t>{int64_t{1} << 40, 1 << 30}).has_value());
  CHECK_FALSE(tensor_bit_count(DType::Q8_0, std::vector<int64_t>{32}).has_value());
  TensorSource odd{"odd", DType::Q6_K, {2, 100}, {}, std::nullopt};
  check_mentions(thrown_message<InputError>([&] { (void)odd.byte_size(); }),
                 {"'odd'", "[2, 100]", "Q6_K", "256"});
}

TEST_CASE("random blocks have finite scales where ggml keeps them") {
  struct Scales {
    DType dtype;
    std::vector<uint32_t> f16_offsets;
  };
  // ggml-common.h: block_q8_0 {d; qs}, block_q4_K {d; dmin; scales; qs},
  // block_q6_K {ql; qh; scales; d}, block_mxfp4 {e; qs}.
  for (const auto& [dtype, offsets] : {Scales{DType::Q8_0, {0}}, Scales{DType::Q4_K, {0, 2}},
                                       Scales{DType::Q6_K, {208}}, Scales{DType::MXFP4, {}}}) {
    CAPTURE(dtype_name(dtype));
    const DTypeBlock block = *dtype_block(dtype);
    std::vector<std::byte> bytes(64 * block.bytes);
    fill_random_tensor_bytes(dtype, bytes, 5);
    for (size_t start = 0; start < bytes.size(); start += block.bytes) {
      for (uint32_t offset : offsets) {
        uint16_t bits;
        std::memcpy(&bits, bytes.data() + start + offset, 2);
        const float scale = f16_to_f32(bits);
        CHECK(std::isfinite(scale));
        CHECK(scale > 0.0f);
      }
      if (dtype == DType::MXFP4) CHECK(bytes[start] != std::byte{0xff});
    }
    std::vector<std::byte> again(bytes.size());
    fill_random_tensor_bytes(dtype, again, 5);
    CHECK(again == bytes);
  }
}

TEST_CASE("metadata of every value type and tensors of several ggml types round-trip") {
  TempDir dir;
  const fs::path path = dir / "tiny.gguf";
  const GgufMetadata metadata = tiny_moe_metadata(2, 4, 2);
  for (DType expert_type : {DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_K,
                            DType::Q6_K, DType::MXFP4, DType::IQ4_XS}) {
    CAPTURE(dtype_name(expert_type));
    std::vector<TensorSource> tensors = tiny_moe_tensors(2, 4, expert_type);
    tensors.push_back(random_tensor("ids", DType::I32, {2, 3, 4, 5}, 99));
    const auto written = write_gguf_model(path, metadata, tensors, {.overwrite = true});
    REQUIRE(written == std::vector<fs::path>{path});

    const auto model = GgufModel::open(path);
    CHECK(model->format_name() == "gguf");
    CHECK(model->parts().front()->version() == 3);
    const GgufMetadata& read = model->metadata();
    REQUIRE(read.size() == metadata.size());
    for (size_t i = 0; i < read.size(); ++i) {
      CAPTURE(metadata.entries()[i].first);
      CHECK(read.entries()[i].first == metadata.entries()[i].first);
      CHECK(read.entries()[i].second == metadata.entries()[i].second);
    }
    CHECK(read.get_int("test.i8") == -128);
    CHECK(read.get_int("test.i16") == -2);
    CHECK(read.get_uint("test.u64") == uint64_t{1} << 60);
    CHECK(read.get_float("test.f64") == doctest::Approx(3.14159265358979));
    CHECK(read.get_bool("test.bool") == true);
    CHECK(read.arch_uint("expert_count") == 4u);
    CHECK(read.find("test.nested")->element(1).element(0).size() == 2);
    check_mentions(thrown_message<FormatError>([&] { (void)read.get_uint("general.name"); }),
                   {path.string(), "'general.name'", "STRING 'tiny'", "non-negative integer"});
    check_mentions(thrown_message<FormatError>([&] { (void)read.get_uint("test.i32"); }),
                   {"'test.i32'", "INT32 -7"});

    CHECK(model->tensor_order().size() == tensors.size());
    for (size_t i = 0; i < tensors.size(); ++i) {
      const TensorSource& source = tensors[i];
      CAPTURE(source.name);
      CHECK(model->tensor_order()[i] == source.name);
      const TensorView& view = model->tensor(source.name);
      CHECK(view.dtype == source.dtype);
      CHECK(view.shape == source.shape);
      const auto expected = produced(source);
      REQUIRE(view.bytes.size() == expected.size());
      CHECK(std::equal(view.bytes.begin(), view.bytes.end(), expected.begin()));
      const auto range = model->file_range(view);
      REQUIRE(range.has_value());
      CHECK(range->path == path);
      CHECK(range->length == expected.size());
      CHECK((range->offset - model->parts().front()->data_start()) % 32 == 0);
      CHECK(model->ggml_type_id(source.name) == ggml_type_of(source.dtype)->id);
      model->release_pages(view);
    }
    CHECK(model->config().at("olmoe.expert_count") == 4);
    CHECK(model->config().at("tokenizer.ggml.tokens").size() == 4);
  }
}

TEST_CASE("writing the tensors of an opened GGUF reproduces the file byte for byte") {
  TempDir dir;
  const GgufMetadata metadata = tiny_moe_metadata(2, 4, 2);
  const auto tensors = tiny_moe_tensors(2, 4, DType::Q4_K);
  write_gguf_model(dir / "a.gguf", metadata, tensors, {});
  const auto model = GgufModel::open(dir / "a.gguf");
  std::vector<TensorSource> copies;
  for (const std::string& name : model->tensor_order())
    copies.push_back(TensorSource::copy_of(*model, model->tensor(name)));
  for (RangeCopy copy : {RangeCopy::kCached, RangeCopy::kDirect}) {
    const fs::path out = dir / (copy == RangeCopy::kCached ? "b.gguf" : "c.gguf");
    write_gguf_model(out, model->metadata(), copies, {.copy = copy});
    CHECK(test::read_file(out) == test::read_file(dir / "a.gguf"));
  }
}

TEST_CASE("general.alignment places every tensor; the writer keeps it") {
  TempDir dir;
  GgufMetadata metadata = tiny_moe_metadata(1, 2, 1);
  metadata.set("general.alignment", GgufValue::of_u32(256));
  write_gguf_model(dir / "a.gguf", metadata, tiny_moe_tensors(1, 2, DType::Q8_0), {});
  const auto model = GgufModel::open(dir / "a.gguf");
  const GgufFile& file = *model->parts().front();
  CHECK(file.alignment() == 256);
  CHECK(file.data_start() % 256 == 0);
  for (const auto& info : file.tensor_infos()) CHECK(info.offset % 256 == 0);
}

TEST_CASE("split output: parts with split keys, opened from the first part as one model") {
  TempDir dir;
  const GgufMetadata metadata = tiny_moe_metadata(3, 4, 2);
  const auto tensors = tiny_moe_tensors(3, 4, DType::Q8_0);
  const auto written =
      write_gguf_model(dir / "m.gguf", metadata, tensors, {.max_part_bytes = 300'000});
  REQUIRE(written.size() > 2);
  CHECK(written[0] == dir / fmt::format("m-00001-of-{:05d}.gguf", written.size()));
  CHECK_FALSE(fs::exists(dir / "m.gguf"));

  const auto model = GgufModel::open(written[0]);
  CHECK(model->parts().size() == written.size());
  CHECK(model->tensors().size() == tensors.size());
  CHECK(model->tensor_files().size() == written.size());
  CHECK(model->input_paths() == written);
  CHECK(model->metadata().get_string("general.architecture") == "olmoe");
  CHECK(model->metadata().get_uint("split.count") == written.size());
  for (size_t i = 0; i < written.size(); ++i) {
    const GgufMetadata& part = model->parts()[i]->metadata();
    CHECK(part.find("split.no")->type() == GgufType::kU16);
    CHECK(part.get_uint("split.no") == i);
    CHECK(part.find("split.tensors.count")->type() == GgufType::kI32);
    CHECK(part.get_uint("split.tensors.count") == tensors.size());
    CHECK(part.contains("tokenizer.ggml.tokens") == (i == 0));
  }
  for (const auto& source : tensors) {
    const auto expected = produced(source);
    const auto& view = model->tensor(source.name);
    CHECK(std::equal(view.bytes.begin(), view.bytes.end(), expected.begin(), expected.end()));
  }
  // The summary counts parts and expert layers.
  const GgufSummary summary = summarize_gguf(*model);
  CHECK(summary.parts.size() == written.size());
  CHECK(summary.expert_layers == std::vector<int64_t>{0, 1, 2});
  CHECK(summary.experts_per_layer == 4);
  CHECK(summary.bytes_per_expert == 3 * 256 * 8 * 34);
  CHECK(gguf_summary_to_json(summary).at("shards").size() == written.size());

  // Opening a later part points at the first.
  check_mentions(thrown_message<InputError>([&] { (void)GgufModel::open(written[1]); }),
                 {written[1].string(), "part 2 of", written[0].string()});
  // A part missing.
  fs::remove(written.back());
  check_mentions(thrown_message<InputError>([&] { (void)GgufModel::open(written[0]); }),
                 {written[0].string(), "is missing", written.back().string()});
}

// The inspect summary of a one-block model of `arch` with `keys` and the given tensors.
GgufSummary summary_of(const std::string& arch,
                       const std::vector<std::pair<std::string, GgufValue>>& keys,
                       const std::vector<std::pair<std::string, std::vector<int64_t>>>& shapes) {
  TempDir dir;
  GgufMetadata metadata;
  metadata.set("general.architecture", GgufValue::of_string(arch));
  metadata.set(arch + ".block_count", GgufValue::of_u32(1));
  metadata.set(arch + ".expert_count", GgufValue::of_u32(4));
  for (const auto& [key, value] : keys) metadata.set(arch + "." + key, value);
  std::vector<TensorSource> tensors;
  uint64_t seed = 1;
  for (const auto& [name, shape] : shapes)
    tensors.push_back(random_tensor("blk.0." + name, DType::F32, shape, seed++));
  write_gguf_model(dir / "m.gguf", metadata, tensors, {});
  return summarize_gguf(*GgufModel::open(dir / "m.gguf"));
}

TEST_CASE("the summary's expert width and shared experts, from keys or tensors") {
  // Experts 96 wide in a model 64 wide; the shared expert 128 wide.
  const std::vector<std::pair<std::string, std::vector<int64_t>>> experts = {
      {"ffn_gate_exps.weight", {4, 96, 64}},
      {"ffn_up_exps.weight", {4, 96, 64}},
      {"ffn_down_exps.weight", {4, 64, 96}}};
  auto with = [&](std::vector<std::pair<std::string, std::vector<int64_t>>> more) {
    more.insert(more.begin(), experts.begin(), experts.end());
    return more;
  };
  const auto shared = with({{"ffn_up_shexp.weight", {128, 64}},
                            {"ffn_down_shexp.weight", {64, 128}},
                            {"ffn_gate_inp_shexp.weight", {64}}});
  // olmoe and llama: llama.cpp sizes their experts by feed_forward_length.
  GgufSummary s = summary_of("llama", {{"feed_forward_length", GgufValue::of_u32(96)}}, experts);
  CHECK(s.expert_width == 96);
  CHECK(s.shared_experts == 0);
  // expert_feed_forward_length comes first (qwen2moe's feed_forward_length is another width).
  s = summary_of("qwen2moe",
                 {{"feed_forward_length", GgufValue::of_u32(300)},
                  {"expert_feed_forward_length", GgufValue::of_u32(96)},
                  {"expert_shared_feed_forward_length", GgufValue::of_u32(128)}},
                 shared);
  CHECK(s.expert_width == 96);
  CHECK(s.shared_experts == 1);  // from the ffn_*_shexp tensors: qwen2moe has no count key
  s = summary_of("deepseek2", {{"expert_shared_count", GgufValue::of_u32(2)}}, shared);
  CHECK(s.shared_experts == 2);
  // No width key (or a per-layer array): the stacked tensors' shape, down's innermost axis too.
  CHECK(summary_of("olmoe", {}, experts).expert_width == 96);
  CHECK(summary_of("olmoe", {}, {{"ffn_down_exps.weight", {4, 64, 96}}}).expert_width == 96);
  CHECK(summary_of("gpt-oss", {}, {{"ffn_gate_up_exps.weight", {4, 192, 64}}}).expert_width == 96);
  CHECK(summary_of("olmoe",
                   {{"feed_forward_length",
                     GgufValue::scalar_array(GgufType::kI32, std::string(4, '\0'))}},
                   experts)
            .expert_width == 96);
  // A dense model has no expert width, whatever its feed_forward_length.
  CHECK(summary_of("llama", {{"feed_forward_length", GgufValue::of_u32(96)}},
                   {{"ffn_up.weight", {96, 64}}})
            .expert_width == 0);
  CHECK(summary_of("llama", {}, {{"ffn_up_shexp.weight", {2, 96, 64}}}).shared_experts == 2);
}

TEST_CASE("split input written as one file loses its split keys") {
  TempDir dir;
  const auto tensors = tiny_moe_tensors(2, 4, DType::F16);
  const auto parts =
      write_gguf_model(dir / "m.gguf", tiny_moe_metadata(2, 4, 2), tensors, {.max_part_bytes = 1});
  const auto model = GgufModel::open(parts[0]);
  std::vector<TensorSource> copies;
  for (const std::string& name : model->tensor_order())
    copies.push_back(TensorSource::copy_of(*model, model->tensor(name)));
  write_gguf_model(dir / "one.gguf", model->metadata(), copies, {});
  const auto one = GgufModel::open(dir / "one.gguf");
  CHECK_FALSE(one->metadata().contains("split.count"));
  CHECK(one->metadata().size() == tiny_moe_metadata(2, 4, 2).size());
}

TEST_CASE("the registry opens .gguf paths with the gguf format") {
  TempDir dir;
  write_gguf_model(dir / "a.gguf", tiny_moe_metadata(1, 2, 1), tiny_moe_tensors(1, 2, DType::F32),
                   {});
  CHECK(gguf_format().claims(dir / "a.gguf"));
  CHECK(gguf_format().claims(dir / "missing.gguf"));
  CHECK_FALSE(gguf_format().claims(dir.path()));
  CHECK_FALSE(gguf_format().claims(dir / "a.safetensors"));
  CHECK(open_tensor_store(dir / "a.gguf")->format_name() == "gguf");
  CHECK(checkpoint_format("gguf").name == "gguf");
  check_mentions(thrown_message<InputError>([&] { (void)open_tensor_store(dir / "missing.gguf"); }),
                 {"missing.gguf", "does not exist"});
  check_mentions(thrown_message<UnsupportedError>([&] {
                   (void)checkpoint_format("gguf").writer->write(dir.path(), {}, {}, {}, {});
                 }),
                 {"GGUF"});
}

TEST_CASE("the writer refuses what a GGUF cannot hold, and writes nothing") {
  TempDir dir;
  const GgufMetadata metadata = tiny_moe_metadata(1, 2, 1);
  auto refuse = [&](std::vector<TensorSource> tensors,
                    std::initializer_list<std::string_view> parts,
                    const GgufMetadata& with = tiny_moe_metadata(1, 2, 1)) {
    check_mentions(
        thrown_message<InputError>([&] { write_gguf_model(dir / "out.gguf", with, tensors, {}); }),
        parts);
    CHECK_FALSE(fs::exists(dir / "out.gguf"));
  };
  refuse({random_tensor("a", DType::F32, {2}, 1), random_tensor("a", DType::F32, {2}, 2)},
         {"'a'", "twice"});
  refuse({random_tensor(std::string(64, 'n'), DType::F32, {2}, 1)}, {"64 bytes", "63"});
  refuse({random_tensor("five", DType::F32, {1, 1, 1, 1, 2}, 1)}, {"'five'", "5 dimensions"});
  refuse({random_tensor("flags", DType::BOOL, {2}, 1)}, {"'flags'", "BOOL"});
  GgufMetadata odd = metadata;
  odd.set("general.alignment", GgufValue::of_u32(48));
  refuse({random_tensor("a", DType::F32, {2}, 1)}, {"general.alignment", "48", "power of two"},
         odd);
  write_gguf_model(dir / "out.gguf", metadata, {}, {});
  check_mentions(
      thrown_message<InputError>([&] { write_gguf_model(dir / "out.gguf", metadata, {}, {}); }),
      {"out.gguf", "exists"});
  // No staging debris.
  for (const auto& entry : fs::directory_iterator(dir.path()))
    CHECK(entry.path().filename() == "out.gguf");
}

}  // namespace
}  // namespace moeslice
