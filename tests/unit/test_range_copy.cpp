// The range-copy engine on its own (format/range_copy.h): literal bytes, produced tensors and file
// ranges land at their offsets in both copy modes, whatever order they are listed in; ranges the
// kernel will not copy fall back to produce(); a range that ends early, a missing source, an output
// that cannot be created or written are IoErrors naming the file; a wrong producer or a layout past
// the file's size is a programming error.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include <fmt/core.h>

#include "common/error.h"
#include "file_ranges.h"
#include "format/range_copy.h"
#include "test_util.h"

namespace moeslice {
namespace {

namespace fs = std::filesystem;
using test::range_of;

constexpr RangeCopy kBothModes[] = {RangeCopy::kCached, RangeCopy::kDirect};

// The file a layout describes, built in memory: literals copied, tensors from produce().
std::vector<std::byte> image_of(const FileLayout& layout) {
  std::vector<std::byte> image(layout.size);
  for (const LiteralBytes& literal : layout.literals)
    std::copy(literal.bytes.begin(), literal.bytes.end(),
              image.begin() + static_cast<std::ptrdiff_t>(literal.offset));
  for (const PlacedTensor& placed : layout.tensors) {
    uint64_t at = placed.offset;
    placed.tensor->produce([&](std::span<const std::byte> bytes) {
      std::copy(bytes.begin(), bytes.end(), image.begin() + static_cast<std::ptrdiff_t>(at));
      at += bytes.size();
    });
  }
  return image;
}

// Writes `layout` in each copy mode and checks the file against its image.
void check_written_in_both_modes(const FileLayout& layout) {
  const auto expected = image_of(layout);
  for (const RangeCopy copy : kBothModes) {
    CAPTURE(static_cast<int>(copy));
    write_file_layout(layout, copy);
    CHECK(test::read_file(layout.path) == expected);
  }
}

// `tensors` one after another, with a literal (from `literals`, which must outlive the layout)
// before the first, after every 40th and after the last, as a header and padding would be.
FileLayout lay_out(const fs::path& path, std::span<const TensorSource> tensors,
                   std::vector<std::vector<std::byte>>& literals) {
  FileLayout layout{path, 0, {}, {}};
  auto add_literal = [&](size_t length) {
    literals.push_back(test::counting_bytes(length, static_cast<unsigned>(literals.size() + 3)));
    layout.literals.push_back({layout.size, literals.back()});
    layout.size += length;
  };
  literals.reserve(tensors.size() / 40 + 2);
  add_literal(4099);
  for (size_t i = 0; i < tensors.size(); ++i) {
    layout.tensors.push_back({layout.size, &tensors[i]});
    layout.size += tensors[i].byte_size();
    if (i % 40 == 39) add_literal(1 + i % 13);
  }
  add_literal(17);
  return layout;
}

TEST_CASE("literals, produced tensors and file ranges land at their offsets in both modes") {
  test::TempDir dir;
  const auto tensors = test::many_ranges(dir);
  std::vector<std::vector<std::byte>> literals;
  const FileLayout layout = lay_out(dir / "out.bin", tensors, literals);
  check_written_in_both_modes(layout);
}

TEST_CASE(
    "tensors may be listed in any order, and neighbours in a source stay apart in the output") {
  test::TempDir dir;
  const auto source = dir / "source.bin";
  const auto contents = test::counting_bytes(3 << 20, 5);
  test::write_file(source, contents);
  // Three neighbours in the source, written in reverse with a literal between the last two, so
  // that no two of them may be copied as one run.
  const std::vector<TensorSource> tensors = {
      range_of("a", source, contents, 100, (1 << 20) + 1),
      range_of("b", source, contents, 100 + (1 << 20) + 1, 1 << 20),
      range_of("c", source, contents, 100 + (2 << 20) + 1, 4096)};
  const auto gap = test::counting_bytes(7, 99);
  FileLayout layout{dir / "out.bin", 0, {}, {}};
  layout.tensors = {{0, &tensors[2]}, {4096 + 7, &tensors[1]}, {4096 + 7 + (1 << 20), &tensors[0]}};
  layout.literals = {{4096, gap}};
  layout.size = 4096 + 7 + (2 << 20) + 1;
  check_written_in_both_modes(layout);
}

// A U8 tensor that is `pieces` (offset, length) of `file` one after another: file_ranges for the
// writer to copy, and the same bytes from produce().
TensorSource pieces_of(std::string name, const fs::path& file, std::span<const std::byte> contents,
                       const std::vector<std::pair<uint64_t, uint64_t>>& pieces) {
  std::vector<std::byte> bytes;
  std::vector<FileRange> ranges;
  for (const auto& [offset, length] : pieces) {
    const auto piece = contents.subspan(offset, length);
    bytes.insert(bytes.end(), piece.begin(), piece.end());
    ranges.push_back({file, offset, length});
  }
  TensorSource source = TensorSource::from_bytes(std::move(name), DType::U8,
                                                 {static_cast<int64_t>(bytes.size())}, bytes);
  source.file_ranges = std::move(ranges);
  return source;
}

TEST_CASE("a tensor made of several file ranges (kept rows) is copied piece by piece") {
  test::TempDir dir;
  const auto source = dir / "source.bin";
  const auto contents = test::counting_bytes(12 << 20, 3);
  test::write_file(source, contents);
  const uint64_t row = (1 << 20) + 4096 + 17;  // rows that are not a multiple of the alignment
  std::vector<TensorSource> tensors = {
      // Rows 0, 2, 3 (neighbours: one run), 7, then 1 out of order.
      pieces_of("kept", source, contents,
                {{10, row},
                 {10 + 2 * row, row},
                 {10 + 3 * row, row},
                 {10 + 7 * row, row},
                 {10 + row, row}}),
      // Follows the last piece of `kept` in the source: joins its run.
      range_of("next", source, contents, 10 + 2 * row, 4096),
      pieces_of("empty pieces", source, contents, {{5, 0}, {99, 3}, {7, 0}}),
  };
  // Pieces that do not add up to the tensor's size: produce() only.
  tensors.push_back(pieces_of("short", source, contents, {{1, 100}, {500, 20}}));
  tensors.back().file_ranges.pop_back();
  std::vector<std::vector<std::byte>> literals;
  const FileLayout layout = lay_out(dir / "out.bin", tensors, literals);
  check_written_in_both_modes(layout);
}

TEST_CASE("ranges the kernel will not copy are streamed through produce()") {
  // /proc files refuse O_DIRECT, and copy_file_range across file systems (as recent kernels do);
  // their tensors then come from produce(), between ranges that were copied.
  const fs::path proc = "/proc/version";
  test::TempDir dir;
  const int in = ::open(proc.c_str(), O_RDONLY | O_DIRECT);
  if (in >= 0) ::close(in);
  bool refused = in < 0;
  {
    const int from = ::open(proc.c_str(), O_RDONLY);
    const int to = ::open((dir / "probe").c_str(), O_WRONLY | O_CREAT, 0644);
    loff_t offset = 0;
    refused = refused && from >= 0 && to >= 0 &&
              ::copy_file_range(from, &offset, to, nullptr, 8, 0) < 0 &&
              (errno == EXDEV || errno == EINVAL);
    if (from >= 0) ::close(from);
    if (to >= 0) ::close(to);
  }
  if (!refused) {
    MESSAGE("the kernel copies from /proc here; skipped");
    return;
  }
  const auto version = test::read_file(proc);
  REQUIRE(version.size() >= 8);
  auto tensors = test::many_ranges(dir);
  for (const size_t at : {size_t{0}, size_t{100}, tensors.size()})
    tensors.insert(tensors.begin() + static_cast<std::ptrdiff_t>(at),
                   range_of(fmt::format("proc.{}", at), proc, version, 1, version.size() - 1));
  std::vector<std::vector<std::byte>> literals;
  const FileLayout layout = lay_out(dir / "out.bin", tensors, literals);
  check_written_in_both_modes(layout);
}

TEST_CASE("a range the source cannot supply is an IoError naming the source") {
  test::TempDir dir;
  const auto source = dir / "short.bin";
  const auto contents = test::counting_bytes(10000);
  test::write_file(source, contents);
  std::vector<TensorSource> tensors = {range_of("ok", source, contents, 0, 10000),
                                       range_of("past_the_end", source, contents, 5000, 5000)};
  tensors[1].file_range->offset = 9000;  // 4000 bytes past the end of the file
  const FileLayout layout{dir / "out.bin", 15000, {}, {{0, &tensors[0]}, {10000, &tensors[1]}}};
  for (const RangeCopy copy : kBothModes) {
    CAPTURE(static_cast<int>(copy));
    auto write = [&] { write_file_layout(layout, copy); };
    test::check_mentions(test::thrown_message<IoError>(write), {source.string(), "ended early"});
    const FileRange past_the_end = *tensors[1].file_range;
    tensors[1].file_range->path = dir / "missing.bin";
    test::check_mentions(test::thrown_message<IoError>(write),
                         {(dir / "missing.bin").string(), "cannot open"});
    tensors[1].file_range = past_the_end;
  }
}

TEST_CASE("an output that cannot be created or written is an IoError naming it") {
  test::TempDir dir;
  const std::vector<TensorSource> tensors = {
      TensorSource::from_bytes("t", DType::U8, {1 << 21}, test::counting_bytes(1 << 21))};
  FileLayout layout{dir / "missing" / "out.bin", 1 << 21, {}, {{0, &tensors[0]}}};
  for (const RangeCopy copy : kBothModes)
    test::check_mentions(test::thrown_message<IoError>([&] { write_file_layout(layout, copy); }),
                         {layout.path.string(), "cannot create"});
  layout.path = "/dev/full";  // every write fails with ENOSPC
  if (!fs::exists(layout.path)) {
    MESSAGE("no /dev/full here; skipped");
    return;
  }
  for (const RangeCopy copy : kBothModes)
    test::check_mentions(test::thrown_message<IoError>([&] { write_file_layout(layout, copy); }),
                         {"/dev/full", "No space left"});
}

TEST_CASE("a producer of the wrong byte count, or a layout past the file's end, is a logic_error") {
  test::TempDir dir;
  const auto path = dir / "out.bin";
  const TensorSource short_tensor =
      TensorSource::from_bytes("short", DType::U8, {8}, test::counting_bytes(7));
  test::check_mentions(test::thrown_message<std::logic_error>([&] {
                         write_file_layout({path, 8, {}, {{0, &short_tensor}}}, RangeCopy::kCached);
                       }),
                       {"tensor 'short'", "expected 8"});
  const TensorSource tensor =
      TensorSource::from_bytes("t", DType::U8, {8}, test::counting_bytes(8));
  test::check_mentions(test::thrown_message<std::logic_error>([&] {
                         write_file_layout({path, 8, {}, {{1, &tensor}}}, RangeCopy::kCached);
                       }),
                       {path.string(), "tensor 't'", "past"});
  const auto header = test::counting_bytes(4);
  test::check_mentions(
      test::thrown_message<std::logic_error>([&] {
        write_file_layout({path, 10, {{0, header}, {8, header}}, {}}, RangeCopy::kCached);
      }),
      {path.string(), "4 bytes at offset 8", "past"});
}

}  // namespace
}  // namespace moeslice
