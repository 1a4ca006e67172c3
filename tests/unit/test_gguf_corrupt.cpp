// The GGUF corruption matrix: one handcrafted file per way a GGUF file or a split model can be
// broken, each checked for the error type and a message naming the file and the field; and every
// truncation of a valid file refused the same way (never a crash or an allocation of the size a
// corrupt count claims).
#include <doctest/doctest.h>

#include <cstdint>
#include <string>
#include <vector>

#include <fmt/core.h>

#include "common/error.h"
#include "format/gguf/file.h"
#include "format/gguf/model.h"
#include "format/gguf/writer.h"
#include "gguf_fixture.h"
#include "test_util.h"

namespace moeslice {
namespace {

using test::check_mentions;
using test::TempDir;
using test::thrown_message;
namespace fs = std::filesystem;

// A GGUF image built field by field, so that tests can put anything anywhere.
class Image {
 public:
  Image& u32(uint32_t value) { return number(value, 4); }
  Image& u64(uint64_t value) { return number(value, 8); }
  Image& number(uint64_t value, int bytes) {
    for (int i = 0; i < bytes; ++i) text_.push_back(static_cast<char>(value >> (8 * i) & 0xff));
    return *this;
  }
  Image& raw(std::string_view bytes) {
    text_ += bytes;
    return *this;
  }
  Image& string(std::string_view text) { return u64(text.size()).raw(text); }
  Image& header(uint64_t tensors, uint64_t keys, uint32_t version = 3) {
    return raw("GGUF").u32(version).u64(tensors).u64(keys);
  }
  // A key of type UINT32.
  Image& key_u32(std::string_view key, uint32_t value) { return string(key).u32(4).u32(value); }
  // A tensor info with dims in ggml order.
  Image& info(std::string_view name, std::vector<uint64_t> ne, uint32_t type, uint64_t offset) {
    string(name).u32(static_cast<uint32_t>(ne.size()));
    for (uint64_t extent : ne) u64(extent);
    return u32(type).u64(offset);
  }
  // Zero padding to a multiple of `alignment`, then `bytes` data bytes.
  Image& data(uint64_t bytes, uint64_t alignment = 32) {
    text_.resize((text_.size() + alignment - 1) / alignment * alignment, '\0');
    text_.append(bytes, '\x11');
    return *this;
  }
  const std::string& text() const { return text_; }

