// The corruption matrix: one handcrafted file per way a safetensors file, a shard index or a
// checkpoint directory can be broken, each checked for the error type and for a message that names
// the file and says what was expected and what was found. The accept side of each rule (leading
// whitespace, null __metadata__, unknown extra fields) is checked against what the reference
// implementation (Hugging Face safetensors, serde_json) accepts.
#include <doctest/doctest.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include <fmt/core.h>

#include "common/error.h"
#include "format/safetensors/checkpoint.h"
#include "format/safetensors/file.h"
#include "test_util.h"

namespace moeslice {
namespace {

using test::append;
using test::bytes_of;
using test::check_mentions;
using test::counting_bytes;
using test::safetensors_image;
using test::TempDir;
using test::thrown_message;
using test::write_file;
namespace fs = std::filesystem;

// `"name":{"dtype":...,"shape":...,"data_offsets":...}` with each field given as raw JSON text, so
// that tests can put anything there.
std::string entry(std::string_view name, std::string_view dtype, std::string_view shape,
                  std::string_view offsets) {
  return fmt::format(R"("{}":{{"dtype":{},"shape":{},"data_offsets":{}}})", name, dtype, shape,
                     offsets);
}

// A well-formed entry: `dtype` and `shape` (raw JSON) at data offsets [begin, end).
std::string tensor(std::string_view name, std::string_view dtype, std::string_view shape,
                   uint64_t begin, uint64_t end) {
  return entry(name, fmt::format("\"{}\"", dtype), shape, fmt::format("[{},{}]", begin, end));
}

std::string object(std::initializer_list<std::string> entries) {
  std::string text = "{";
  for (const auto& item : entries) text += (text.size() > 1 ? "," : "") + item;
  return text + "}";
}

// Writes `image` to a fresh file, opens it, and returns the FormatError message, which must name
// the file.
std::string refusal(std::span<const std::byte> image) {
  TempDir dir;
  const auto path = dir / "corrupt.safetensors";
  write_file(path, image);
  const auto message = thrown_message<FormatError>([&] { (void)SafetensorsFile::open(path); });
  check_mentions(message, {path.string()});
  return message;
}

std::string refusal(std::string_view header, std::span<const std::byte> data = {}) {
  return refusal(safetensors_image(header, data));
}

// Opens a file the reference accepts.
std::shared_ptr<const SafetensorsFile> accepted(const TempDir& dir, std::string_view header,
                                                std::span<const std::byte> data = {}) {
  const auto path = dir / "ok.safetensors";
  write_file(path, safetensors_image(header, data));
  return SafetensorsFile::open(path);
}

// Two tensors, "a" (F32 [2], bytes 0..8) and "b" (U8 [3], bytes 8..11).
const std::string kValidHeader =
    object({tensor("a", "F32", "[2]", 0, 8), tensor("b", "U8", "[3]", 8, 11)});
const std::vector<std::byte> kValidData = counting_bytes(11);

TEST_CASE("the valid two-tensor file used by this matrix opens") {
  TempDir dir;
  const auto file = accepted(dir, kValidHeader, kValidData);
  REQUIRE(file->tensors().size() == 2);
  CHECK(file->find("b")->bytes.size() == 3);
  CHECK(file->data_start() == 8 + kValidHeader.size());
}

// ---- the length field -------------------------------------------------------------------------

TEST_CASE("a file shorter than the 8-byte length field is refused") {
  for (const size_t size : {0u, 1u, 7u}) {
    CAPTURE(size);
    const auto message = refusal(std::vector<std::byte>(size, std::byte{0}));
    check_mentions(message, {fmt::format("file is {} bytes", size), "expected at least 8"});
  }
}

TEST_CASE("a header length above 100,000,000 bytes is refused") {
  SUBCASE("one byte over the limit") {
    const auto message = refusal(safetensors_image("{}", {}, 100'000'001));
    check_mentions(message, {"header length 100000001", "limit of 100000000"});
  }
  SUBCASE("the largest 64-bit length") {
    const auto message = refusal(safetensors_image("{}", {}, UINT64_MAX));
    check_mentions(message, {"header length 18446744073709551615", "limit of 100000000"});
  }
  SUBCASE("exactly the limit is not refused for its size, only for running past the end") {
    const auto message = refusal(safetensors_image("{}", {}, 100'000'000));
    check_mentions(message, {"runs past the end"});
  }
}

TEST_CASE("a header length past the end of the file is refused") {
  const auto message = refusal(safetensors_image("{}", {}, 3));
  check_mentions(message, {"header length 3 runs past the end of the file", "(2 bytes after"});
}

// ---- the header text --------------------------------------------------------------------------

TEST_CASE("a header that is not UTF-8 is refused") {
  const std::string invalid_sequences[] = {
      "\xff",          // never valid
      "\xc0\x80",      // overlong NUL
      "\xed\xa0\x80",  // an encoded surrogate
      "\xe2\x82",      // truncated three-byte sequence
      "\x80",          // lone continuation byte
  };
  for (const auto& bad : invalid_sequences) {
    CAPTURE(bad.size());
    // In a metadata value, in a tensor name, and in the padding after the object.
    check_mentions(refusal(R"({"__metadata__":{"k":")" + bad + "\"}}"), {"UTF-8"});
    check_mentions(refusal(object({tensor("x" + bad, "U8", "[0]", 0, 0)})), {"UTF-8"});
    check_mentions(refusal("{}" + bad), {"UTF-8 JSON"});
  }
}

TEST_CASE("a header starting with a UTF-8 byte order mark is refused") {
  // serde_json does not skip a BOM; nlohmann would, so the reader must refuse it explicitly.
  check_mentions(refusal("\xef\xbb\xbf{}"), {"byte order mark", "expected '{'"});
}

TEST_CASE("a NUL byte anywhere in the header is refused") {
  // nlohmann stops at a NUL as if the input ended there; serde_json calls it a trailing character.
  using namespace std::string_literals;
  for (const auto& header : {"{}\0\0\0\0\0\0"s, "{}\0garbage"s, "{}  \0\xff"s}) {
    CAPTURE(header);
    check_mentions(refusal(header), {"NUL byte at offset", "expected JSON padded with spaces"});
  }
}

TEST_CASE("a header that is not JSON is refused") {
  using namespace std::string_literals;
  const std::string headers[] = {
      ""s,                  // empty
      "not json"s,          //
      "{\"a\":"s,           // cut short
      "{} x"s,              // trailing garbage
      "{\"a\":1,}"s,        // trailing comma
      "{/* comment */}"s,   // comments
      "{'a':1}"s,           // single quotes
      "{\"\\ud800\":1}"s,   // lone surrogate escape
      "{\"a\":\"\x01\"}"s,  // unescaped control character
  };
  for (const auto& header : headers) {
    CAPTURE(header);
    check_mentions(refusal(header), {"header is not valid UTF-8 JSON"});
  }
}

TEST_CASE("a header that is JSON but not an object is refused") {
  const std::pair<const char*, const char*> cases[] = {{"[]", "found array"},
                                                       {"\"x\"", "found string"},
                                                       {"1", "found number"},
                                                       {"null", "found null"},
                                                       {"true", "found boolean"}};
  for (const auto& [header, found] : cases) {
    INFO("header = " << std::string(header));
    check_mentions(refusal(header), {"header must be a JSON object", found});
  }
}

TEST_CASE("a tensor name that appears twice is refused") {
  const auto message =
      refusal(object({tensor("a", "F32", "[1]", 0, 4), tensor("a", "F32", "[1]", 4, 8)}),
              counting_bytes(8));
  check_mentions(message, {"'a'", "twice"});
}

TEST_CASE("a field that appears twice in a tensor entry is refused") {
  // serde refuses a duplicate struct field ("duplicate field `dtype`").
  const auto message = refusal(
      R"({"a":{"dtype":"F32","dtype":"U8","shape":[4],"data_offsets":[0,4]}})", counting_bytes(4));
  check_mentions(message, {"'dtype'", "twice"});
}

TEST_CASE("JSON nested 128 levels deep is refused, as serde_json's recursion limit refuses it") {
  // The header object is level 1, the tensor entry level 2, then `arrays` nested arrays.
  auto header_with_nesting = [](size_t arrays) {
    return R"({"a":{"dtype":"U8","shape":[0],"data_offsets":[0,0],"extra":)" +
           std::string(arrays, '[') + std::string(arrays, ']') + "}}";
  };
  TempDir dir;
  CHECK(accepted(dir, header_with_nesting(125))->find("a") != nullptr);  // 127 levels
  check_mentions(refusal(header_with_nesting(126)), {"more than 127 levels deep"});
  // Ten million unclosed brackets are refused at level 128, not parsed into a huge DOM.
  check_mentions(refusal(std::string(10'000'000, '[')), {"more than 127 levels deep"});
}

TEST_CASE("a __metadata__ that is not a string-to-string map is refused") {
  const std::pair<const char*, const char*> cases[] = {
      {R"({"__metadata__":"pt"})", "found string"},
      {R"({"__metadata__":["format","pt"]})", "found array"},
      {R"({"__metadata__":7})", "found number"},
      {R"({"__metadata__":{"format":1}})", "'format' must be a string, found number"},
      {R"({"__metadata__":{"format":null}})", "'format' must be a string, found null"},
      {R"({"__metadata__":{"nested":{"a":"b"}}})", "'nested' must be a string, found object"},
  };
  for (const auto& [header, found] : cases) {
    INFO("header = " << std::string(header));
    check_mentions(refusal(header), {"__metadata__", found});
  }
}

TEST_CASE("a null __metadata__ is accepted, as the reference's Option<HashMap> accepts it") {
  TempDir dir;
  const auto file = accepted(dir, R"({"__metadata__":null})");
  CHECK(file->metadata().empty());
  CHECK(file->tensors().empty());
}

TEST_CASE("an empty header object is a valid file with no tensors") {
  TempDir dir;
  const auto file = accepted(dir, "{}");
  CHECK(file->tensors().empty());
  CHECK(file->data_start() == 10);
}

TEST_CASE("__metadata__ strings are read") {
  TempDir dir;
  const auto file = accepted(dir, R"({"__metadata__":{"format":"pt","k":"v \u00e9"}})");
  CHECK(file->metadata().at("format") == "pt");
  CHECK(file->metadata().at("k") == "v \xc3\xa9");
}

// ---- tensor entries ---------------------------------------------------------------------------

TEST_CASE("a tensor entry that is not an object is refused") {
  check_mentions(refusal(R"({"a":[1,2]})"), {"tensor 'a'", "must be an object, found array"});
}

TEST_CASE("an unknown dtype is refused, listing the known ones") {
  for (const char* name : {"F128", "f32", "", "F8_E4M3FN"}) {
    INFO("name = " << std::string(name));
    const auto message = refusal(object({tensor("a", name, "[0]", 0, 0)}));
    check_mentions(message,
                   {"tensor 'a'", fmt::format("unknown dtype '{}'", name), "F8_E4M3", "BF16"});
  }
}

TEST_CASE("a tensor without dtype, shape or data_offsets is refused") {
  SUBCASE("no dtype") {
    check_mentions(refusal(R"({"a":{"shape":[1],"data_offsets":[0,4]}})", counting_bytes(4)),
                   {"tensor 'a'", "expected a string field 'dtype', found none"});
  }
  SUBCASE("dtype not a string") {
    check_mentions(refusal(object({entry("a", "5", "[1]", "[0,1]")}), counting_bytes(1)),
                   {"tensor 'a'", "'dtype'", "found number"});
  }
  SUBCASE("no shape") {
    check_mentions(refusal(R"({"a":{"dtype":"U8","data_offsets":[0,4]}})", counting_bytes(4)),
                   {"tensor 'a'", "expected an array field 'shape', found none"});
  }
  SUBCASE("shape not an array") {
    check_mentions(refusal(object({entry("a", "\"U8\"", "4", "[0,4]")}), counting_bytes(4)),
                   {"tensor 'a'", "'shape'", "found number"});
  }
  SUBCASE("no data_offsets") {
    check_mentions(refusal(R"({"a":{"dtype":"U8","shape":[4]}})", counting_bytes(4)),
                   {"tensor 'a'", "'data_offsets' must be two non-negative integers, found none"});
  }
}

TEST_CASE("shape entries must be non-negative integers") {
  for (const char* shape : {"[-1]", "[2,-3]", "[1.5]", "[2.0]", "[2e0]", "[\"2\"]", "[null]",
                            "[true]", "[[2]]", "[18446744073709551616]", "[9223372036854775808]"}) {
    INFO("shape = " << std::string(shape));
    const auto message = refusal(object({entry("a", "\"U8\"", shape, "[0,2]")}), counting_bytes(2));
    check_mentions(message, {"tensor 'a'", "shape", "non-negative integers"});
  }
}

TEST_CASE("data_offsets must be exactly two non-negative integers") {
  const std::pair<const char*, const char*> cases[] = {
      {"[]", "[]"},
      {"[0]", "[0]"},
      {"[0,4,4]", "[0,4,4]"},
      {"[-1,3]", "[-1,3]"},
      {"[0,4.0]", "[0,4.0]"},
      {R"(["0",4])", R"(["0",4])"},
      {"{}", "{}"},
      {"4", "4"},
      {"[0,18446744073709551616]", "[0,1.8446744073709552e+19]"},  // beyond 64 bits: a float
  };
  for (const auto& [offsets, found] : cases) {
    INFO("offsets = " << std::string(offsets));
    const auto message = refusal(object({entry("a", "\"U8\"", "[4]", offsets)}), counting_bytes(4));
    check_mentions(message, {"tensor 'a'", "'data_offsets' must be two non-negative integers",
                             fmt::format("found {}", found)});
  }
}

TEST_CASE("data_offsets that end before they begin are refused") {
  const auto message = refusal(object({tensor("a", "U8", "[0]", 4, 0)}), counting_bytes(4));
  check_mentions(message, {"tensor 'a'", "data_offsets [4, 0] end before they begin"});
}

TEST_CASE("a byte range that does not match dtype x shape is refused") {
  SUBCASE("too short") {
    const auto message = refusal(object({tensor("a", "F32", "[2]", 0, 7)}), counting_bytes(7));
    check_mentions(message, {"tensor 'a'", "F32 [2] needs 8 bytes", "[0, 7] hold 7"});
  }
  SUBCASE("too long") {
    const auto message =
        refusal(object({tensor("a", "BF16", "[2, 3]", 0, 13)}), counting_bytes(13));
    check_mentions(message, {"BF16 [2, 3] needs 12 bytes", "hold 13"});
  }
  SUBCASE("a 0-dim scalar is one element") {
    const auto message = refusal(object({tensor("a", "I64", "[]", 0, 0)}));
    check_mentions(message, {"I64 [] needs 8 bytes", "hold 0"});
  }
}

TEST_CASE("an element count or byte count that overflows 64 bits is refused") {
  const char* const shapes[] = {
      "[4611686018427387904,4611686018427387904]",  // [2^62, 2^62]: the element count overflows
      "[4611686018427387904,4]",                    // 2^64 elements
      "[2305843009213693952,2]",  // 2^62 elements fit, but 2^62 x 32 bits does not
  };
  for (const char* shape : shapes) {
    INFO("shape = " << std::string(shape));
    const auto message = refusal(object({entry("a", "\"F32\"", shape, "[0,0]")}));
    check_mentions(message, {"tensor 'a'", "the size of F32", "overflows 64 bits"});
  }
}

TEST_CASE("a sub-byte dtype whose elements do not fill whole bytes is refused") {
  SUBCASE("F4 [3] is 12 bits") {
    const auto message = refusal(object({tensor("a", "F4", "[3]", 0, 2)}), counting_bytes(2));
    check_mentions(message,
                   {"tensor 'a'", "F4 [3] is 12 bits", "expected a whole number of bytes"});
  }
  SUBCASE("F6_E2M3 [3] is 18 bits") {
    const auto message = refusal(object({tensor("a", "F6_E2M3", "[3]", 0, 3)}), counting_bytes(3));
    check_mentions(message, {"F6_E2M3 [3] is 18 bits", "expected a whole number of bytes"});
  }
  SUBCASE("whole bytes are accepted: F4 [2, 3] is 3 bytes, F6_E3M2 [4] is 3 bytes") {
    TempDir dir;
    const auto file = accepted(
        dir, object({tensor("a", "F4", "[2, 3]", 0, 3), tensor("b", "F6_E3M2", "[4]", 3, 6)}),
        counting_bytes(6));
    CHECK(file->find("a")->bytes.size() == 3);
    CHECK(file->find("b")->bytes.size() == 3);
  }
}

// ---- tiling of the data buffer ----------------------------------------------------------------

TEST_CASE("a gap between tensors is refused") {
  SUBCASE("between two tensors") {
    const auto message =
        refusal(object({tensor("a", "F32", "[2]", 0, 8), tensor("b", "U8", "[3]", 9, 12)}),
                counting_bytes(12));
    check_mentions(message, {"tensor 'b' starts at data offset 9, expected 8", "gap"});
  }
  SUBCASE("before the first tensor") {
    const auto message = refusal(object({tensor("a", "U8", "[4]", 2, 6)}), counting_bytes(6));
    check_mentions(message, {"tensor 'a' starts at data offset 2, expected 0", "gap"});
  }
}

TEST_CASE("overlapping tensors are refused") {
  SUBCASE("partly overlapping") {
    const auto message =
        refusal(object({tensor("a", "F32", "[2]", 0, 8), tensor("b", "F32", "[2]", 4, 12)}),
                counting_bytes(12));
    check_mentions(message, {"tensor 'b' starts at data offset 4, expected 8", "overlaps"});
  }
  SUBCASE("two names for the same bytes") {
    const auto message =
        refusal(object({tensor("a", "F32", "[2]", 0, 8), tensor("b", "F32", "[2]", 0, 8)}),
                counting_bytes(8));
    check_mentions(message, {"starts at data offset 0, expected 8", "overlaps"});
  }
}

TEST_CASE("bytes after the last tensor are refused") {
  SUBCASE("one trailing byte") {
    auto data = kValidData;
    data.push_back(std::byte{0});
    const auto message = refusal(kValidHeader, data);
    check_mentions(message, {"cover 11 bytes", "holds 12 bytes", "trailing bytes"});
  }
  SUBCASE("data after a header with no tensors") {
    check_mentions(refusal("{}", counting_bytes(1)), {"cover 0 bytes", "trailing bytes"});
  }
}

TEST_CASE("a tensor that runs past the end of the file is refused") {
  const auto message = refusal(kValidHeader, counting_bytes(10));
  check_mentions(
      message, {"tensor 'b'", "data_offsets [8, 11] run past the data buffer of 10", "truncated"});
}

TEST_CASE("every truncation of a valid file is refused") {
  // Cuts inside the length field, inside the header and inside the data: each one must be a
  // FormatError (never a crash, never an out-of-bounds read under ASan).
  const auto image = safetensors_image(kValidHeader, kValidData);
  TempDir dir;
  const auto path = dir / "cut.safetensors";
  for (size_t cut = 0; cut < image.size(); ++cut) {
    CAPTURE(cut);
    write_file(path, std::span(image).first(cut));
    const auto message = thrown_message<FormatError>([&] { (void)SafetensorsFile::open(path); });
    check_mentions(message, {path.string()});
  }
  write_file(path, image);
  CHECK(SafetensorsFile::open(path)->tensors().size() == 2);
}

// ---- what the reference accepts ---------------------------------------------------------------

TEST_CASE("leading and trailing JSON whitespace around the header is accepted") {
  TempDir dir;
  const auto file = accepted(dir, " \t\r\n" + kValidHeader + "\n \t\r", kValidData);
  REQUIRE(file->tensors().size() == 2);
  CHECK(file->find("a")->bytes[0] == std::byte{0});
  CHECK(file->data_start() == 8 + kValidHeader.size() + 8);
}

TEST_CASE("a header whose length is not a multiple of 8 is accepted") {
  TempDir dir;
  const std::string header = object({tensor("a", "U8", "[1]", 0, 1)});
  REQUIRE(header.size() % 8 != 0);
  CHECK(accepted(dir, header, counting_bytes(1))->find("a") != nullptr);
}

TEST_CASE("unknown extra fields in a tensor entry are ignored, as serde ignores them") {
  TempDir dir;
  const auto file =
      accepted(dir, R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2],"extra":[1]}})",
               counting_bytes(2));
  CHECK(file->find("a")->shape == std::vector<int64_t>{2});
}

