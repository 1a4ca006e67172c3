// Reading and writing single safetensors files: bit-exact round trips for every dtype (sub-byte,
// 0-dim and zero-size tensors included), the canonical header, zero-copy views, streaming
// producers, byte-for-byte copies (file ranges copied by the range-copy engine give the streamed
// writer's bytes, sharded or not) and atomic, non-clobbering output. The engine's own modes,
// fallbacks and errors are test_range_copy.cpp's.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "file_ranges.h"
#include "format/safetensors/file.h"
#include "format/safetensors/writer.h"
#include "test_util.h"

namespace moeslice {
namespace {

namespace fs = std::filesystem;
using test::check_mentions;
using test::counting_bytes;
using test::many_ranges;
using test::read_file;
using test::TempDir;
using test::thrown_message;

constexpr size_t kDTypeCount = 20;

// The header text of a safetensors file image, padding included.
std::string header_text(std::span<const std::byte> file) {
  uint64_t length = 0;
  for (int i = 7; i >= 0; --i) length = length << 8 | static_cast<uint8_t>(file[i]);
  return {reinterpret_cast<const char*>(file.data() + 8), length};
}

// Every dtype three ways: [2, 4] (8 elements, whole bytes for every width), a 0-dim scalar where
// a single element fills whole bytes, and a zero-size [0, 3]; plus packed sub-byte shapes.
std::vector<TensorSource> tensors_of_every_dtype() {
  std::vector<TensorSource> tensors;
  unsigned seed = 1;
  auto add = [&](DType dtype, std::string suffix, std::vector<int64_t> shape) {
    const uint64_t size = *tensor_byte_size(dtype, shape);
    tensors.push_back(TensorSource::from_bytes(std::string(dtype_name(dtype)) + suffix, dtype,
                                               std::move(shape), counting_bytes(size, seed += 17)));
  };
  for (size_t i = 0; i < kDTypeCount; ++i) {
    const auto dtype = static_cast<DType>(i);
    add(dtype, ".matrix", {2, 4});
    if (dtype_bits(dtype) % 8 == 0) add(dtype, ".scalar", {});
    add(dtype, ".empty", {0, 3});
  }
  add(DType::F4, ".packed", {2, 3});       // 24 bits: 3 bytes
  add(DType::F6_E2M3, ".packed", {4});     // 24 bits: 3 bytes
  add(DType::F6_E3M2, ".packed", {1, 8});  // 48 bits: 6 bytes
  return tensors;
}

// The bytes a source produces.
std::vector<std::byte> produced(const TensorSource& source) {
  std::vector<std::byte> bytes;
  source.produce([&](std::span<const std::byte> chunk) { test::append(bytes, chunk); });
  return bytes;
}

TEST_CASE("a file of every dtype reads back bit-exact") {
  TempDir dir;
  const auto path = dir / "all.safetensors";
  const auto tensors = tensors_of_every_dtype();
  write_safetensors(path, tensors, {{"source", "test"}}, /*overwrite=*/false);

  const auto file = SafetensorsFile::open(path);
  REQUIRE(file->tensors().size() == tensors.size());
  for (const auto& source : tensors) {
    CAPTURE(source.name);
    const TensorView* view = file->find(source.name);
    REQUIRE(view != nullptr);
    CHECK(view->name == source.name);
    CHECK(view->dtype == source.dtype);
    CHECK(view->shape == source.shape);
    const auto expected = produced(source);
    CHECK(view->bytes.size() == expected.size());
    CHECK(std::equal(view->bytes.begin(), view->bytes.end(), expected.begin(), expected.end()));
  }
  CHECK(file->find("BOOL.scalar")->numel() == 1);
  CHECK(file->find("F8_E4M3.empty")->bytes.empty());
  CHECK(file->find("F4.packed")->bytes.size() == 3);
  CHECK(file->metadata().at("source") == "test");
  CHECK(file->metadata().at("format") == "pt");
}

TEST_CASE("read -> write -> read reproduces the file byte for byte") {
  TempDir dir;
  const auto first = dir / "first.safetensors";
  write_safetensors(first, tensors_of_every_dtype(), {{"k", "v"}}, false);
  const auto file = SafetensorsFile::open(first);

  // Copy in the order the first file was written in (its data-buffer order).
  std::vector<TensorSource> copies;
  for (const auto& source : tensors_of_every_dtype())
    copies.push_back(TensorSource::copy_of(*file->find(source.name)));
  const auto second = dir / "second.safetensors";
  write_safetensors(second, copies, file->metadata(), false);
  CHECK(read_file(first) == read_file(second));
}

TEST_CASE("the header is canonical: '{' first, space-padded to 8, format pt, sorted keys") {
  TempDir dir;
  const auto path = dir / "one.safetensors";
  write_safetensors(path, {{TensorSource::from_floats("w", DType::F32, {2}, {1.0f, 2.0f})}}, {},
                    false);
  const auto bytes = read_file(path);
  const std::string header = header_text(bytes);
  CHECK(header ==
        R"({"__metadata__":{"format":"pt"},"w":{"data_offsets":[0,8],"dtype":"F32","shape":[2]}})"
        "   ");
  CHECK(header.size() % 8 == 0);
  CHECK(bytes.size() == 8 + header.size() + 8);

  SUBCASE("for any header length, the padding is spaces and the data starts 8-aligned") {
    for (size_t name_length = 1; name_length <= 9; ++name_length) {
      const auto padded = dir / "padded.safetensors";
      write_safetensors(padded,
                        {{TensorSource::from_bytes(std::string(name_length, 'x'), DType::U8, {1},
                                                   counting_bytes(1))}},
                        {}, /*overwrite=*/true);
      const std::string text = header_text(read_file(padded));
      CAPTURE(name_length);
      CHECK(text.front() == '{');
      CHECK(text.size() % 8 == 0);
      const size_t close = text.rfind('}');
      CHECK(text.find_first_not_of(' ', close + 1) == std::string::npos);
      CHECK(text.size() - close - 1 < 8);
      CHECK(SafetensorsFile::open(padded)->data_start() % 8 == 0);
    }
  }
}

TEST_CASE("the caller's metadata is written next to format pt") {
  TempDir dir;
  const auto path = dir / "meta.safetensors";
  write_safetensors(path, {}, {{"zeta", "last"}, {"alpha", "first \xc3\xa9"}}, false);
  const auto file = SafetensorsFile::open(path);
  CHECK(file->metadata() == std::map<std::string, std::string>{
                                {"format", "pt"}, {"alpha", "first \xc3\xa9"}, {"zeta", "last"}});
  CHECK(header_text(read_file(path)).starts_with(R"({"__metadata__":{"alpha":"first )"));
}

TEST_CASE("writing the same tensors twice gives identical files") {
  TempDir dir;
  write_safetensors(dir / "a.safetensors", tensors_of_every_dtype(), {{"x", "1"}, {"y", "2"}},
                    false);
  write_safetensors(dir / "b.safetensors", tensors_of_every_dtype(), {{"y", "2"}, {"x", "1"}},
                    false);
  CHECK(read_file(dir / "a.safetensors") == read_file(dir / "b.safetensors"));
}

TEST_CASE("tensors are laid out in the data buffer in the order given, not by name") {
  TempDir dir;
  const auto path = dir / "order.safetensors";
  write_safetensors(path,
                    {{TensorSource::from_bytes("b", DType::U8, {2}, counting_bytes(2, 0)),
                      TensorSource::from_bytes("a", DType::U8, {3}, counting_bytes(3, 100))}},
                    {}, false);
  const auto file = SafetensorsFile::open(path);
  const std::byte* data = file->mapped().bytes().data() + file->data_start();
  CHECK(file->find("b")->bytes.data() == data);
  CHECK(file->find("a")->bytes.data() == data + 2);
  CHECK(file->find("a")->bytes[0] == std::byte{100});
}

TEST_CASE("tensor views point into the mapping: reading copies nothing") {
  TempDir dir;
  const auto path = dir / "views.safetensors";
  write_safetensors(path, tensors_of_every_dtype(), {}, false);
  const auto file = SafetensorsFile::open(path);
  const auto mapping = file->mapped().bytes();
  CHECK(mapping.size() == fs::file_size(path));
  for (const auto& [name, view] : file->tensors()) {
    CAPTURE(name);
    CHECK(view.bytes.data() >= mapping.data() + file->data_start());
    CHECK(view.bytes.data() + view.bytes.size() <= mapping.data() + mapping.size());
  }
}

TEST_CASE("F32, F16 and BF16 tensors written from floats convert back to fp32") {
  TempDir dir;
  const auto path = dir / "floats.safetensors";
  const std::vector<float> values = {1.0f, -2.5f, 0.1f, 65504.0f, -0.0f, 3.0e-5f};
  std::vector<TensorSource> tensors;
  for (const DType dtype : {DType::F32, DType::F16, DType::BF16})
    tensors.push_back(
        TensorSource::from_floats(std::string(dtype_name(dtype)), dtype, {2, 3}, values));
  write_safetensors(path, tensors, {}, false);
  const auto file = SafetensorsFile::open(path);
  for (const DType dtype : {DType::F32, DType::F16, DType::BF16}) {
    CAPTURE(dtype_name(dtype));
    const TensorView& view = *file->find(std::string(dtype_name(dtype)));
    std::vector<float> back(values.size());
    convert_to_f32(view.dtype, view.bytes.data(), back.data(), back.size());
    for (size_t i = 0; i < values.size(); ++i) {
      float expected = values[i];
      if (dtype == DType::F16) expected = f16_to_f32(f32_to_f16(values[i]));
      if (dtype == DType::BF16) expected = bf16_to_f32(f32_to_bf16(values[i]));
      CHECK(back[i] == expected);
    }
  }
}

TEST_CASE("a producer may stream its bytes in any number of chunks") {
  TempDir dir;
  const auto path = dir / "chunks.safetensors";
  const auto expected = counting_bytes(4000);
  TensorSource source{"chunked", DType::F32, {1000}, {}, std::nullopt};
  source.produce = [&](const ByteSink& sink) {
    sink({});  // empty chunks are harmless
    for (size_t i = 0; i < expected.size(); i += 7)
      sink(std::span(expected).subspan(i, std::min<size_t>(7, expected.size() - i)));
  };
  write_safetensors(path, {&source, 1}, {}, false);
  const auto file = SafetensorsFile::open(path);
  const auto bytes = file->find("chunked")->bytes;
  CHECK(std::equal(bytes.begin(), bytes.end(), expected.begin(), expected.end()));
}

TEST_CASE("a producer that emits the wrong byte count fails and leaves no file behind") {
  for (const size_t emitted : {size_t{7}, size_t{9}, size_t{0}}) {
    CAPTURE(emitted);
    TempDir dir;
    const auto path = dir / "bad.safetensors";
    TensorSource source = TensorSource::from_bytes("t", DType::U8, {8}, counting_bytes(emitted));
    const auto message = thrown_message<std::logic_error>([&] {
      write_safetensors(path, {&source, 1}, {}, false);
    });
    check_mentions(message, {"tensor 't'", "expected 8"});
    CHECK(fs::is_empty(dir.path()));  // neither the output nor its temporary sibling
  }
}

TEST_CASE("write_safetensors refuses to replace an existing file unless asked to") {
  TempDir dir;
  const auto path = dir / "exists.safetensors";
  const std::vector<TensorSource> one = {
      TensorSource::from_bytes("a", DType::U8, {1}, counting_bytes(1))};
  const std::vector<TensorSource> two = {
      TensorSource::from_bytes("b", DType::U8, {2}, counting_bytes(2))};
  write_safetensors(path, one, {}, false);
  const auto before = read_file(path);
  check_mentions(thrown_message<InputError>([&] { write_safetensors(path, two, {}, false); }),
                 {path.string(), "already exists"});
  CHECK(read_file(path) == before);
  write_safetensors(path, two, {}, /*overwrite=*/true);
  CHECK(SafetensorsFile::open(path)->find("b") != nullptr);
  CHECK(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator()) == 1);
}

TEST_CASE("copy_of copies a tensor byte for byte, under a new name if asked") {
  TempDir dir;
  const auto source_path = dir / "source.safetensors";
  write_safetensors(source_path, tensors_of_every_dtype(), {}, false);
  const auto source = SafetensorsFile::open(source_path);
  const TensorView& view = *source->find("F8_E4M3.matrix");
  const auto copied = dir / "copied.safetensors";
  write_safetensors(copied,
                    {{TensorSource::copy_of(view, "renamed"),
                      TensorSource::copy_of(*source->find("I64.scalar"))}},
                    {}, false);
  const auto file = SafetensorsFile::open(copied);
  REQUIRE(file->find("renamed") != nullptr);
  CHECK(file->find("F8_E4M3.matrix") == nullptr);
  CHECK(file->find("renamed")->dtype == DType::F8_E4M3);
  const auto bytes = file->find("renamed")->bytes;
  CHECK(std::equal(bytes.begin(), bytes.end(), view.bytes.begin(), view.bytes.end()));
  const auto scalar = file->find("I64.scalar")->bytes;
  const auto original = source->find("I64.scalar")->bytes;
  CHECK(std::equal(scalar.begin(), scalar.end(), original.begin(), original.end()));
}

TEST_CASE("the writer refuses a tensor name given twice or named __metadata__") {
  TempDir dir;
  const auto path = dir / "dup.safetensors";
  const std::vector<TensorSource> twice = {
      TensorSource::from_bytes("a", DType::U8, {1}, counting_bytes(1)),
      TensorSource::from_bytes("a", DType::U8, {1}, counting_bytes(1))};
  check_mentions(thrown_message<InputError>([&] { write_safetensors(path, twice, {}, false); }),
                 {"tensor 'a'", "twice"});
  const std::vector<TensorSource> reserved = {
      TensorSource::from_bytes("__metadata__", DType::U8, {1}, counting_bytes(1))};
  check_mentions(thrown_message<InputError>([&] { write_safetensors(path, reserved, {}, false); }),
                 {"'__metadata__'"});
  CHECK(fs::is_empty(dir.path()));
}

TEST_CASE("file ranges copied by several threads give the bytes the streamed writer gives") {
  TempDir dir;
  const auto tensors = many_ranges(dir);
  write_safetensors(dir / "streamed.safetensors", tensors, {{"k", "v"}}, false);
  const auto expected = read_file(dir / "streamed.safetensors");
  for (const RangeCopy copy : {RangeCopy::kCached, RangeCopy::kDirect}) {
    CAPTURE(static_cast<int>(copy));
    write_safetensors_file(dir / "copied.safetensors", tensors, {{"k", "v"}}, copy);
    CHECK(read_file(dir / "copied.safetensors") == expected);
  }
  CHECK(SafetensorsFile::open(dir / "copied.safetensors")->tensors().size() == tensors.size());
}

TEST_CASE("every shard of a checkpoint of file ranges equals its streamed file") {
  TempDir dir;
  const auto tensors = many_ranges(dir);
  uint64_t total = 0;
  for (const auto& tensor : tensors) total += tensor.byte_size();
  for (const RangeCopy copy : {RangeCopy::kCached, RangeCopy::kDirect}) {
    CAPTURE(static_cast<int>(copy));
    const auto out = dir / fmt::format("checkpoint{}", static_cast<int>(copy));
    fs::create_directory(out);
    const auto written = write_checkpoint_tensors(out, tensors, {{"k", "v"}}, total / 4, copy);
    REQUIRE(written.size() >= 5);  // shards, plus the index
    const auto index = nlohmann::json::parse(test::read_text(written.back()));
    std::map<std::string, std::vector<TensorSource>> shards;  // in the order given
    for (const auto& tensor : tensors)
      shards[index["weight_map"][tensor.name].get<std::string>()].push_back(tensor);
    CHECK(shards.size() == written.size() - 1);
    for (const auto& [name, part] : shards) {
      CAPTURE(name);
      write_safetensors(dir / "expected.safetensors", part, {{"k", "v"}}, /*overwrite=*/true);
      CHECK(read_file(out / name) == read_file(dir / "expected.safetensors"));
    }
  }
}

TEST_CASE("a tensor whose size overflows cannot be written") {
  TempDir dir;
  TensorSource huge{"huge", DType::F32, {int64_t{1} << 62, int64_t{1} << 62}, {}, std::nullopt};
  check_mentions(thrown_message<InputError>([&] { (void)huge.byte_size(); }), {"tensor 'huge'"});
  CHECK_THROWS_AS(write_safetensors(dir / "huge.safetensors", {&huge, 1}, {}, false), InputError);
  CHECK(fs::is_empty(dir.path()));
}

TEST_CASE("shape helpers: numel, shape strings and byte sizes") {
  TensorView view;
  view.shape = {};
  CHECK(view.numel() == 1);
  CHECK(view.shape_string() == "[]");
  view.shape = {64, 2048};
  CHECK(view.numel() == 64 * 2048);
  CHECK(view.shape_string() == "[64, 2048]");
  CHECK(view.dim(1) == 2048);
  CHECK_THROWS_AS((void)view.dim(2), std::out_of_range);
  view.shape = {0, 5};
  CHECK(view.numel() == 0);
  CHECK(format_shape(std::vector<int64_t>{3}) == "[3]");

  CHECK(tensor_byte_size(DType::BF16, std::vector<int64_t>{2, 3}) == 12u);
  CHECK(tensor_byte_size(DType::F4, std::vector<int64_t>{2, 3}) == 3u);
  CHECK(tensor_byte_size(DType::F4, std::vector<int64_t>{3}) == std::nullopt);
  CHECK(tensor_byte_size(DType::F6_E2M3, std::vector<int64_t>{4}) == 3u);
  CHECK(tensor_byte_size(DType::U8, std::vector<int64_t>{}) == 1u);
  CHECK(tensor_byte_size(DType::U8, std::vector<int64_t>{-1}) == std::nullopt);
  CHECK(tensor_byte_size(DType::U8, std::vector<int64_t>{int64_t{1} << 62, 4}) == std::nullopt);
  CHECK(tensor_byte_size(DType::U64, std::vector<int64_t>{int64_t{1} << 61}) == std::nullopt);
  // Like the reference, the bit count (not only the byte count) must fit in 64 bits.
  CHECK(tensor_byte_size(DType::U64, std::vector<int64_t>{int64_t{1} << 60}) == std::nullopt);
  CHECK(tensor_byte_size(DType::U64, std::vector<int64_t>{int64_t{1} << 57}) == uint64_t{1} << 60);
}

}  // namespace
}  // namespace moeslice
