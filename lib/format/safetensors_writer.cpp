// Canonical safetensors writing, sharding and the shard index.
#include "format/safetensors_writer.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <set>
#include <stdexcept>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "common/atomic_output.h"
#include "common/error.h"

namespace moeslice {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr size_t kCopyChunkBytes = 64u << 20;

struct FileCloser {
  void operator()(std::FILE* file) const { std::fclose(file); }
};

void write_all(std::FILE* file, const fs::path& path, std::span<const std::byte> bytes) {
  if (bytes.empty()) return;
  if (std::fwrite(bytes.data(), 1, bytes.size(), file) != bytes.size())
    throw IoError(fmt::format("cannot write {}: {}", path.string(), std::strerror(errno)));
}

enum class CopyOutcome { kCopied, kUnsupported };

// Source files opened for kernel copies, kept open for the whole write.
class SourceFiles {
 public:
  SourceFiles() = default;
  SourceFiles(const SourceFiles&) = delete;
  SourceFiles& operator=(const SourceFiles&) = delete;
  ~SourceFiles() {
    for (const auto& [path, fd] : fds_) ::close(fd);
  }
  int fd(const fs::path& path) {
    const auto it = fds_.find(path);
    if (it != fds_.end()) return it->second;
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
      throw IoError(fmt::format("cannot open {}: {}", path.string(), std::strerror(errno)));
    fds_.emplace(path, fd);
    return fd;
  }

 private:
  std::map<fs::path, int> fds_;
};

// Copies a file range to the current offset of `out_fd` inside the kernel. kUnsupported when the
// kernel refuses before copying anything (cross-device on old kernels, unsupported file systems).
CopyOutcome copy_file_range_all(const FileRange& range, int in_fd, int out_fd,
                                const fs::path& out_path) {
  loff_t in_offset = static_cast<loff_t>(range.offset);
  uint64_t left = range.length;
  while (left > 0) {
    const ssize_t copied = ::copy_file_range(in_fd, &in_offset, out_fd, nullptr, left, 0);
    if (copied > 0) {
      left -= static_cast<uint64_t>(copied);
      continue;
    }
    const int error = copied == 0 ? EIO : errno;
    if (error == EINTR) continue;
    if (left == range.length &&
        (error == EXDEV || error == ENOSYS || error == EINVAL || error == EOPNOTSUPP))
      return CopyOutcome::kUnsupported;
    throw IoError(fmt::format("cannot copy {} bytes of {} into {}: {}", range.length,
                              range.path.string(), out_path.string(),
                              copied == 0 ? "the source ended early" : std::strerror(error)));
  }
  return CopyOutcome::kCopied;
}

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

}  // namespace

uint64_t TensorSource::byte_size() const {
  const auto size = tensor_byte_size(dtype, shape);
  if (!size)
    throw InputError(fmt::format("tensor '{}': shape {} of {} is too large", name,
                                 format_shape(shape), dtype_name(dtype)));
  return *size;
}

TensorSource TensorSource::copy_of(const TensorView& view, const MappedFile* mapping,
                                   std::string new_name) {
  TensorSource source;
  source.name = new_name.empty() ? view.name : std::move(new_name);
  source.dtype = view.dtype;
  source.shape = view.shape;
  const auto bytes = view.bytes;
  if (mapping != nullptr)
    source.file_range =
        FileRange{mapping->path(), static_cast<uint64_t>(bytes.data() - mapping->bytes().data()),
                  bytes.size()};
  source.produce = [bytes, mapping](const ByteSink& sink) {
    for (size_t done = 0; done < bytes.size(); done += kCopyChunkBytes) {
      const size_t length = std::min(kCopyChunkBytes, bytes.size() - done);
      sink(bytes.subspan(done, length));
      if (mapping != nullptr)
        mapping->dont_need(static_cast<size_t>(bytes.data() + done - mapping->bytes().data()),
                           length);
    }
  };
  return source;
}

TensorSource TensorSource::from_bytes(std::string name, DType dtype, std::vector<int64_t> shape,
                                      std::vector<std::byte> bytes) {
  TensorSource source{std::move(name), dtype, std::move(shape), {}, std::nullopt};
  auto shared = std::make_shared<std::vector<std::byte>>(std::move(bytes));
  source.produce = [shared](const ByteSink& sink) { sink(*shared); };
  return source;
}

TensorSource TensorSource::from_floats(std::string name, DType dtype, std::vector<int64_t> shape,
                                       std::vector<float> values) {
  std::vector<std::byte> bytes(values.size() * dtype_bits(dtype) / 8);
  convert_from_f32(dtype, values.data(), bytes.data(), values.size());
  return from_bytes(std::move(name), dtype, std::move(shape), std::move(bytes));
}

// Copies a tensor's bytes from their file range; false when the kernel cannot (another file
// system, an old kernel): the caller then streams them instead. `upcoming` are the file ranges of
// the next tensors, to be read ahead while this one is copied.
using RangeCopier =
    std::function<bool(const FileRange&, std::span<const FileRange* const> upcoming)>;

