// GGUF layout (header, infos, aligned offsets), single-file and split writing.
#include "format/gguf/writer.h"

#include <memory>
#include <set>

#include <fmt/core.h>

#include "common/atomic_output.h"
#include "common/error.h"
#include "common/excerpt.h"
#include "common/ggml_type.h"
#include "format/gguf/file.h"
#include "format/gguf/model.h"

namespace moeslice {
namespace fs = std::filesystem;
namespace {

void store_le(std::string& out, uint64_t value, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>(value >> (8 * i) & 0xff));
}

uint64_t padded(uint64_t size, uint64_t alignment) {
  return (size + alignment - 1) / alignment * alignment;
}

uint32_t output_alignment(const GgufMetadata& metadata) {
  const GgufValue* value = metadata.find("general.alignment");
  if (value == nullptr) return kGgufDefaultAlignment;
  const auto alignment = value->as_uint();
  if (value->type() != GgufType::kU32 || *alignment == 0 || (*alignment & (*alignment - 1)) != 0)
    throw InputError(
        fmt::format("metadata key 'general.alignment' holds {}, expected a UINT32 "
                    "power of two",
                    value->describe()));
  return static_cast<uint32_t>(*alignment);
}

uint32_t ggml_id_of(const TensorSource& tensor) {
  const auto type = ggml_type_of(tensor.dtype);
  if (!type)
    throw InputError(fmt::format("tensor '{}' is {}, which GGUF files cannot hold", tensor.name,
                                 dtype_name(tensor.dtype)));
  return type->id;
}

// Greedy packing in the given order, as the safetensors shards: [begin, end) of each part.
std::vector<std::pair<size_t, size_t>> pack_parts(std::span<const TensorSource> tensors,
                                                  std::optional<uint64_t> max_part_bytes) {
  std::vector<std::pair<size_t, size_t>> parts;
  uint64_t current = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const uint64_t size = tensors[i].byte_size();
    if (parts.empty() || (max_part_bytes && current > 0 && current + size > *max_part_bytes)) {
      parts.push_back({i, i});
      current = 0;
    }
    parts.back().second = i + 1;
    current += size;
  }
  if (parts.empty()) parts.push_back({0, 0});
  return parts;
}

}  // namespace

GgufLayout gguf_layout(const GgufMetadata& metadata, std::span<const TensorSource> tensors) {
  GgufLayout layout;
  layout.alignment = output_alignment(metadata);
  std::string& header = layout.header;
  store_le(header, kGgufMagic, 4);
  store_le(header, 3, 4);
  store_le(header, tensors.size(), 8);
  store_le(header, metadata.size(), 8);
  for (const auto& [key, value] : metadata.entries()) {
    store_le(header, key.size(), 8);
    header += key;
    store_le(header, static_cast<uint32_t>(value.type()), 4);
    value.encode(header);
  }
  std::set<std::string_view> names;
  uint64_t offset = 0;
  for (const TensorSource& tensor : tensors) {
    if (!names.insert(tensor.name).second)
      throw InputError(
          fmt::format("tensor '{}' appears twice among the tensors to write", tensor.name));
    if (tensor.name.size() > kMaxGgufTensorNameBytes)
      throw InputError(
          fmt::format("tensor name '{}' is {} bytes long, more than GGUF's limit of "
                      "{}",
                      excerpt(tensor.name), tensor.name.size(), kMaxGgufTensorNameBytes));
    if (tensor.shape.size() > kMaxGgufDims)
      throw InputError(fmt::format("tensor '{}' has {} dimensions, more than GGUF's {}",
                                   tensor.name, tensor.shape.size(), kMaxGgufDims));
    const uint32_t type = ggml_id_of(tensor);
    const uint64_t size = tensor.byte_size();
    store_le(header, tensor.name.size(), 8);
    header += tensor.name;
    store_le(header, tensor.shape.size(), 4);
    for (auto it = tensor.shape.rbegin(); it != tensor.shape.rend(); ++it)
      store_le(header, static_cast<uint64_t>(*it), 8);
    store_le(header, type, 4);
    store_le(header, offset, 8);
    layout.offsets.push_back(offset);
    offset += padded(size, layout.alignment);
  }
  header.resize(padded(header.size(), layout.alignment), '\0');
  layout.size = header.size() + offset;
  return layout;
}

