// Canonical safetensors writing, sharding and the shard index.
//
// A file is written with its layout fixed up front: the header gives every tensor its offset, so
// the bytes need not be written front to back. Tensors that are ranges of existing files (an
// expert kept by a slice) are copied in pieces of at most kPieceBytes of the output, by copier
// threads that each take the next piece not yet taken. Meanwhile the calling thread writes the
// header and the tensors only produce() can give (cut tensors). The output is preallocated
// (fallocate), so that pieces landing out of order still make a contiguous file.
//
// RangeCopy::kDirect copies a piece with O_DIRECT reads and writes through an aligned buffer, on
// kDirectCopyThreads threads (the partial blocks at the two ends of a run go through the page
// cache): several reads and writes in flight keep the disk busy where one copier waits for each
// range in turn. Bypassing the cache saves the CPU time of filling and evicting it and keeps it
// from growing by the size of the copy: that is what lets a copy of gigabytes run at disk speed.
// RangeCopy::kCached, and kDirect where a file system refuses O_DIRECT, copies a piece with
// copy_file_range inside the kernel on ONE thread: buffered writes to one file take the inode's
// lock, so more copiers only spin on it (a fifth of the CPU time, measured). That thread asks for
// the pages of the next kReadAheadPieces pieces before copying one, so the disk reads ahead of
// it. Where the kernel refuses copy_file_range too (across file systems on some kernels), the
// tensors are streamed through produce() once the threads are done.
#include "format/safetensors_writer.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "common/atomic_output.h"
#include "common/error.h"

namespace moeslice {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr size_t kCopyChunkBytes = 64u << 20;  // produce() chunks of a mapped tensor
constexpr unsigned kDirectCopyThreads = 4;
constexpr uint64_t kPieceBytes = 8u << 20;
constexpr size_t kReadAheadPieces = 8;

// O_DIRECT offsets, lengths and buffers are multiples of this: 4096 covers the logical block
// size of disks, and a whole page keeps the blocks written directly off the pages the page cache
// holds for the partial blocks around them.
uint64_t direct_alignment() {
  static const uint64_t alignment = std::max<uint64_t>(4096, ::sysconf(_SC_PAGESIZE));
  return alignment;
}
uint64_t align_down(uint64_t value) { return value / direct_alignment() * direct_alignment(); }
uint64_t align_up(uint64_t value) { return align_down(value + direct_alignment() - 1); }

[[noreturn]] void throw_write_error(const fs::path& path, int error) {
  throw IoError(fmt::format("cannot write {}: {}", path.string(), std::strerror(error)));
}

// The output file, written at explicit offsets from several threads: through the page cache, or
// with O_DIRECT (aligned blocks only) where the file system allows it.
class OutputFile {
 public:
  OutputFile(const fs::path& path, RangeCopy copy)
      : path_(path), fd_(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666)) {
    if (fd_ < 0)
      throw IoError(fmt::format("cannot create {}: {}", path.string(), std::strerror(errno)));
    if (copy == RangeCopy::kDirect)
      direct_fd_ = ::open(path.c_str(), O_WRONLY | O_CLOEXEC | O_DIRECT);
  }
  OutputFile(const OutputFile&) = delete;
  OutputFile& operator=(const OutputFile&) = delete;
  ~OutputFile() {
    ::close(fd_);
    if (direct_fd_ >= 0) ::close(direct_fd_);
  }

  const fs::path& path() const { return path_; }
  int fd() const { return fd_; }
  bool direct() const { return direct_fd_ >= 0; }

  void write_at(uint64_t offset, std::span<const std::byte> bytes) const {
    write_all(fd_, offset, bytes, /*direct=*/false);
  }
  // Aligned bytes only; false when the kernel refuses O_DIRECT for them (EINVAL).
  bool write_direct_at(uint64_t offset, std::span<const std::byte> bytes) const {
    return write_all(direct_fd_, offset, bytes, /*direct=*/true);
  }

 private:
  bool write_all(int fd, uint64_t offset, std::span<const std::byte> bytes, bool direct) const {
    while (!bytes.empty()) {
      const ssize_t written = ::pwrite(fd, bytes.data(), bytes.size(), static_cast<off_t>(offset));
      if (written < 0 && errno == EINTR) continue;
      if (written < 0 && errno == EINVAL && direct) return false;
      if (written <= 0) throw_write_error(path_, written < 0 ? errno : EIO);
      bytes = bytes.subspan(static_cast<size_t>(written));
      offset += static_cast<uint64_t>(written);
    }
    return true;
  }

  fs::path path_;
  int fd_;
  int direct_fd_ = -1;
};