// Streams a whole safetensors file (length, header, data) into `out`.
static void stream_safetensors(const ByteSink& out, std::span<const TensorSource> tensors,
                               const Metadata& metadata, const RangeCopier& copy_range = {}) {
  const std::string header = build_header(tensors, metadata);
  const uint64_t length = header.size();
  std::byte length_bytes[8];
  for (int i = 0; i < 8; ++i) length_bytes[i] = static_cast<std::byte>(length >> (8 * i) & 0xff);
  out(length_bytes);
  out(std::as_bytes(std::span(header.data(), header.size())));
  constexpr uint64_t kReadAheadBytes = 64u << 20;
  std::vector<const FileRange*> upcoming;
  // Byte-for-byte tensors that also follow each other in their source file (an expert's
  // projections) are copied as one range.
  auto kernel_copyable = [](const TensorSource& tensor) {
    return tensor.file_range && tensor.file_range->length == tensor.byte_size();
  };
  auto continues = [](const FileRange& range, const TensorSource& next) {
    return next.file_range && next.file_range->path == range.path &&
           next.file_range->offset == range.offset + range.length;
  };
  for (size_t i = 0; i < tensors.size(); ++i) {
    const TensorSource& tensor = tensors[i];
    const uint64_t expected = tensor.byte_size();
    if (kernel_copyable(tensor) && copy_range) {
      FileRange run = *tensor.file_range;
      size_t last = i;
      while (last + 1 < tensors.size() && kernel_copyable(tensors[last + 1]) &&
             continues(run, tensors[last + 1]))
        run.length += tensors[++last].file_range->length;
      upcoming.clear();
      uint64_t ahead = 0;
      for (size_t j = last + 1; j < tensors.size() && ahead < kReadAheadBytes; ++j)
        if (tensors[j].file_range) {
          upcoming.push_back(&*tensors[j].file_range);
          ahead += tensors[j].file_range->length;
        }
      if (copy_range(run, upcoming)) {
        i = last;
        continue;
      }
    }
    uint64_t written = 0;
    tensor.produce([&](std::span<const std::byte> bytes) {
      written += bytes.size();
      if (written <= expected) out(bytes);
    });
    if (written != expected)
      throw std::logic_error(fmt::format("tensor '{}' produced {} bytes, expected {}", tensor.name,
                                         written, expected));
  }
}

void write_safetensors_file(const fs::path& path, std::span<const TensorSource> tensors,
                            const Metadata& metadata) {
  std::unique_ptr<std::FILE, FileCloser> file(std::fopen(path.c_str(), "wb"));
  if (!file)
    throw IoError(fmt::format("cannot create {}: {}", path.string(), std::strerror(errno)));
  std::setvbuf(file.get(), nullptr, _IOFBF, 1 << 20);
  SourceFiles sources;
  uint64_t read_ahead_end = 0;  // of the last range advised, to advise each range once
  const FileRange* last_advised = nullptr;
  RangeCopier copy_range = [&, kernel_copy = true](
                               const FileRange& range,
                               std::span<const FileRange* const> upcoming) mutable {
    if (!kernel_copy) return false;
    if (std::fflush(file.get()) != 0)
      throw IoError(fmt::format("cannot write {}: {}", path.string(), std::strerror(errno)));
    // Start reading the next tensors now, so the disk works while this one is copied.
    for (const FileRange* next : upcoming) {
      if (last_advised != nullptr && next->path == last_advised->path &&
          next->offset + next->length <= read_ahead_end)
        continue;
      ::posix_fadvise(sources.fd(next->path), static_cast<off_t>(next->offset),
                      static_cast<off_t>(next->length), POSIX_FADV_WILLNEED);
      last_advised = next;
      read_ahead_end = next->offset + next->length;
    }
    const CopyOutcome outcome =
        copy_file_range_all(range, sources.fd(range.path), ::fileno(file.get()), path);
    // Some bytes copied and then a refusal would leave a hole: only a clean refusal falls back.
    kernel_copy = outcome == CopyOutcome::kCopied;
    return kernel_copy;
  };
  stream_safetensors([&](std::span<const std::byte> bytes) { write_all(file.get(), path, bytes); },
                     tensors, metadata, copy_range);
  if (std::fflush(file.get()) != 0)
    throw IoError(fmt::format("cannot write {}: {}", path.string(), std::strerror(errno)));
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
                                               const Metadata& metadata, uint64_t max_shard_bytes) {
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
    write_safetensors_file(written.back(), tensors, metadata);
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
    write_safetensors_file(written.back(), part, metadata);
  }
  const json index = {{"metadata", {{"total_size", total}}}, {"weight_map", weight_map}};
  written.push_back(dir / kIndexFileName);
  write_file_atomically(written.back(), index.dump(2) + "\n", /*overwrite=*/false);
  return written;
}

uint64_t parse_byte_size(const std::string& text) {
  size_t digits_end = 0;
  double number = 0;
  try {
    number = std::stod(text, &digits_end);
  } catch (const std::exception&) {
    digits_end = 0;
  }
  std::string unit = text.substr(digits_end);
  for (auto& c : unit) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  const std::map<std::string, double> units = {{"", 1},
                                               {"B", 1},
                                               {"KB", 1e3},
                                               {"MB", 1e6},
                                               {"GB", 1e9},
                                               {"TB", 1e12},
                                               {"KIB", 1024.0},
                                               {"MIB", 1048576.0},
                                               {"GIB", 1073741824.0},
                                               {"TIB", 1099511627776.0}};
  const auto it = units.find(unit);
  // At least one byte, and below 2^64 so that the conversion to an integer is defined.
  const double bytes = it == units.end() ? 0 : number * it->second;
  if (digits_end == 0 || it == units.end() || !(bytes >= 1) || !(bytes < 0x1p64))
    throw InputError(
        fmt::format("cannot read size '{}': expected a positive number with an "
                    "optional unit (B, KB, MB, GB, KiB, MiB, GiB), e.g. 5GB",
                    text));
  return static_cast<uint64_t>(bytes);
}

std::string format_byte_size(uint64_t bytes) {
  const double value = static_cast<double>(bytes);
  if (value >= 1e9) return fmt::format("{:.2f} GB", value / 1e9);
  if (value >= 1e6) return fmt::format("{:.2f} MB", value / 1e6);
  if (value >= 1e3) return fmt::format("{:.2f} kB", value / 1e3);
  return fmt::format("{} B", bytes);
}

}  // namespace moeslice
