// SafetensorsCheckpoint: config.json, single or sharded safetensors, and the index cross-check.
#include "format/safetensors/checkpoint.h"

#include <algorithm>

#include <fmt/core.h>

#include "common/error.h"
#include "common/io_rules.h"
#include "format/json_file.h"

namespace moeslice {
namespace fs = std::filesystem;
using nlohmann::json;

std::shared_ptr<const SafetensorsCheckpoint> SafetensorsCheckpoint::open(const fs::path& dir) {
  std::shared_ptr<SafetensorsCheckpoint> opened(new SafetensorsCheckpoint());
  SafetensorsCheckpoint& checkpoint = *opened;
  checkpoint.dir_ = dir;
  checkpoint.config_path_ = dir / kConfigFileName;
  if (!input_exists(dir))
    throw InputError(fmt::format("model directory {} does not exist", dir.string()));
  std::error_code error;
  if (!fs::is_directory(dir, error))
    throw InputError(
        fmt::format("{} is a file, not a directory: expected a model directory "
                    "holding {} and {} (or {})",
                    dir.string(), kConfigFileName, kSingleFileName, kIndexFileName));
  checkpoint.config_ = read_json_file(checkpoint.config_path_);
  if (!checkpoint.config_.is_object())
    throw FormatError(fmt::format("{}: expected a JSON object, found {}",
                                  checkpoint.config_path_.string(),
                                  checkpoint.config_.type_name()));

  const fs::path index_path = dir / kIndexFileName;
  const fs::path single_path = dir / kSingleFileName;
  if (input_exists(index_path)) {
    checkpoint.sharded_ = true;
    const json index = read_json_file(index_path);
    const auto weight_map = index.is_object() ? index.find("weight_map") : index.end();
    if (!index.is_object() || weight_map == index.end() || !weight_map->is_object())
      throw FormatError(
          fmt::format("{}: expected an object with a 'weight_map' object", index_path.string()));
    std::map<std::string, size_t> shard_numbers;
    for (const auto& [name, shard] : weight_map->items()) {
      if (!shard.is_string())
        throw FormatError(fmt::format("{}: weight_map entry '{}' must be a file name",
                                      index_path.string(), name));
      const std::string shard_name = shard.get<std::string>();
      // A plain file name only: no directory part, and not "." or ".." (which name directories).
      const fs::path shard_path(shard_name);
      if (shard_name.empty() || shard_path.has_parent_path() || shard_path == "." ||
          shard_path == "..")
        throw FormatError(
            fmt::format("{}: weight_map entry '{}' names '{}', expected a file "
                        "name inside the directory",
                        index_path.string(), name, shard_name));
      if (!shard_numbers.count(shard_name)) {
        if (!input_exists(dir / shard_name))
          throw InputError(fmt::format("{}: shard {} (holding '{}') is missing",
                                       index_path.string(), (dir / shard_name).string(), name));
        shard_numbers[shard_name] = checkpoint.shards_.size();
        checkpoint.shards_.push_back(SafetensorsFile::open(dir / shard_name));
      }
      const auto& file = *checkpoint.shards_[shard_numbers[shard_name]];
      const TensorView* view = file.find(name);
      if (view == nullptr)
        throw FormatError(
            fmt::format("{}: tensor '{}' is listed in {} but that shard does not "
                        "hold it",
                        index_path.string(), name, shard_name));
      checkpoint.tensors_[name] = view;
      checkpoint.shard_of_[name] = shard_numbers[shard_name];
    }
    // Every tensor of every shard must be in the index, so no tensor is found twice or lost.
    for (const auto& file : checkpoint.shards_)
      for (const auto& [name, view] : file->tensors()) {
        const auto listed = weight_map->find(name);
        if (listed == weight_map->end())
          throw FormatError(
              fmt::format("{}: shard {} holds tensor '{}', which the index does "
                          "not list",
                          index_path.string(), file->path().filename().string(), name));
        if (listed->get<std::string>() != file->path().filename().string())
          throw FormatError(fmt::format("{}: tensor '{}' is listed in {} but also found in {}",
                                        index_path.string(), name, listed->get<std::string>(),
                                        file->path().filename().string()));
      }
  } else if (input_exists(single_path)) {
    checkpoint.shards_.push_back(SafetensorsFile::open(single_path));
    for (const auto& [name, view] : checkpoint.shards_[0]->tensors()) {
      checkpoint.tensors_[name] = &view;
      checkpoint.shard_of_[name] = 0;
    }
  } else {
    throw InputError(
        fmt::format("{} holds neither {} nor {}", dir.string(), kSingleFileName, kIndexFileName));
  }
  return opened;
}

std::string_view SafetensorsCheckpoint::format_name() const { return "safetensors"; }

const SafetensorsFile& SafetensorsCheckpoint::file_of(const std::string& name) const {
  auto it = shard_of_.find(name);
  if (it == shard_of_.end())
    throw ModelError(fmt::format("tensor '{}' is missing from {}", name, dir_.string()));
  return *shards_[it->second];
}

std::vector<TensorFile> SafetensorsCheckpoint::tensor_files() const {
  std::vector<TensorFile> files;
  for (const auto& shard : shards_)
    files.push_back(
        {shard->path(), shard->mapped().size(), static_cast<int64_t>(shard->tensors().size())});
  return files;
}

std::vector<fs::path> SafetensorsCheckpoint::side_files() const {
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(dir_)) {
    if (!entry.is_regular_file()) continue;
    const std::string name = entry.path().filename().string();
    if (name == kConfigFileName || name == kIndexFileName ||
        entry.path().extension() == ".safetensors")
      continue;
    files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

std::optional<FileRange> SafetensorsCheckpoint::file_range(const TensorView& tensor) const {
  const auto it = shard_of_.find(tensor.name);
  if (it == shard_of_.end()) return std::nullopt;
  return mapped_file_range(shards_[it->second]->mapped(), tensor);
}

void SafetensorsCheckpoint::release_pages(const TensorView& tensor, uint64_t offset,
                                          uint64_t length) const {
  const auto it = shard_of_.find(tensor.name);
  if (it == shard_of_.end()) return;
  release_mapped_pages(shards_[it->second]->mapped(), tensor, offset, length);
}

void SafetensorsCheckpoint::check_unchanged() const {
  for (const auto& shard : shards_) shard->mapped().check_unchanged();
}

}  // namespace moeslice
