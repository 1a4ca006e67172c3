// The range-copy engine: a file written at explicit offsets, with file ranges copied by threads.
//
// A file is written with its layout fixed up front, so the bytes need not be written front to
// back. Tensors that are ranges of existing files (an expert kept by a slice) are copied in pieces
// of at most kPieceBytes of the output, by copier threads that each take the next piece not yet
// taken. Meanwhile the calling thread writes the literal bytes (a header) and the tensors only
// produce() can give (cut tensors). The output is preallocated (fallocate), so that pieces landing
// out of order still make a contiguous file.
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
#include "format/range_copy.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <thread>

#include <fmt/core.h>

#include "common/error.h"

namespace moeslice {
namespace fs = std::filesystem;

namespace {

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

// The bytes of `ranges` together; UINT64_MAX when that overflows.
uint64_t total_length(const std::vector<FileRange>& ranges) {
  uint64_t total = 0;
  for (const FileRange& range : ranges)
    if (__builtin_add_overflow(total, range.length, &total)) return UINT64_MAX;
  return total;
}

}  // namespace

void write_file_layout(const FileLayout& layout, RangeCopy copy_mode) {
  for (const LiteralBytes& literal : layout.literals)
    if (literal.offset > layout.size || literal.bytes.size() > layout.size - literal.offset)
      throw std::logic_error(fmt::format("{}: {} bytes at offset {} lie past the file's {} bytes",
                                         layout.path.string(), literal.bytes.size(), literal.offset,
                                         layout.size));
  // Tensors that are their file range byte for byte are copied, as one run where they also follow
  // each other in their source (an expert's projections); the others are produced. Runs are cut
  // into pieces at multiples of kPieceBytes of the output, so that only a run's two ends are
  // unaligned.
  struct Run {
    size_t first = 0, last = 0;  // tensors
    uint64_t out_offset = 0;
    FileRange range;
    size_t pieces_begin = 0, pieces_end = 0;
  };
  const auto& tensors = layout.tensors;
  std::vector<Run> runs;
  std::vector<size_t> produced;  // tensors
  // Extends the last run when `range` of tensor i (the run's tensor or the next) follows it both
  // in the output and in the source.
  auto add_to_runs = [&](size_t i, uint64_t offset, const FileRange& range) {
    if (!runs.empty() && (runs.back().last == i || runs.back().last + 1 == i) &&
        runs.back().out_offset + runs.back().range.length == offset &&
        runs.back().range.path == range.path &&
        runs.back().range.offset + runs.back().range.length == range.offset) {
      runs.back().last = i;
      runs.back().range.length += range.length;
    } else {
      runs.push_back({i, i, offset, range});
    }
  };
  for (size_t i = 0; i < tensors.size(); ++i) {
    const uint64_t offset = tensors[i].offset;
    const uint64_t size = tensors[i].tensor->byte_size();
    if (offset > layout.size || size > layout.size - offset)
      throw std::logic_error(
          fmt::format("{}: tensor '{}' ({} bytes at offset {}) lies past the "
                      "file's {} bytes",
                      layout.path.string(), tensors[i].tensor->name, size, offset, layout.size));
    const TensorSource& tensor = *tensors[i].tensor;
    if (tensor.file_range && tensor.file_range->length == size) {
      add_to_runs(i, offset, *tensor.file_range);
    } else if (!tensor.file_ranges.empty() && total_length(tensor.file_ranges) == size) {
      uint64_t at = offset;
      for (const FileRange& range : tensor.file_ranges) {
        add_to_runs(i, at, range);
        at += range.length;
      }
    } else {
      produced.push_back(i);
    }
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

  const OutputFile out(layout.path, copy_mode);
  // May be refused: only a layout hint.
  ::fallocate(out.fd(), 0, 0, static_cast<off_t>(layout.size));
  ParallelCopy copy(out, pieces);
  for (const LiteralBytes& literal : layout.literals) out.write_at(literal.offset, literal.bytes);
  auto write_produced = [&](size_t first, size_t last) {
    BufferedWriter writer(out, tensors[first].offset);
    for (size_t i = first; i <= last; ++i)
      tensors[i].tensor->produce_checked(
          [&](std::span<const std::byte> bytes) { writer.write(bytes); });
    writer.flush();
  };
  for (const size_t index : produced) write_produced(index, index);
  copy.wait();
  // The runs the kernel would not copy, whole (some of their pieces may have been: the bytes are
  // the same).
  for (const Run& run : runs)
    for (size_t piece = run.pieces_begin; piece < run.pieces_end; ++piece)
      if (!copy.copied(piece)) {
        write_produced(run.first, run.last);
        break;
      }
}

}  // namespace moeslice