TEST_CASE("tensors listed in any order are sorted by offset before the tiling check") {
  TempDir dir;
  const auto file = accepted(
      dir,
      object({tensor("z_first", "U8", "[2]", 0, 2), tensor("a_last", "U8", "[0]", 5, 5),
              tensor("m_middle", "U8", "[3]", 2, 5), tensor("empty_start", "U8", "[0]", 0, 0)}),
      counting_bytes(5));
  CHECK(file->find("m_middle")->bytes.data() ==
        file->mapped().bytes().data() + file->data_start() + 2);
  CHECK(file->find("a_last")->bytes.empty());
}

// ---- robustness -------------------------------------------------------------------------------

TEST_CASE("randomly corrupted files are either accepted or refused with a FormatError") {
  const auto image = safetensors_image(kValidHeader, kValidData);
  TempDir dir;
  const auto path = dir / "mutant.safetensors";
  std::mt19937 random(20240611);
  std::uniform_int_distribution<size_t> position(0, image.size() - 1);
  std::uniform_int_distribution<int> byte_value(0, 255);
  int refused = 0;
  for (int round = 0; round < 1500; ++round) {
    auto mutant = image;
    const int flips = 1 + round % 3;
    for (int i = 0; i < flips; ++i)
      mutant[position(random)] = static_cast<std::byte>(byte_value(random));
    write_file(path, mutant);
    try {
      const auto file = SafetensorsFile::open(path);
      // Whatever was accepted must still tile the file exactly.
      uint64_t total = 0;
      for (const auto& [name, view] : file->tensors()) total += view.bytes.size();
      CHECK(file->data_start() + total == mutant.size());
    } catch (const FormatError&) {
      ++refused;
    }
  }
  CHECK(refused > 500);
}

