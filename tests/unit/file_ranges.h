// File ranges for the writer tests: U8 tensors that are byte ranges of source files (with the same
// bytes from produce()), and a mix of ~300 of them that exercises every way the range-copy engine
// groups, cuts and aligns its copies.
#pragma once

#include <cstdint>
#include <filesystem>
#include <iterator>
#include <random>
#include <span>
#include <string>
#include <vector>

#include <fmt/core.h>

#include "format/tensor_source.h"
#include "test_util.h"

namespace moeslice::test {

// A U8 tensor that is bytes [offset, offset + length) of `file` (whose contents are `contents`):
// a file range for the writer to copy, and the same bytes from produce().
inline TensorSource range_of(std::string name, const fs::path& file,
                             std::span<const std::byte> contents, uint64_t offset,
                             uint64_t length) {
  const auto bytes = contents.subspan(offset, length);
  TensorSource source = TensorSource::from_bytes(
      std::move(name), DType::U8, {static_cast<int64_t>(length)}, {bytes.begin(), bytes.end()});
  source.file_range = FileRange{file, offset, length};
  return source;
}

// Three source files in `dir` and ~300 tensors drawn from them: ranges of every small size (empty
// ones too) at every alignment, runs of neighbours in a file (copied as one), a run longer than
// the writer's copy pieces, and produce()-only tensors in between.
inline std::vector<TensorSource> many_ranges(const TempDir& dir) {
  std::mt19937 random(7);
  std::vector<fs::path> files;
  std::vector<std::vector<std::byte>> contents;
  for (size_t f = 0; f < 3; ++f) {
    std::vector<std::byte> bytes(f == 0 ? (20u << 20) + 5 : (1u << 20) + 12345 * f);
    for (auto& byte : bytes) byte = static_cast<std::byte>(random());
    files.push_back(dir / fmt::format("source{}.bin", f));
    write_file(files.back(), bytes);
    contents.push_back(std::move(bytes));
  }
  std::vector<TensorSource> tensors;
  size_t previous_file = 0;
  uint64_t previous_end = 0;
  for (size_t i = 0; i < 300; ++i) {
    const std::string name = fmt::format("t{}", i);
    if (i == 150) {  // 17 MB in three neighbouring tensors, from an unaligned offset
      uint64_t offset = 12345;
      for (const uint64_t length : {(5u << 20) + 3, (7u << 20) + 1, (5u << 20) + 77}) {
        tensors.push_back(
            range_of(fmt::format("{}.{}", name, length), files[0], contents[0], offset, length));
        offset += length;
      }
      previous_file = 0;
      previous_end = offset;
      continue;
    }
    if (random() % 5 == 0) {
      tensors.push_back(
          TensorSource::from_bytes(name, DType::U8, {static_cast<int64_t>(i * 37 % 9001)},
                                   counting_bytes(i * 37 % 9001, static_cast<unsigned>(i))));
      continue;
    }
    const size_t f = random() % 2 == 0 ? previous_file : random() % 3;
    const uint64_t sizes[] = {0, 1, 7, 4095, 4096, 4097, 8192, random() % 40000};
    const uint64_t length = sizes[random() % std::size(sizes)];
    const uint64_t size = contents[f].size();
    const bool follow = f == previous_file && random() % 2 == 0 && previous_end + length <= size;
    const uint64_t offset = follow ? previous_end : random() % (size - length);
    tensors.push_back(range_of(name, files[f], contents[f], offset, length));
    previous_file = f;
    previous_end = offset + length;
  }
  return tensors;
}

}  // namespace moeslice::test