void write_gguf_file(const fs::path& path, const GgufMetadata& metadata,
                     std::span<const TensorSource> tensors, RangeCopy copy) {
  const GgufLayout layout = gguf_layout(metadata, tensors);
  const std::vector<std::byte> zeros(layout.alignment);
  FileLayout file{path, layout.size, {{0, std::as_bytes(std::span(layout.header))}}, {}};
  for (size_t i = 0; i < tensors.size(); ++i) {
    const uint64_t at = layout.header.size() + layout.offsets[i];
    const uint64_t size = tensors[i].byte_size();
    file.tensors.push_back({at, &tensors[i]});
    if (const uint64_t padding = padded(size, layout.alignment) - size; padding > 0)
      file.literals.push_back({at + size, std::span(zeros).first(padding)});
  }
  write_file_layout(file, copy);
}

std::vector<fs::path> write_gguf_model(const fs::path& path, const GgufMetadata& metadata,
                                       std::span<const TensorSource> tensors,
                                       const GgufWriteOptions& options) {
  const auto parts = pack_parts(tensors, options.max_part_bytes);
  const uint64_t count = parts.size();
  if (count > kMaxGgufSplitParts)
    throw InputError(fmt::format("{} split parts would be needed, more than GGUF's {}", count,
                                 kMaxGgufSplitParts));
  if (count > 1 && tensors.size() > static_cast<uint64_t>(INT32_MAX))
    throw InputError("too many tensors for split.tensors.count (an INT32)");
  fs::path prefix = path;
  if (prefix.extension() == ".gguf") prefix.replace_extension();

  std::vector<std::unique_ptr<AtomicOutputFile>> outputs;
  std::vector<fs::path> written;
  for (uint64_t index = 0; index < count; ++index) {
    const fs::path part_path = count == 1 ? path : gguf_split_path(prefix, index, count);
    GgufMetadata part_metadata(part_path);
    if (index == 0) part_metadata = metadata;
    for (const std::string_view key : {"split.no", "split.count", "split.tensors.count"})
      part_metadata.erase(key);
    if (count > 1) {
      if (index > 0 && metadata.contains("general.alignment"))
        part_metadata.set("general.alignment", *metadata.find("general.alignment"));
      part_metadata.set("split.no", GgufValue::of_u16(static_cast<uint16_t>(index)));
      part_metadata.set("split.count", GgufValue::of_u16(static_cast<uint16_t>(count)));
      part_metadata.set("split.tensors.count",
                        GgufValue::of_i32(static_cast<int32_t>(tensors.size())));
    }
    outputs.push_back(std::make_unique<AtomicOutputFile>(part_path, options.overwrite));
    const auto [begin, end] = parts[index];
    write_gguf_file(outputs.back()->staging(), part_metadata, tensors.subspan(begin, end - begin),
                    options.copy);
    written.push_back(part_path);
  }
  if (options.check_before_commit) {
    std::vector<fs::path> staged;
    for (const auto& output : outputs) staged.push_back(output->staging());
    options.check_before_commit(staged);
  }
  for (auto& output : outputs) output->commit();
  return written;
}

std::string_view GgufWriter::format_name() const { return "gguf"; }

std::vector<fs::path> GgufWriter::write(const fs::path& dir, const nlohmann::json&,
                                        std::span<const TensorSource>, const Metadata&,
                                        const WriteOptions&) const {
  throw UnsupportedError(
      fmt::format("cannot write {} as GGUF through the generic checkpoint "
                  "writer: a GGUF needs its source's metadata (tokenizer, chat "
                  "template), which only the GGUF writer takes",
                  dir.string()));
}

}  // namespace moeslice