TEST_CASE("a missing file is an InputError naming it") {
  TempDir dir;
  const auto path = dir / "absent.safetensors";
  const auto message = thrown_message<InputError>([&] { (void)SafetensorsFile::open(path); });
  check_mentions(message, {path.string(), "No such file"});
  check_mentions(thrown_message<InputError>([&] { (void)SafetensorsFile::open(dir.path()); }),
                 {dir.path().string(), "not a regular file"});
}

// ---- sharded checkpoints ----------------------------------------------------------------------

// A shard image holding one U8 [1] tensor per name, in order.
std::vector<std::byte> shard_image(std::initializer_list<std::string_view> names) {
  std::string header = "{";
  uint64_t offset = 0;
  for (const auto name : names) {
    if (offset > 0) header += ",";
    header += tensor(name, "U8", "[1]", offset, offset + 1);
    ++offset;
  }
  return safetensors_image(header + "}", counting_bytes(offset));
}

// A checkpoint directory: config.json, two shards and an index mapping a, b -> shard 1, c -> 2.
struct ShardedDir {
  TempDir dir;
  ShardedDir() {
    write_file(dir / "config.json", R"({"model_type":"test"})");
    write_file(dir / "s1.safetensors", shard_image({"a", "b"}));
    write_file(dir / "s2.safetensors", shard_image({"c"}));
    write_index(R"({"a":"s1.safetensors","b":"s1.safetensors","c":"s2.safetensors"})");
  }
  void write_index(std::string_view weight_map) const {
    write_file(dir / kIndexFileName,
               fmt::format(R"({{"metadata":{{"total_size":3}},"weight_map":{}}})", weight_map));
  }
  fs::path index() const { return dir / kIndexFileName; }
};

