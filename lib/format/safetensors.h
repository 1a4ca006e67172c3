// Reading one safetensors file: a memory mapping plus a validated table of tensor views.
//
// The header is checked exactly as strictly as the reference implementation: header length
// within the file and <= 100,000,000; UTF-8 JSON object; `__metadata__` a string-to-string map;
// every tensor with a known dtype, a shape and `data_offsets`; element count x dtype size (checked
// for overflow) equal to the byte range; tensors tiling the data buffer exactly; unique names.
//
// Thread safety: immutable after open(); views stay valid as long as the SafetensorsFile lives.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "common/dtype.h"
#include "common/mapped_file.h"

namespace moeslice {

inline constexpr uint64_t kMaxSafetensorsHeaderBytes = 100'000'000;

// A tensor inside a mapped file: dtype, shape and its bytes. No data is copied.
struct TensorView {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  std::span<const std::byte> bytes;

  int64_t numel() const;
  int64_t dim(size_t axis) const { return shape.at(axis); }
  // "[64, 2048]"
  std::string shape_string() const;
};

class SafetensorsFile {
 public:
  // Maps and validates `path`; throws FormatError naming the file and the broken rule.
  static std::shared_ptr<const SafetensorsFile> open(const std::filesystem::path& path);

  const std::filesystem::path& path() const { return file_.path(); }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  // Tensors by name (sorted).
  const std::map<std::string, TensorView>& tensors() const { return tensors_; }
  const TensorView* find(const std::string& name) const;
  // Offset of the data buffer in the file (8 + header length).
  uint64_t data_start() const { return data_start_; }
  const MappedFile& mapped() const { return file_; }

 private:
  explicit SafetensorsFile(MappedFile file) : file_(std::move(file)) {}
  void parse();

  MappedFile file_;
  uint64_t data_start_ = 0;
  std::map<std::string, std::string> metadata_;
  std::map<std::string, TensorView> tensors_;
};

// "[64, 2048]" for any shape vector.
std::string format_shape(std::span<const int64_t> shape);

// Byte size of a tensor of `shape` and `dtype`; nullopt on overflow or when the bit count is not a
// whole number of bytes.
std::optional<uint64_t> tensor_byte_size(DType dtype, std::span<const int64_t> shape);

}  // namespace moeslice
