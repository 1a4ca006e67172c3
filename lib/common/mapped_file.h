// A read-only memory mapping of a whole file. Opening costs a system call, not a copy: pages are
// read by the kernel on first touch and shared through the page cache.
//
// Each mapping is named in common/mapping_table.h, so that a SIGBUS from a file truncated while
// mapped names the file; the file's identity (device, inode, size, modification time) is recorded
// at open, so that check_unchanged() finds a file replaced or rewritten in place during a run.
//
// Thread safety: a MappedFile is immutable after construction; concurrent reads are safe.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>

namespace moeslice {

class MappedFile {
 public:
  // Throws InputError when the file is missing or unreadable (message names the path).
  explicit MappedFile(const std::filesystem::path& path);
  ~MappedFile();
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  std::span<const std::byte> bytes() const { return {data_, size_}; }
  size_t size() const { return size_; }
  const std::filesystem::path& path() const { return path_; }

  // Throws InputError naming the file and what changed when the path no longer holds the file
  // as it was when mapped: another size, another modification time, or another file (inode).
  void check_unchanged() const;

  // Tells the kernel that a range will be read soon, front to back (readahead).
  void will_need(size_t offset, size_t length) const;
  // Tells the kernel a range is no longer needed, so its pages may leave memory first.
  void dont_need(size_t offset, size_t length) const;

 private:
  void release() noexcept;

  std::filesystem::path path_;
  const std::byte* data_ = nullptr;
  size_t size_ = 0;
  int table_slot_ = -1;  // in common/mapping_table.h
  // Identity at open, compared by check_unchanged().
  dev_t device_ = 0;
  ino_t inode_ = 0;
  int64_t mtime_ns_ = 0;
};

}  // namespace moeslice