TEST_CASE("the valid sharded directory used by this matrix opens") {
  ShardedDir sharded;
  const auto checkpoint = SafetensorsCheckpoint::open(sharded.dir.path());
  CHECK(checkpoint->sharded());
  CHECK(checkpoint->tensors().size() == 3);
  CHECK(checkpoint->file_of("c").path().filename() == "s2.safetensors");
}

TEST_CASE("a shard named in the index that does not exist is refused") {
  ShardedDir sharded;
  fs::remove(sharded.dir / "s2.safetensors");
  const auto message =
      thrown_message<InputError>([&] { (void)SafetensorsCheckpoint::open(sharded.dir.path()); });
  check_mentions(message, {sharded.index().string(), "s2.safetensors", "'c'", "missing"});
}

TEST_CASE("a tensor listed in the index but absent from its shard is refused") {
  ShardedDir sharded;
  sharded.write_index(
      R"({"a":"s1.safetensors","b":"s1.safetensors","c":"s2.safetensors","d":"s2.safetensors"})");
  const auto message =
      thrown_message<FormatError>([&] { (void)SafetensorsCheckpoint::open(sharded.dir.path()); });
  check_mentions(message, {sharded.index().string(), "'d'", "s2.safetensors", "does not hold"});
}

TEST_CASE("a tensor held by a shard but missing from the index is refused") {
  ShardedDir sharded;
  sharded.write_index(R"({"a":"s1.safetensors","c":"s2.safetensors"})");
  const auto message =
      thrown_message<FormatError>([&] { (void)SafetensorsCheckpoint::open(sharded.dir.path()); });
  check_mentions(message, {sharded.index().string(), "s1.safetensors", "'b'", "does not list"});
}

