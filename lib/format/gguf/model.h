// A GGUF model through the TensorStore interface: one .gguf file, or the parts of a split model
// (NAME-00001-of-0000N.gguf ... with split.no / split.count / split.tensors.count) opened from the
// first part as one store. Tensors keep their GGUF names ("blk.0.ffn_gate_exps.weight") and ggml
// types (DTypes such as Q4_K); shapes are outermost first (ggml's ne reversed). The metadata of
// the first part (the only part gguf-split gives every key) is the model's, read through
// GgufMetadata's typed accessors.
//
// config(): a GGUF has no config.json. The store offers the metadata as a JSON object keyed by
// GGUF key (`{"general.architecture": "olmoe", "olmoe.expert_count": 64, ...}`), without arrays of
// more than kMaxGgufConfigArray elements (the vocabulary, merges, scores), so that messages and
// reports can show it; it is not a Hugging Face config (model/gguf_checkpoint.h translates one).
//
// Thread safety: immutable after open(); concurrent lookups are safe.
#pragma once

#include <cstddef>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "format/gguf/file.h"
#include "format/tensor_store.h"

namespace moeslice {

inline constexpr uint64_t kMaxGgufConfigArray = 1024;
// Split parts a model may have (split.count is a UINT16).
inline constexpr uint64_t kMaxGgufSplitParts = 65535;

// The name of part `index` (0-based) of `count` split parts: PREFIX-00001-of-00003.gguf.
std::filesystem::path gguf_split_path(const std::filesystem::path& prefix, uint64_t index,
                                      uint64_t count);
// For PREFIX-0000k-of-0000N.gguf: PREFIX, k - 1 and N; nullopt for any other name.
struct GgufSplitName {
  std::filesystem::path prefix;
  uint64_t index = 0;
  uint64_t count = 0;
};
std::optional<GgufSplitName> parse_gguf_split_path(const std::filesystem::path& path);

class GgufModel final : public TensorStore {
 public:
  // Opens `path` (a .gguf file, or the first part of a split model, whose other parts must lie
  // beside it): every part parsed and checked, split keys agreeing, no tensor twice. Throws
  // InputError/FormatError naming the file and the field.
  static std::shared_ptr<const GgufModel> open(const std::filesystem::path& path);

  std::string_view format_name() const override;
  const std::filesystem::path& path() const override { return path_; }
  const nlohmann::json& config() const override { return config_; }
  const std::filesystem::path& config_path() const override { return path_; }
  const std::map<std::string, const TensorView*>& tensors() const override { return tensors_; }
  std::vector<TensorFile> tensor_files() const override;
  std::vector<std::filesystem::path> side_files() const override { return {}; }
  std::vector<std::filesystem::path> input_paths() const override;
  std::optional<FileRange> file_range(const TensorView& tensor) const override;
  void release_pages(const TensorView& tensor, uint64_t offset, uint64_t length) const override;
  using TensorStore::release_pages;
  void check_unchanged() const override;

  // The model's metadata (the first part's).
  const GgufMetadata& metadata() const { return parts_.front()->metadata(); }
  // The parsed parts in order (one for an unsplit file).
  const std::vector<std::shared_ptr<const GgufFile>>& parts() const { return parts_; }
  // Tensor names in file order, part after part (the order a writer reproduces).
  const std::vector<std::string>& tensor_order() const { return order_; }
  // The ggml type id of a tensor of this store.
  uint32_t ggml_type_id(const std::string& name) const;

 private:
  GgufModel() = default;
  const GgufFile* part_of(const TensorView& tensor) const;

  std::filesystem::path path_;
  nlohmann::json config_;
  std::vector<std::shared_ptr<const GgufFile>> parts_;
  std::map<std::string, const TensorView*> tensors_;
  std::map<std::string, size_t> part_index_;
  std::map<std::string, uint32_t> type_ids_;
  std::vector<std::string> order_;
};

}  // namespace moeslice
