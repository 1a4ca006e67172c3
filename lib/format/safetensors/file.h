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
#include <string>
#include <vector>

#include "common/mapped_file.h"
#include "format/tensor_view.h"

namespace moeslice {

inline constexpr uint64_t kMaxSafetensorsHeaderBytes = 100'000'000;

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

}  // namespace moeslice