TEST_CASE("the same tensor in two shards is refused") {
  ShardedDir sharded;
  write_file(sharded.dir / "s2.safetensors", shard_image({"b", "c"}));
  const auto message =
      thrown_message<FormatError>([&] { (void)SafetensorsCheckpoint::open(sharded.dir.path()); });
  check_mentions(message, {sharded.index().string(), "'b'", "s1.safetensors", "s2.safetensors"});
}

TEST_CASE("an index that is not JSON is refused") {
  ShardedDir sharded;
  write_file(sharded.index(), R"({"weight_map": {"a": "s1.safetensors",)");
  const auto message =
      thrown_message<FormatError>([&] { (void)SafetensorsCheckpoint::open(sharded.dir.path()); });
  check_mentions(message, {sharded.index().string(), "not valid JSON"});
}

TEST_CASE("an index without a weight_map object is refused") {
  for (const char* index : {"{}", "[]", R"({"weight_map":[]})", R"({"weight_map":"x"})"}) {
    INFO("index = " << std::string(index));
    ShardedDir sharded;
    write_file(sharded.index(), index);
    const auto message =
        thrown_message<FormatError>([&] { (void)SafetensorsCheckpoint::open(sharded.dir.path()); });
    check_mentions(message, {sharded.index().string(), "'weight_map' object"});
  }
}

