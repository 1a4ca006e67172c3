// A Hugging Face checkpoint directory: config.json plus either model.safetensors or shards listed
// in model.safetensors.index.json, read through the TensorStore interface. Tensors are looked up
// by name across shards; nothing is copied.
//
// Thread safety: immutable after open(); concurrent lookups are safe.
#pragma once

#include <cstddef>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "format/safetensors/file.h"
#include "format/tensor_store.h"

namespace moeslice {

inline constexpr const char* kSingleFileName = "model.safetensors";
inline constexpr const char* kIndexFileName = "model.safetensors.index.json";
inline constexpr const char* kConfigFileName = "config.json";

class SafetensorsCheckpoint final : public TensorStore {
 public:
  // Opens `dir`: reads config.json, maps the safetensors file(s) and checks the index against
  // the shards (every listed shard exists, every tensor is found exactly once, in the shard the
  // index names). Throws InputError/FormatError naming the file.
  static std::shared_ptr<const SafetensorsCheckpoint> open(const std::filesystem::path& dir);

  std::string_view format_name() const override;
  const std::filesystem::path& path() const override { return dir_; }
  const nlohmann::json& config() const override { return config_; }
  const std::filesystem::path& config_path() const override { return config_path_; }
  const std::map<std::string, const TensorView*>& tensors() const override { return tensors_; }
  std::vector<TensorFile> tensor_files() const override;
  std::vector<std::filesystem::path> side_files() const override;
  // The directory: everything read lies inside it.
  std::vector<std::filesystem::path> input_paths() const override { return {dir_}; }
  std::optional<FileRange> file_range(const TensorView& tensor) const override;
  void release_pages(const TensorView& tensor, uint64_t offset, uint64_t length) const override;
  using TensorStore::release_pages;
  void check_unchanged() const override;

  bool sharded() const { return sharded_; }
  const std::vector<std::shared_ptr<const SafetensorsFile>>& shards() const { return shards_; }
  // The file that holds a tensor; ModelError naming the tensor when absent.
  const SafetensorsFile& file_of(const std::string& name) const;

 private:
  SafetensorsCheckpoint() = default;

  std::filesystem::path dir_;
  std::filesystem::path config_path_;
  nlohmann::json config_;
  bool sharded_ = false;
  std::vector<std::shared_ptr<const SafetensorsFile>> shards_;
  std::map<std::string, const TensorView*> tensors_;
  std::map<std::string, size_t> shard_of_;
};

}  // namespace moeslice
