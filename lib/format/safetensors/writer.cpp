// Canonical safetensors writing, sharding and the shard index, on the range-copy engine.
#include "format/safetensors/writer.h"

#include <set>
#include <string>
#include <string_view>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "common/atomic_output.h"
#include "common/error.h"
#include "format/safetensors/checkpoint.h"

namespace moeslice {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// A repeated name would silently collapse two tensors into one header entry (leaving a gap in the
// data buffer), and a tensor named __metadata__ would replace the metadata.
void check_unique_names(std::span<const TensorSource> tensors) {
  std::set<std::string_view> names;
  for (const auto& tensor : tensors) {
    if (tensor.name == "__metadata__")
      throw InputError("a tensor cannot be named '__metadata__' in a safetensors file");
    if (!names.insert(tensor.name).second)
      throw InputError(
          fmt::format("tensor '{}' appears twice among the tensors to write", tensor.name));
  }
}

std::string build_header(std::span<const TensorSource> tensors, const Metadata& metadata) {
  check_unique_names(tensors);
  json header = json::object();
  json meta = json::object();
  meta["format"] = "pt";
  for (const auto& [key, value] : metadata) meta[key] = value;
  header["__metadata__"] = meta;
  uint64_t offset = 0;
  for (const auto& tensor : tensors) {
    const uint64_t size = tensor.byte_size();
    header[tensor.name] = {{"dtype", std::string(dtype_name(tensor.dtype))},
                           {"shape", tensor.shape},
                           {"data_offsets", {offset, offset + size}}};
    offset += size;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  return text;
}

// The 8-byte little-endian header length, then the header.
std::string file_prefix(const std::string& header) {
  std::string prefix(8, '\0');
  for (size_t i = 0; i < 8; ++i) prefix[i] = static_cast<char>(header.size() >> (8 * i) & 0xff);
  return prefix + header;
}

// Streams a whole safetensors file (length, header, data) into `out`, front to back.
void stream_safetensors(const ByteSink& out, std::span<const TensorSource> tensors,
                        const Metadata& metadata) {
  const std::string prefix = file_prefix(build_header(tensors, metadata));
  out(std::as_bytes(std::span(prefix.data(), prefix.size())));
  for (const auto& tensor : tensors) tensor.produce_checked(out);
}

}  // namespace

void write_safetensors_file(const fs::path& path, std::span<const TensorSource> tensors,
                            const Metadata& metadata, RangeCopy copy) {
  const std::string prefix = file_prefix(build_header(tensors, metadata));
  FileLayout layout{path, prefix.size(), {{0, std::as_bytes(std::span(prefix))}}, {}};
  for (const auto& tensor : tensors) {
    layout.tensors.push_back({layout.size, &tensor});
    layout.size += tensor.byte_size();
  }
  write_file_layout(layout, copy);
}

void write_safetensors(const fs::path& path, std::span<const TensorSource> tensors,
                       const Metadata& metadata, bool overwrite) {
  AtomicOutputFile output(path, overwrite);
  stream_safetensors([&](std::span<const std::byte> bytes) { output.write(bytes); }, tensors,
                     metadata);
  output.commit();
}

std::vector<fs::path> write_checkpoint_tensors(const fs::path& dir,
                                               std::span<const TensorSource> tensors,
                                               const Metadata& metadata, uint64_t max_shard_bytes,
                                               RangeCopy copy) {
  // Greedy packing in the given order, as transformers does: a new shard starts when the next
  // tensor would overflow the current one; a tensor larger than the limit gets a shard alone.
  check_unique_names(tensors);  // across shards too: the index maps each name to one shard
  std::vector<std::pair<size_t, size_t>> shard_ranges;  // [begin, end) into tensors
  uint64_t current = 0;
  uint64_t total = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const uint64_t size = tensors[i].byte_size();
    total += size;
    if (shard_ranges.empty() || (current > 0 && current + size > max_shard_bytes)) {
      shard_ranges.push_back({i, i});
      current = 0;
    }
    shard_ranges.back().second = i + 1;
    current += size;
  }
  std::vector<fs::path> written;
  if (shard_ranges.size() <= 1) {
    written.push_back(dir / kSingleFileName);
    write_safetensors_file(written.back(), tensors, metadata, copy);
    return written;
  }
  json weight_map = json::object();
  const size_t count = shard_ranges.size();
  for (size_t s = 0; s < count; ++s) {
    const std::string name = fmt::format("model-{:05d}-of-{:05d}.safetensors", s + 1, count);
    const auto [begin, end] = shard_ranges[s];
    const auto part = tensors.subspan(begin, end - begin);
    for (const auto& tensor : part) weight_map[tensor.name] = name;
    written.push_back(dir / name);
    write_safetensors_file(written.back(), part, metadata, copy);
  }
  const json index = {{"metadata", {{"total_size", total}}}, {"weight_map", weight_map}};
  written.push_back(dir / kIndexFileName);
  write_file_atomically(written.back(), index.dump(2) + "\n", /*overwrite=*/false);
  return written;
}

std::string_view SafetensorsWriter::format_name() const { return "safetensors"; }

std::vector<fs::path> SafetensorsWriter::write(const fs::path& dir, const json& config,
                                               std::span<const TensorSource> tensors,
                                               const Metadata& metadata,
                                               const WriteOptions& options) const {
  std::vector<fs::path> written =
      write_checkpoint_tensors(dir, tensors, metadata, options.max_shard_bytes, options.copy);
  written.push_back(dir / kConfigFileName);
  write_file_atomically(written.back(), config.dump(2) + "\n", /*overwrite=*/false);
  return written;
}

}  // namespace moeslice