TEST_CASE("a weight_map entry that is not a string is refused") {
  ShardedDir sharded;
  sharded.write_index(R"({"a":1})");
  const auto message =
      thrown_message<FormatError>([&] { (void)SafetensorsCheckpoint::open(sharded.dir.path()); });
  check_mentions(message, {sharded.index().string(), "'a'", "must be a file name"});
}

TEST_CASE("a weight_map file name that leaves the directory is refused") {
  for (const char* shard :
       {"../s1.safetensors", "sub/s1.safetensors", "/tmp/s1.safetensors", "", ".", ".."}) {
    INFO("shard = " << std::string(shard));
    ShardedDir sharded;
    sharded.write_index(fmt::format(R"({{"a":"{}"}})", shard));
    const auto message =
        thrown_message<FormatError>([&] { (void)SafetensorsCheckpoint::open(sharded.dir.path()); });
    check_mentions(message,
                   {sharded.index().string(), "'a'", "expected a file name inside the directory"});
  }
}

TEST_CASE("a corrupt shard is refused naming the shard") {
  ShardedDir sharded;
  auto image = shard_image({"c"});
  image.pop_back();
  write_file(sharded.dir / "s2.safetensors", image);
  const auto message =
      thrown_message<FormatError>([&] { (void)SafetensorsCheckpoint::open(sharded.dir.path()); });
  check_mentions(message, {(sharded.dir / "s2.safetensors").string()});
}