// Collects produced chunks, however small, into large writes from `offset` on.
class BufferedWriter {
 public:
  BufferedWriter(const OutputFile& out, uint64_t offset) : out_(out), offset_(offset) {}
  void write(std::span<const std::byte> bytes) {
    if (buffer_.size() + bytes.size() > kBufferBytes) flush();
    if (bytes.size() < kBufferBytes) {
      buffer_.insert(buffer_.end(), bytes.begin(), bytes.end());
      return;
    }
    out_.write_at(offset_, bytes);
    offset_ += bytes.size();
  }
  void flush() {
    out_.write_at(offset_, buffer_);
    offset_ += buffer_.size();
    buffer_.clear();
  }

 private:
  static constexpr size_t kBufferBytes = 1u << 20;
  const OutputFile& out_;
  uint64_t offset_;
  std::vector<std::byte> buffer_;
};

// Source files, each opened once (with `flags` added to O_RDONLY) and kept open for the whole
// write. fd() is -1 when the kernel refuses the flags (O_DIRECT on a file system without it).
// Read through the page cache, a file gets no readahead, which would read on past each piece into
// bytes no one copies: read_ahead() asks for exactly the pieces to come instead.
class SourceFiles {
 public:
  explicit SourceFiles(int flags = 0) : flags_(flags) {}
  SourceFiles(const SourceFiles&) = delete;
  SourceFiles& operator=(const SourceFiles&) = delete;
  ~SourceFiles() {
    for (const auto& [path, fd] : fds_)
      if (fd >= 0) ::close(fd);
  }
  int fd(const fs::path& path) {
    const auto it = fds_.find(path);
    if (it != fds_.end()) return it->second;
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | flags_);
    if (fd < 0 && !(flags_ != 0 && errno == EINVAL))
      throw IoError(fmt::format("cannot open {}: {}", path.string(), std::strerror(errno)));
    if (fd >= 0 && (flags_ & O_DIRECT) == 0) ::posix_fadvise(fd, 0, 0, POSIX_FADV_RANDOM);
    fds_.emplace(path, fd);
    return fd;
  }
  static void read_ahead(int fd, const FileRange& range) {
    ::posix_fadvise(fd, static_cast<off_t>(range.offset), static_cast<off_t>(range.length),
                    POSIX_FADV_WILLNEED);
  }

 private:
  int flags_;
  std::map<fs::path, int> fds_;
};

enum class CopyOutcome { kCopied, kUnsupported };

// A piece of a file to copy to `out_offset` of the output.
struct CopyPiece {
  FileRange range;
  uint64_t out_offset = 0;
};

// Copies a piece inside the kernel. kUnsupported when the kernel refuses before copying anything
// (cross-device on some kernels, unsupported file systems).
CopyOutcome copy_file_range_all(const CopyPiece& piece, int in_fd, const OutputFile& out) {
  const FileRange& range = piece.range;
  loff_t in_offset = static_cast<loff_t>(range.offset);
  loff_t out_offset = static_cast<loff_t>(piece.out_offset);
  uint64_t left = range.length;
  while (left > 0) {
    const ssize_t copied = ::copy_file_range(in_fd, &in_offset, out.fd(), &out_offset, left, 0);
    if (copied > 0) {
      left -= static_cast<uint64_t>(copied);
      continue;
    }
    const int error = copied == 0 ? EIO : errno;
    if (error == EINTR) continue;
    // Bytes copied and then a refusal cannot be told from a failure: only a clean refusal falls
    // back (the fallback would rewrite the whole piece, so this is caution, not a hole).
    if (left == range.length &&
        (error == EXDEV || error == ENOSYS || error == EINVAL || error == EOPNOTSUPP))
      return CopyOutcome::kUnsupported;
    throw IoError(fmt::format("cannot copy {} bytes of {} into {}: {}", range.length,
                              range.path.string(), out.path().string(),
                              copied == 0 ? "the source ended early" : std::strerror(error)));
  }
  return CopyOutcome::kCopied;
}

struct AlignedFree {
  void operator()(std::byte* bytes) const { std::free(bytes); }
};
using AlignedBuffer = std::unique_ptr<std::byte, AlignedFree>;

AlignedBuffer aligned_buffer(size_t size) {
  auto* bytes = static_cast<std::byte*>(std::aligned_alloc(direct_alignment(), size));
  if (bytes == nullptr) throw std::bad_alloc();
  return AlignedBuffer(bytes);
}

