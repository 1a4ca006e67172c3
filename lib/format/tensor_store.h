// The reader interface every checkpoint format implements: a model's tensors by name (zero-copy
// views into mapped files), where each one's bytes lie on disk, the files read, and the model's
// configuration as a Hugging Face config.json object. Everything above lib/format reads
// checkpoints through this; format_registry.h opens one from a path.
//
// Thread safety: implementations are immutable after opening; concurrent calls are safe. Views
// stay valid as long as the store lives.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/mapped_file.h"
#include "format/tensor_view.h"

namespace moeslice {

// One file holding tensors (a shard, a split part).
struct TensorFile {
  std::filesystem::path path;
  uint64_t bytes = 0;   // the whole file
  int64_t tensors = 0;  // tensors it holds
};

class TensorStore {
 public:
  virtual ~TensorStore() = default;

  // The format's name in the registry ("safetensors").
  virtual std::string_view format_name() const = 0;
  // What was opened (a checkpoint directory, a model file): the path messages name.
  virtual const std::filesystem::path& path() const = 0;
  // The model's configuration as a Hugging Face config.json object (a format that stores it
  // otherwise translates it), and the file messages about it name.
  virtual const nlohmann::json& config() const = 0;
  virtual const std::filesystem::path& config_path() const = 0;
  // Every tensor, sorted by name.
  virtual const std::map<std::string, const TensorView*>& tensors() const = 0;
  // The files holding the tensors, in the format's order (inspect lists them).
  virtual std::vector<TensorFile> tensor_files() const = 0;
  // Files beside the tensors that a derived checkpoint carries over unchanged (tokenizer files,
  // generation_config.json, a README), sorted; empty for a format that keeps everything in one
  // file. Never the config, an index or a tensor file.
  virtual std::vector<std::filesystem::path> side_files() const = 0;
  // Every path this store reads from: an output must be neither inside nor around any of them
  // (check_output_outside_inputs).
  virtual std::vector<std::filesystem::path> input_paths() const = 0;
  // Where the bytes of `tensor` (one of this store's) lie in a file, for copies from disk to disk;
  // nullopt when they are not stored as is in a file of this store.
  virtual std::optional<FileRange> file_range(const TensorView& tensor) const = 0;
  // Drops this process's mapped pages of bytes [offset, offset + length) of `tensor` (one of this
  // store's); they stay in the page cache. Code that walks a huge model tensor by tensor keeps its
  // memory bounded.
  virtual void release_pages(const TensorView& tensor, uint64_t offset, uint64_t length) const = 0;
  void release_pages(const TensorView& tensor) const {
    release_pages(tensor, 0, tensor.bytes.size());
  }
  // Throws InputError naming the file and what changed when a file holding tensors is no longer
  // as it was at opening (another size, modification time or inode: rewritten or replaced during
  // the run). Commands call it after computing and before committing their output, so a result
  // mixing two versions of a model is never written.
  virtual void check_unchanged() const = 0;

  const TensorView* find(const std::string& name) const;
  // Throws ModelError "tensor 'x' is missing from <path>" when absent.
  const TensorView& tensor(const std::string& name) const;
  // The sum of every tensor's bytes.
  uint64_t total_tensor_bytes() const;
};

// For formats whose tensors are views into MappedFiles: where `tensor` (a view into `file`) lies in
// it, and dropping this process's pages of bytes [offset, offset + length) of it.
FileRange mapped_file_range(const MappedFile& file, const TensorView& tensor);
void release_mapped_pages(const MappedFile& file, const TensorView& tensor, uint64_t offset,
                          uint64_t length);

}  // namespace moeslice
