// A tensor to write, in any format: its name, dtype and shape, a producer that streams its bytes,
// and, when the bytes are a range of an existing file, that range (so a writer can copy them disk
// to disk). Writers take these; readers' views turn into them with copy_of().
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/dtype.h"
#include "format/tensor_view.h"

namespace moeslice {

class TensorStore;

// Receives a tensor's bytes, in order, in any number of calls.
using ByteSink = std::function<void(std::span<const std::byte>)>;

struct TensorSource {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  // Emits exactly byte_size() bytes into the sink; called once per write.
  std::function<void(const ByteSink&)> produce;
  // When set, the same bytes as produce() emits, as a range of a file; a file writer copies it
  // (on several threads) and falls back to produce() where the kernel cannot.
  std::optional<FileRange> file_range;
  // Else, when not empty, the same bytes as these file ranges one after another (the kept rows of
  // a stacked expert tensor), copied as file_range is.
  std::vector<FileRange> file_ranges = {};

  // Throws InputError naming the tensor when the size overflows.
  uint64_t byte_size() const;
  // Streams the bytes into `sink`; throws std::logic_error when the producer emits the wrong byte
  // count (the bytes past the expected count are not passed on).
  void produce_checked(const ByteSink& sink) const;

  // Copies a mapped tensor byte for byte (optionally under a new name), through produce() only.
  static TensorSource copy_of(const TensorView& view, std::string new_name = {});
  // The same for a tensor of `store`, with its file range, so that a file writer copies it disk
  // to disk; produce() releases the source's pages after copying, so that reading a huge
  // checkpoint does not fill memory.
  static TensorSource copy_of(const TensorStore& store, const TensorView& view,
                              std::string new_name = {});
  // Owns its bytes.
  static TensorSource from_bytes(std::string name, DType dtype, std::vector<int64_t> shape,
                                 std::vector<std::byte> bytes);
  // fp32 values stored as `dtype` (F32, F16 or BF16).
  static TensorSource from_floats(std::string name, DType dtype, std::vector<int64_t> shape,
                                  std::vector<float> values);
};

}  // namespace moeslice