 private:
  std::string text_;
};

// Writes `image` as corrupt.gguf, opens it, and returns the FormatError message, which must name
// the file and every one of `parts`.
void refused(const std::string& image, std::initializer_list<std::string_view> parts) {
  TempDir dir;
  const fs::path path = dir / "corrupt.gguf";
  test::write_file(path, image);
  const std::string message = thrown_message<FormatError>([&] { (void)GgufModel::open(path); });
  check_mentions(message, {path.string()});
  check_mentions(message, parts);
}

// A valid file: one key, one F32 tensor of 8 elements.
Image valid() { return Image().header(1, 1).key_u32("k", 1).info("t", {8}, 0, 0).data(32); }

TEST_CASE("the valid base image opens") {
  TempDir dir;
  test::write_file(dir / "ok.gguf", valid().text());
  const auto model = GgufModel::open(dir / "ok.gguf");
  CHECK(model->tensor("t").shape == std::vector<int64_t>{8});
}

TEST_CASE("every truncation of a valid file is refused with a message") {
  TempDir dir;
  GgufMetadata metadata = test::tiny_moe_metadata(1, 2, 1);
  write_gguf_model(dir / "whole.gguf", metadata, test::tiny_moe_tensors(1, 2, DType::Q4_K), {});
  const auto whole = test::read_file(dir / "whole.gguf");
  const auto model = GgufModel::open(dir / "whole.gguf");
  uint64_t end = 0;  // the end of the last tensor's bytes; the padding after it is optional
  for (const auto& info : model->parts().front()->tensor_infos())
    end = std::max(end, model->parts().front()->data_start() + info.offset + info.bytes);
  const uint64_t header = model->parts().front()->data_start();
  for (uint64_t length = 0; length < end; length += length < header ? 1 : 4099) {
    CAPTURE(length);
    test::write_file(dir / "cut.gguf", std::span(whole).first(length));
    const std::string message =
        thrown_message<FormatError>([&] { (void)GgufModel::open(dir / "cut.gguf"); });
    check_mentions(message, {"cut.gguf"});
  }
}

TEST_CASE("header: magic, version, counts") {
  refused("GG", {"2 bytes", "magic"});
  refused(Image().raw("GGML").u32(3).u64(0).u64(0).text(), {"magic", "'GGML'", "'GGUF'"});
  refused(Image().header(0, 0, 1).text(), {"version is 1", "2 or 3"});
  refused(Image().header(0, 0, 4).text(), {"version is 4", "2 or 3"});
  refused(Image().header(0, 0, 0x03000000).text(), {"0x03000000", "big-endian"});
  refused(Image().raw("GGUF").u32(3).u64(0).text(), {"metadata key count", "truncated"});
  refused(Image().header(uint64_t{1} << 40, 0).text(), {"tensor count", "1099511627776", "limit"});
  refused(Image().header(0, uint64_t{1} << 40).text(), {"metadata key count", "limit"});
  refused(Image().header(1000, 1000).text(),
          {"1000 metadata keys", "1000 tensor infos", "truncated"});
}

TEST_CASE("metadata: strings, types, arrays") {
  refused(Image().header(0, 1).u64(uint64_t{1} << 63).u32(4).text(),
          {"metadata key #0", "9223372036854775808", "limit"});
  refused(Image().header(0, 1).u64(100).raw("short").u32(0).u32(0).text(),
          {"metadata key #0", "needs 100 bytes", "truncated"});
  refused(Image().header(0, 1).string("k").u32(13).u64(0).text(),
          {"'k'", "value type 13", "0 to 12"});
  refused(Image().header(0, 1).string("s").u32(8).u64(uint64_t{1} << 62).u64(0).text(),
          {"'s'", "4611686018427387904", "limit"});
  refused(Image().header(0, 1).string("s").u32(8).u64(1000).raw("abc").u64(0).text(),
          {"'s'", "needs 1000 bytes", "truncated"});
  refused(Image().header(0, 2).key_u32("k", 1).key_u32("k", 2).u64(0).text(),
          {"'k' appears twice"});
  refused(Image().header(0, 1).string("a").u32(9).u32(13).u64(0).u64(0).text(),
          {"'a' element", "value type 13"});
  refused(Image().header(0, 1).string("a").u32(9).u32(4).u64(uint64_t{1} << 30).u64(0).text(),
          {"'a'", "1073741824 elements", "limit"});
  refused(Image().header(0, 1).string("a").u32(9).u32(6).u64(1000).u64(0).text(),
          {"'a'", "1000 FLOAT32 elements", "4000 bytes", "truncated"});
  refused(Image().header(0, 1).string("a").u32(9).u32(8).u64(2).string("x").u64(50).text(),
          {"'a' element 1", "needs 50 bytes"});
  // Arrays nested deeper than the limit.
  Image deep = Image().header(0, 1).string("deep").u32(9);
  for (int depth = 0; depth < kMaxGgufArrayDepth + 1; ++depth) deep.u32(9).u64(1);
  deep.u32(4).u64(0).u64(0);
  refused(deep.text(), {"'deep'", "deeper than the limit of 8"});
  // Too many arrays inside arrays in all.
  refused(Image()
              .header(0, 1)
              .string("wide")
              .u32(9)
              .u32(9)
              .u64(kMaxGgufNestedArrays + 1)
              .raw(std::string((kMaxGgufNestedArrays + 1) * 12, '\0'))
              .text(),
          {"'wide'", "arrays inside arrays", "limit"});
  // general.alignment of the wrong type or not a power of two.
  refused(Image().header(0, 1).string("general.alignment").u32(10).u64(32).text(),
          {"'general.alignment'", "UINT64 32", "UINT32"});
  refused(Image().header(0, 1).key_u32("general.alignment", 48).text(),
          {"'general.alignment'", "48", "power of two"});
  refused(Image().header(0, 1).key_u32("general.alignment", 0).text(),
          {"'general.alignment'", "power of two"});
}

TEST_CASE("tensor infos: names, dimensions, types, sizes") {
  refused(Image().header(1, 0).info(std::string(64, 'n'), {8}, 0, 0).data(32).text(),
          {"tensor #0 name", "64 bytes", "63"});
  refused(Image().header(2, 0).info("t", {8}, 0, 0).info("t", {8}, 0, 32).data(64).text(),
          {"tensor 't' appears twice"});
  refused(Image().header(1, 0).info("t", {1, 1, 1, 1, 8}, 0, 0).data(32).text(),
          {"tensor 't'", "n_dims 5", "maximum of 4"});
  refused(Image().header(1, 0).info("t", {uint64_t{1} << 63}, 0, 0).data(32).text(),
          {"tensor 't'", "ne[0]", "INT64_MAX"});
  refused(Image().header(1, 0).info("t", {8}, 43, 0).data(32).text(),
          {"tensor 't'", "unknown ggml type 43", "Q2_0 (42)"});
  refused(Image().header(1, 0).info("t", {32}, 31, 0).data(32).text(),
          {"tensor 't'", "ggml type 31", "Q4_0_4_4", "no longer"});
  refused(Image().header(1, 0).info("t", {100, 2}, 12, 0).data(32).text(),
          {"tensor 't'", "ne[0] = 100", "256", "Q4_K"});
  refused(Image().header(1, 0).info("t", {}, 8, 0).data(32).text(),
          {"tensor 't'", "Q8_0 scalar", "n_dims 0"});
  refused(
      Image().header(1, 0).info("t", {uint64_t{1} << 40, uint64_t{1} << 40}, 0, 0).data(32).text(),
      {"tensor 't'", "overflows 64 bits"});
  refused(Image().header(1, 0).string("t").u32(1).u64(8).u32(0).u32(0).text(),
          {"tensor 't' offset", "truncated"});
}

TEST_CASE("tensor data: alignment, bounds, overlaps") {
  refused(Image().header(1, 0).info("t", {8}, 0, 8).data(64).text(),
          {"tensor 't'", "offset 8", "alignment 32"});
  refused(Image()
              .header(1, 1)
              .key_u32("general.alignment", 64)
              .info("t", {8}, 0, 32)
              .data(96, 64)
              .text(),
          {"tensor 't'", "offset 32", "alignment 64"});
  refused(Image().header(1, 0).info("t", {8}, 0, 0).data(31).text(),
          {"tensor 't'", "needs 32 bytes", "past the end", "truncated"});
  refused(Image().header(1, 0).info("t", {8}, 0, 1u << 20).data(32).text(),
          {"tensor 't'", "data offset 1048576", "past the end"});
  refused(Image().header(1, 0).info("t", {8}, 0, uint64_t{0xffffffffffffffe0}).data(32).text(),
          {"tensor 't'", "beyond 2^64"});
  refused(Image().header(2, 0).info("a", {16}, 0, 0).info("b", {8}, 0, 32).data(96).text(),
          {"tensor 'b'", "overlaps tensor 'a'"});
  // Zero-size tensors may share an offset; gaps and trailing bytes are allowed.
  TempDir dir;
  test::write_file(dir / "ok.gguf", Image()
                                        .header(3, 0)
                                        .info("a", {0}, 0, 0)
                                        .info("b", {8}, 0, 0)
                                        .info("c", {8}, 0, 64)
                                        .data(160)
                                        .text());
  CHECK(GgufModel::open(dir / "ok.gguf")->tensors().size() == 3);
}

// Writes a split model's parts into `dir` from `images` (one per part).
void write_parts(const TempDir& dir, const std::vector<std::string>& images) {
  for (size_t i = 0; i < images.size(); ++i)
    test::write_file(dir / fmt::format("m-{:05d}-of-{:05d}.gguf", i + 1, images.size()), images[i]);
}

// Part `no` of `count` with split keys (UINT16, UINT16, INT32) and one F32 tensor `name`.
std::string part(uint64_t no, uint64_t count, int32_t total, std::string_view name) {
  Image image;
  image.header(1, 3).string("split.no").u32(2).number(no, 2);
  image.string("split.count").u32(2).number(count, 2);
  image.string("split.tensors.count").u32(5).u32(static_cast<uint32_t>(total));
  return image.info(name, {8}, 0, 0).data(32).text();
}

TEST_CASE("split models: parts found, keys agreeing, tensors counted once") {
  {
    TempDir dir;
    write_parts(dir, {part(0, 2, 2, "a"), part(1, 2, 2, "b")});
    CHECK(GgufModel::open(dir / "m-00001-of-00002.gguf")->tensors().size() == 2);
  }
  auto open_first = [](const TempDir& dir) {
    return thrown_message<FormatError>(
        [&] { (void)GgufModel::open(dir / "m-00001-of-00002.gguf"); });
  };
  {
    TempDir dir;
    write_parts(dir, {part(0, 2, 2, "a"), part(0, 2, 2, "b")});
    check_mentions(open_first(dir), {"m-00002-of-00002.gguf", "part 1 of 2", "expected part 2"});
  }
  {
    TempDir dir;
    write_parts(dir, {part(0, 2, 2, "a"), part(1, 3, 2, "b")});
    check_mentions(open_first(dir), {"m-00002-of-00002.gguf", "of 3", "expected part 2 of 2"});
  }
  {
    TempDir dir;
    write_parts(dir, {part(0, 2, 3, "a"), part(1, 2, 3, "b")});
    check_mentions(open_first(dir), {"'split.tensors.count' is 3", "hold 2 tensors"});
  }
  {
    TempDir dir;
    write_parts(dir, {part(0, 2, 2, "a"), part(1, 2, 2, "a")});
    check_mentions(open_first(dir),
                   {"m-00002-of-00002.gguf", "tensor 'a' is also in", "m-00001-of-00002.gguf"});
  }
  {
    TempDir dir;
    write_parts(dir, {part(0, 2, 2, "a")});  // named ...-of-00001 but split.count says 2
    check_mentions(
        thrown_message<FormatError>([&] { (void)GgufModel::open(dir / "m-00001-of-00001.gguf"); }),
        {"'split.count' is 2", "PREFIX-00001-of-00002.gguf"});
  }
  {
    TempDir dir;
    test::write_file(dir / "m-00001-of-00002.gguf", part(0, 2, 2, "a"));
    check_mentions(
        thrown_message<InputError>([&] { (void)GgufModel::open(dir / "m-00001-of-00002.gguf"); }),
        {"split part 2 of 2", "m-00002-of-00002.gguf", "is missing"});
  }
  {
    TempDir dir;
    test::write_file(dir / "m.gguf",
                     Image().header(0, 1).string("split.count").u32(2).number(0, 2).text());
    check_mentions(thrown_message<FormatError>([&] { (void)GgufModel::open(dir / "m.gguf"); }),
                   {"'split.count' is 0", "expected 1 to"});
  }
}

}  // namespace
}  // namespace moeslice
