// A read-only memory mapping of a whole file. Opening costs a system call, not a copy: pages are
// read by the kernel on first touch and shared through the page cache.
//
// Thread safety: a MappedFile is immutable after construction; concurrent reads are safe.
#pragma once

#include <cstddef>
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

  // Tells the kernel that a range will be read soon, front to back (readahead).
  void will_need(size_t offset, size_t length) const;
  // Tells the kernel a range is no longer needed, so its pages may leave memory first.
  void dont_need(size_t offset, size_t length) const;

 private:
  void release() noexcept;

  std::filesystem::path path_;
  const std::byte* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace moeslice