// Reads `length` bytes at `offset` of a file opened with O_DIRECT, by aligned reads into
// `buffer` (room for `length` plus two alignments), and moves them to its start. false when the
// kernel refuses O_DIRECT for them.
bool read_direct(int fd, const FileRange& range, uint64_t offset, size_t length,
                 std::byte* buffer) {
  const uint64_t start = align_down(offset);
  const uint64_t end = align_up(offset + length);
  uint64_t got = 0;
  while (start + got < offset + length) {
    const ssize_t count =
        ::pread(fd, buffer + got, end - start - got, static_cast<off_t>(start + got));
    if (count < 0 && errno == EINTR) continue;
    if (count < 0 && errno == EINVAL) return false;
    if (count <= 0)
      throw IoError(fmt::format("cannot read {}: {}", range.path.string(),
                                count == 0 ? "the source ended early" : std::strerror(errno)));
    got += static_cast<uint64_t>(count);
  }
  std::memmove(buffer, buffer + (offset - start), length);
  return true;
}

// Copies a piece (at most kPieceBytes) with O_DIRECT reads and writes: the whole aligned blocks
// of the output directly, the partial blocks at its ends through the page cache. kUnsupported
// when the kernel refuses O_DIRECT; what was written is then rewritten by the fallback.
CopyOutcome copy_direct(const CopyPiece& piece, int in_fd, const OutputFile& out,
                        std::byte* buffer) {
  const uint64_t begin = piece.out_offset;
  const uint64_t end = begin + piece.range.length;
  const uint64_t middle_begin = std::min(align_up(begin), end);
  const uint64_t middle_end = std::max(align_down(end), middle_begin);
  auto copy = [&](uint64_t from, uint64_t to, bool direct) {
    if (from == to) return true;
    const auto length = static_cast<size_t>(to - from);
    if (!read_direct(in_fd, piece.range, piece.range.offset + (from - begin), length, buffer))
      return false;
    if (direct) return out.write_direct_at(from, {buffer, length});
    out.write_at(from, {buffer, length});
    return true;
  };
  const bool copied = copy(begin, middle_begin, false) && copy(middle_begin, middle_end, true) &&
                      copy(middle_end, end, false);
  return copied ? CopyOutcome::kCopied : CopyOutcome::kUnsupported;
}

// Copies pieces into the output on copier threads (kDirectCopyThreads for O_DIRECT copies, one
// through the page cache), each taking the next piece not yet taken. The first error, or a piece
// the kernel will not copy, stops them all.
class ParallelCopy {
 public:
  ParallelCopy(const OutputFile& out, std::span<const CopyPiece> pieces)
      : out_(out), pieces_(pieces), copied_(pieces.size(), 0) {
    const size_t count = std::min<size_t>(out.direct() ? kDirectCopyThreads : 1, pieces.size());
    for (size_t i = 0; i < count; ++i) threads_.emplace_back([this] { work(); });
  }
  ParallelCopy(const ParallelCopy&) = delete;
  ParallelCopy& operator=(const ParallelCopy&) = delete;
  ~ParallelCopy() { stop_ = true; }  // then the threads are joined

  // Waits for the threads and rethrows the first error. Then copied(i) says whether piece i was
  // copied: false when the kernel refused it, and for the pieces no thread took after that.
  void wait() {
    for (auto& thread : threads_) thread.join();
    threads_.clear();
    if (error_) std::rethrow_exception(error_);
  }
  bool copied(size_t piece) const { return copied_[piece] != 0; }

 private:
  void work() {
    try {
      SourceFiles direct_sources(O_DIRECT), sources;
      bool direct = out_.direct();
      AlignedBuffer buffer;
      if (direct) buffer = aligned_buffer(kPieceBytes + 2 * direct_alignment());
      for (size_t i = next_++; i < pieces_.size() && !stop_; i = next_++) {
        const CopyPiece& piece = pieces_[i];
        if (direct) {
          const int fd = direct_sources.fd(piece.range.path);
          direct = fd >= 0 && copy_direct(piece, fd, out_, buffer.get()) == CopyOutcome::kCopied;
        }
        if (!direct) {
          read_ahead_through(std::min(i + kReadAheadPieces, pieces_.size()), sources);
          const int fd = sources.fd(piece.range.path);
          if (copy_file_range_all(piece, fd, out_) == CopyOutcome::kUnsupported) {
            stop_ = true;
            return;
          }
        }
        copied_[i] = 1;
      }
    } catch (...) {
      const std::lock_guard lock(error_mutex_);
      if (!error_) error_ = std::current_exception();
      stop_ = true;
    }
  }

  // Asks for the pages of every piece before `end` not yet asked for, each piece once.
  void read_ahead_through(size_t end, SourceFiles& sources) {
    for (size_t j = read_ahead_end_.load(); j < end;)
      if (read_ahead_end_.compare_exchange_weak(j, j + 1))
        SourceFiles::read_ahead(sources.fd(pieces_[j].range.path), pieces_[j].range);
  }

