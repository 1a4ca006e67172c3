// Reading one GGUF file (versions 2 and 3): a memory mapping, its metadata and a validated table
// of tensor views. The parser is bounded and strict like the safetensors one: every count, length
// and offset is checked against the bytes left and against named limits before anything is
// allocated; every tensor's size follows from its ggml type and dimensions with overflow checks;
// offsets are multiples of `general.alignment` (a power of two, default 32), inside the file and
// not overlapping. Every failure is a FormatError naming the file and the field.
//
// Thread safety: immutable after open(); views stay valid as long as the GgufFile lives.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/mapped_file.h"
#include "format/gguf/metadata.h"
#include "format/tensor_view.h"

namespace moeslice {

inline constexpr uint32_t kGgufMagic = 0x46554747;  // "GGUF" little-endian
inline constexpr uint32_t kGgufDefaultAlignment = 32;
// Limits beyond any real model, so that a corrupt count fails with a message, not an allocation.
inline constexpr uint64_t kMaxGgufTensors = 1u << 20;
inline constexpr uint64_t kMaxGgufMetadataKeys = 1u << 16;
inline constexpr uint64_t kMaxGgufKeyBytes = 1u << 16;
inline constexpr uint64_t kMaxGgufStringBytes = 256u << 20;  // a chat template, a tokenizer JSON
inline constexpr uint64_t kMaxGgufArrayElements = 1u << 26;  // vocabularies are ~2^18
inline constexpr int kMaxGgufArrayDepth = 8;                 // an array of arrays of ... arrays
inline constexpr uint64_t kMaxGgufNestedArrays = 1u << 16;   // inner arrays in a whole file
inline constexpr uint32_t kMaxGgufDims = 4;                  // GGML_MAX_DIMS
inline constexpr uint64_t kMaxGgufTensorNameBytes = 63;      // GGML_MAX_NAME - 1 (llama.cpp)

// One tensor info as the file holds it (dimensions in ggml order, ne0 fastest).
struct GgufTensorInfo {
  std::string name;
  uint32_t ggml_type = 0;
  std::vector<uint64_t> ne;
  uint64_t offset = 0;  // relative to the data section
  uint64_t bytes = 0;
};

class GgufFile {
 public:
  // Maps and validates `path`; throws FormatError naming the file and the broken rule.
  static std::shared_ptr<const GgufFile> open(const std::filesystem::path& path);

  const std::filesystem::path& path() const { return file_.path(); }
  uint32_t version() const { return version_; }
  const GgufMetadata& metadata() const { return metadata_; }
  uint32_t alignment() const { return alignment_; }
  // Offset of the data section in the file.
  uint64_t data_start() const { return data_start_; }
  // Tensor infos in file order.
  const std::vector<GgufTensorInfo>& tensor_infos() const { return infos_; }
  // Views by name (shape outermost first, the reverse of ggml's ne).
  const std::map<std::string, TensorView>& tensors() const { return tensors_; }
  const MappedFile& mapped() const { return file_; }

 private:
  explicit GgufFile(MappedFile file) : file_(std::move(file)), metadata_(file_.path()) {}
  void parse();

  MappedFile file_;
  uint32_t version_ = 0;
  GgufMetadata metadata_;
  uint32_t alignment_ = kGgufDefaultAlignment;
  uint64_t data_start_ = 0;
  std::vector<GgufTensorInfo> infos_;
  std::map<std::string, TensorView> tensors_;
};

}  // namespace moeslice