TEST_CASE("a missing config.json is an InputError, a malformed one a FormatError") {
  ShardedDir sharded;
  const auto config = sharded.dir / kConfigFileName;
  SUBCASE("missing") {
    fs::remove(config);
    const auto message =
        thrown_message<InputError>([&] { (void)SafetensorsCheckpoint::open(sharded.dir.path()); });
    check_mentions(message, {config.string(), "does not exist"});
  }
  SUBCASE("not JSON") {
    write_file(config, "{\"model_type\": ");
    const auto message =
        thrown_message<FormatError>([&] { (void)SafetensorsCheckpoint::open(sharded.dir.path()); });
    check_mentions(message, {config.string(), "not valid JSON"});
  }
  SUBCASE("JSON but not an object") {
    write_file(config, "[1, 2]");
    const auto message =
        thrown_message<FormatError>([&] { (void)SafetensorsCheckpoint::open(sharded.dir.path()); });
    check_mentions(message, {config.string(), "expected a JSON object, found array"});
  }
}

TEST_CASE("a directory with neither model.safetensors nor an index is refused") {
  ShardedDir sharded;
  fs::remove(sharded.index());
  const auto message =
      thrown_message<InputError>([&] { (void)SafetensorsCheckpoint::open(sharded.dir.path()); });
  check_mentions(message, {sharded.dir.path().string(), kSingleFileName, kIndexFileName});
  check_mentions(thrown_message<InputError>(
                     [&] { (void)SafetensorsCheckpoint::open(sharded.dir / "no-such-dir"); }),
                 {"no-such-dir", "does not exist"});
}

}  // namespace
}  // namespace moeslice
