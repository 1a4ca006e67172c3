// A Hugging Face checkpoint directory: config.json plus either model.safetensors or shards listed
// in model.safetensors.index.json. Tensors are looked up by name across shards; nothing is copied.
//
// Thread safety: immutable after open(); concurrent lookups are safe.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "format/safetensors.h"

namespace moeslice {

inline constexpr const char* kSingleFileName = "model.safetensors";
inline constexpr const char* kIndexFileName = "model.safetensors.index.json";
inline constexpr const char* kConfigFileName = "config.json";

// Reads a JSON file; FormatError naming the file when it is missing, unreadable or not JSON.
nlohmann::json read_json_file(const std::filesystem::path& path);

class Checkpoint {
 public:
  // Opens `dir`: reads config.json, maps the safetensors file(s) and checks the index against
  // the shards (every listed shard exists, every tensor is found exactly once, in the shard the
  // index names). Throws InputError/FormatError naming the file.
  static Checkpoint open(const std::filesystem::path& dir);

  const std::filesystem::path& dir() const { return dir_; }
  const nlohmann::json& config() const { return config_; }
  bool sharded() const { return sharded_; }
  const std::vector<std::shared_ptr<const SafetensorsFile>>& shards() const { return shards_; }

  const TensorView* find(const std::string& name) const;
  // Throws ModelError "tensor 'x' is missing from <dir>" when absent.
  const TensorView& tensor(const std::string& name) const;
  // Every tensor, sorted by name.
  const std::map<std::string, const TensorView*>& tensors() const { return tensors_; }
  // The file that holds a tensor (for messages and for copying).
  const SafetensorsFile& file_of(const std::string& name) const;
  uint64_t total_tensor_bytes() const;

 private:
  std::filesystem::path dir_;
  nlohmann::json config_;
  bool sharded_ = false;
  std::vector<std::shared_ptr<const SafetensorsFile>> shards_;
  std::map<std::string, const TensorView*> tensors_;
  std::map<std::string, size_t> shard_of_;
};

}  // namespace moeslice