  const OutputFile& out_;
  std::span<const CopyPiece> pieces_;
  std::vector<char> copied_;  // each element written by one thread, read after the join
  std::atomic<size_t> next_ = 0;
  std::atomic<size_t> read_ahead_end_ = 0;  // pieces before it have been read ahead
  std::atomic<bool> stop_ = false;
  std::mutex error_mutex_;
  std::exception_ptr error_;
  std::vector<std::jthread> threads_;  // last: joined before the members above go
};

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

// The 8-byte little-endian header length, then the header.
static std::string file_prefix(const std::string& header) {
  std::string prefix(8, '\0');
  for (size_t i = 0; i < 8; ++i) prefix[i] = static_cast<char>(header.size() >> (8 * i) & 0xff);
  return prefix + header;
}

// Streams the tensor's bytes into `sink`; throws std::logic_error when the producer emits the
// wrong byte count (the bytes past the expected count are not passed on).
static void produce_checked(const TensorSource& tensor, const ByteSink& sink) {
  const uint64_t expected = tensor.byte_size();
  uint64_t written = 0;
  tensor.produce([&](std::span<const std::byte> bytes) {
    written += bytes.size();
    if (written <= expected) sink(bytes);
  });
  if (written != expected)
    throw std::logic_error(
        fmt::format("tensor '{}' produced {} bytes, expected {}", tensor.name, written, expected));
}

// Streams a whole safetensors file (length, header, data) into `out`, front to back.
static void stream_safetensors(const ByteSink& out, std::span<const TensorSource> tensors,
                               const Metadata& metadata) {
  const std::string prefix = file_prefix(build_header(tensors, metadata));
  out(std::as_bytes(std::span(prefix.data(), prefix.size())));
  for (const auto& tensor : tensors) produce_checked(tensor, out);
}

void write_safetensors_file(const fs::path& path, std::span<const TensorSource> tensors,
                            const Metadata& metadata, RangeCopy copy_mode) {
  const std::string prefix = file_prefix(build_header(tensors, metadata));
  // The layout: tensors that are their file range byte for byte are copied, as one run where
  // they also follow each other in their source (an expert's projections); the others are
  // produced. Runs are cut into pieces at multiples of kPieceBytes of the output, so that only a
  // run's two ends are unaligned.
  struct Run {
    size_t first = 0, last = 0;  // tensors
    uint64_t out_offset = 0;
    FileRange range;
    size_t pieces_begin = 0, pieces_end = 0;
  };
  std::vector<Run> runs;
  std::vector<std::pair<size_t, uint64_t>> produced;  // tensor, output offset
  uint64_t offset = prefix.size();
  for (size_t i = 0; i < tensors.size(); ++i) {
    const uint64_t size = tensors[i].byte_size();
    const auto& range = tensors[i].file_range;
    if (!range || range->length != size) {
      produced.emplace_back(i, offset);
    } else if (!runs.empty() && runs.back().last + 1 == i &&
               runs.back().range.path == range->path &&
               runs.back().range.offset + runs.back().range.length == range->offset) {
      runs.back().last = i;
      runs.back().range.length += size;
    } else {
      runs.push_back({i, i, offset, *range});
    }
    offset += size;
  }
  std::vector<CopyPiece> pieces;
  for (Run& run : runs) {
    run.pieces_begin = pieces.size();
    const uint64_t end = run.out_offset + run.range.length;
    for (uint64_t at = run.out_offset; at < end;) {
      const uint64_t next = std::min(end, (at / kPieceBytes + 1) * kPieceBytes);
      pieces.push_back({{run.range.path, run.range.offset + (at - run.out_offset), next - at}, at});
      at = next;
    }
    run.pieces_end = pieces.size();
  }

  const OutputFile out(path, copy_mode);
  ::fallocate(out.fd(), 0, 0, static_cast<off_t>(offset));  // may be refused: only a layout hint
  ParallelCopy copy(out, pieces);
  out.write_at(0, std::as_bytes(std::span(prefix.data(), prefix.size())));
  auto write_produced = [&](size_t first, size_t last, uint64_t at) {
    BufferedWriter writer(out, at);
    for (size_t i = first; i <= last; ++i)
      produce_checked(tensors[i], [&](std::span<const std::byte> bytes) { writer.write(bytes); });
    writer.flush();
  };
  for (const auto& [index, at] : produced) write_produced(index, index, at);
  copy.wait();
  // The runs the kernel would not copy, whole (some of their pieces may have been: the bytes are
  // the same).
  for (const Run& run : runs)
    for (size_t piece = run.pieces_begin; piece < run.pieces_end; ++piece)
      if (!copy.copied(piece)) {
        write_produced(run.first, run.last, run.out_offset);
        break;
      }
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
