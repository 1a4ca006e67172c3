// GgufModel: one GGUF file or the parts of a split model as one TensorStore.
#include "format/gguf/model.h"

#include <charconv>
#include <optional>

#include <fmt/core.h>

#include "common/error.h"
#include "common/excerpt.h"

namespace moeslice {
namespace fs = std::filesystem;
namespace {

constexpr std::string_view kSplitNo = "split.no";
constexpr std::string_view kSplitCount = "split.count";
constexpr std::string_view kSplitTensors = "split.tensors.count";

[[noreturn]] void fail(const fs::path& path, const std::string& what) {
  throw FormatError(fmt::format("{}: invalid GGUF file: {}", path.string(), what));
}

// Five (or more) decimal digits, as gguf-split writes them.
std::optional<uint64_t> split_number(std::string_view digits) {
  if (digits.size() < 5) return std::nullopt;
  uint64_t value = 0;
  const auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (error != std::errc() || end != digits.data() + digits.size()) return std::nullopt;
  return value;
}

// The split keys of one part: split.count (1 when absent), split.no, split.tensors.count.
struct SplitKeys {
  uint64_t count = 1;
  std::optional<uint64_t> no, tensors;
};

SplitKeys split_keys(const GgufFile& file) {
  const GgufMetadata& metadata = file.metadata();
  SplitKeys keys;
  keys.count = metadata.get_uint(kSplitCount).value_or(1);
  keys.no = metadata.get_uint(kSplitNo);
  keys.tensors = metadata.get_uint(kSplitTensors);
  if (keys.count == 0 || keys.count > kMaxGgufSplitParts)
    fail(file.path(), fmt::format("metadata key '{}' is {}, expected 1 to {}", kSplitCount,
                                  keys.count, kMaxGgufSplitParts));
  return keys;
}

}  // namespace

fs::path gguf_split_path(const fs::path& prefix, uint64_t index, uint64_t count) {
  return fs::path(fmt::format("{}-{:05d}-of-{:05d}.gguf", prefix.string(), index + 1, count));
}

std::optional<GgufSplitName> parse_gguf_split_path(const fs::path& path) {
  const std::string name = path.filename().string();
  constexpr std::string_view kSuffix = ".gguf";
  if (!name.ends_with(kSuffix)) return std::nullopt;
  const std::string_view stem(name.data(), name.size() - kSuffix.size());
  const size_t of = stem.rfind("-of-");
  if (of == std::string_view::npos) return std::nullopt;
  const size_t dash = stem.rfind('-', of == 0 ? 0 : of - 1);
  if (dash == std::string_view::npos || dash == 0 || of == 0) return std::nullopt;
  const auto index = split_number(stem.substr(dash + 1, of - dash - 1));
  const auto count = split_number(stem.substr(of + 4));
  if (!index || !count || *index == 0 || *index > *count) return std::nullopt;
  return GgufSplitName{path.parent_path() / std::string(stem.substr(0, dash)), *index - 1, *count};
}

std::shared_ptr<const GgufModel> GgufModel::open(const fs::path& path) {
  std::shared_ptr<GgufModel> opened(new GgufModel());
  GgufModel& model = *opened;
  model.path_ = path;
  std::error_code error;
  if (!fs::exists(path, error))
    throw InputError(fmt::format("model file {} does not exist", path.string()));
  model.parts_.push_back(GgufFile::open(path));
  const GgufFile& first = *model.parts_.front();
  const SplitKeys keys = split_keys(first);
  const auto name = parse_gguf_split_path(path);
  if (keys.count == 1) {
    if (keys.no.value_or(0) != 0)
      fail(path,
           fmt::format("metadata key '{}' is {}, but '{}' is 1", kSplitNo, *keys.no, kSplitCount));
  } else {
    if (keys.no.value_or(0) != 0) {
      const std::string first_part =
          name ? gguf_split_path(name->prefix, 0, keys.count).string() : "its first part";
      throw InputError(
          fmt::format("{} is part {} of {} of a split model ({} {}); open the first "
                      "part, {}",
                      path.string(), *keys.no + 1, keys.count, kSplitNo, *keys.no, first_part));
    }
    if (!name || name->count != keys.count || name->index != 0)
      fail(path, fmt::format("metadata key '{}' is {}, but the file is not named "
                             "PREFIX-00001-of-{:05d}.gguf, so its other parts cannot be found",
                             kSplitCount, keys.count, keys.count));
    if (!keys.tensors)
      fail(path, fmt::format("metadata key '{}' is {}, but '{}' is missing", kSplitCount,
                             keys.count, kSplitTensors));
    for (uint64_t index = 1; index < keys.count; ++index) {
      const fs::path part_path = gguf_split_path(name->prefix, index, keys.count);
      if (!fs::exists(part_path, error))
        throw InputError(fmt::format("{}: split part {} of {}, {}, is missing", path.string(),
                                     index + 1, keys.count, part_path.string()));
      model.parts_.push_back(GgufFile::open(part_path));
      const SplitKeys part = split_keys(*model.parts_.back());
      if (part.count != keys.count || part.no != index || part.tensors != keys.tensors)
        fail(part_path,
             fmt::format("split keys say part {} of {} with {} tensors in all, expected part {} "
                         "of {} with {} (as in {})",
                         part.no ? std::to_string(*part.no + 1) : std::string("(no split.no)"),
                         part.count,
                         part.tensors ? std::to_string(*part.tensors) : std::string("(none)"),
                         index + 1, keys.count, *keys.tensors, path.filename().string()));
    }
  }

  for (size_t index = 0; index < model.parts_.size(); ++index) {
    const GgufFile& part = *model.parts_[index];
    for (const GgufTensorInfo& info : part.tensor_infos()) {
      const auto [it, inserted] = model.part_index_.emplace(info.name, index);
      if (!inserted)
        fail(part.path(), fmt::format("tensor '{}' is also in {}", excerpt(info.name),
                                      model.parts_[it->second]->path().string()));
      model.tensors_[info.name] = &part.tensors().at(info.name);
      model.type_ids_[info.name] = info.ggml_type;
      model.order_.push_back(info.name);
    }
  }
  if (keys.count > 1 && model.order_.size() != *keys.tensors)
    fail(path, fmt::format("metadata key '{}' is {}, but the {} parts hold {} tensors",
                           kSplitTensors, *keys.tensors, keys.count, model.order_.size()));

  model.config_ = nlohmann::json::object();
  for (const auto& [key, value] : first.metadata().entries())
    if (value.type() != GgufType::kArray || value.size() <= kMaxGgufConfigArray)
      model.config_[key] = value.to_json();
  return opened;
}

std::string_view GgufModel::format_name() const { return "gguf"; }

std::vector<TensorFile> GgufModel::tensor_files() const {
  std::vector<TensorFile> files;
  for (const auto& part : parts_)
    files.push_back(
        {part->path(), part->mapped().size(), static_cast<int64_t>(part->tensor_infos().size())});
  return files;
}

std::vector<fs::path> GgufModel::input_paths() const {
  std::vector<fs::path> paths;
  for (const auto& part : parts_) paths.push_back(part->path());
  return paths;
}

const GgufFile* GgufModel::part_of(const TensorView& tensor) const {
  const auto it = part_index_.find(tensor.name);
  if (it == part_index_.end()) return nullptr;
  return parts_[it->second].get();
}

void GgufModel::check_unchanged() const {
  for (const auto& part : parts_) part->mapped().check_unchanged();
}

std::optional<FileRange> GgufModel::file_range(const TensorView& tensor) const {
  const GgufFile* part = part_of(tensor);
  if (part == nullptr) return std::nullopt;
  return mapped_file_range(part->mapped(), tensor);
}

void GgufModel::release_pages(const TensorView& tensor, uint64_t offset, uint64_t length) const {
  const GgufFile* part = part_of(tensor);
  if (part == nullptr) return;
  release_mapped_pages(part->mapped(), tensor, offset, length);
}

uint32_t GgufModel::ggml_type_id(const std::string& name) const {
  const auto it = type_ids_.find(name);
  if (it == type_ids_.end())
    throw ModelError(fmt::format("tensor '{}' is missing from {}", name, path_.string()));
  return it->second;
}

}  // namespace moeslice
