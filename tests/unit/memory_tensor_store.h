// A TensorStore held in memory, for tests that plan or stream a checkpoint without files: tensors
// with distinct counting bytes, laid out in a given order across named (never created) files, so
// that each tensor has a file range; and the tensors make-random would write for a spec, in the
// order it writes them.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "format/tensor_store.h"
#include "model/model_spec.h"
#include "test_util.h"

namespace moeslice::test {

struct MemoryTensor {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
};

class MemoryTensorStore final : public TensorStore {
 public:
  // `tensors` in file order: the first `per_file` in dir/file_names[0], the next in file_names[1],
  // ... (the last file takes the rest); each tensor's bytes count up from its position.
  MemoryTensorStore(fs::path dir, nlohmann::json config, const std::vector<MemoryTensor>& tensors,
                    std::vector<std::string> file_names = {"part-0.bin"}, size_t per_file = 0)
      : dir_(std::move(dir)), config_path_(dir_ / "config.json"), config_(std::move(config)) {
    for (size_t i = 0; i < tensors.size(); ++i) {
      const MemoryTensor& tensor = tensors[i];
      const size_t file = per_file == 0 ? 0 : std::min(i / per_file, file_names.size() - 1);
      if (files_.size() <= file) files_.push_back({dir_ / file_names[file], 0, 0});
      const uint64_t size = tensor_byte_size(tensor.dtype, tensor.shape).value();
      auto& bytes = bytes_.emplace_back(
          std::make_unique<std::vector<std::byte>>(counting_bytes(size, static_cast<unsigned>(i))));
      auto& view = views_.emplace_back(std::make_unique<TensorView>());
      *view = {tensor.name, tensor.dtype, tensor.shape, std::span<const std::byte>(*bytes)};
      tensors_[tensor.name] = view.get();
      ranges_[tensor.name] = {files_[file].path, files_[file].bytes, size};
      files_[file].bytes += size;
      ++files_[file].tensors;
    }
  }

  std::string_view format_name() const override { return "memory"; }
  const fs::path& path() const override { return dir_; }
  const nlohmann::json& config() const override { return config_; }
  const fs::path& config_path() const override { return config_path_; }
  const std::map<std::string, const TensorView*>& tensors() const override { return tensors_; }
  std::vector<TensorFile> tensor_files() const override { return files_; }
  std::vector<fs::path> side_files() const override { return {}; }
  std::vector<fs::path> input_paths() const override { return {dir_}; }
  std::optional<FileRange> file_range(const TensorView& tensor) const override {
    return ranges_.at(tensor.name);
  }
  void release_pages(const TensorView&, uint64_t, uint64_t) const override {}
  using TensorStore::release_pages;
  void check_unchanged() const override {}  // nothing on disk to change

 private:
  fs::path dir_, config_path_;
  nlohmann::json config_;
  std::vector<std::unique_ptr<std::vector<std::byte>>> bytes_;
  std::vector<std::unique_ptr<TensorView>> views_;
  std::map<std::string, const TensorView*> tensors_;
  std::map<std::string, FileRange> ranges_;
  std::vector<TensorFile> files_;
};

// The tensors make-random writes for `spec`, in its order: the model's, then each layer's own and
// its experts', then fused experts in their plain form.
inline std::vector<MemoryTensor> random_checkpoint_tensors(const ModelSpec& spec,
                                                           DType dtype = DType::F32) {
  std::vector<MemoryTensor> tensors;
  for (const ResolvedTensor* tensor : spec.fresh_tensors())
    tensors.push_back({tensor->name, dtype, tensor->shape});
  return tensors;
}

}  // namespace moeslice::test
