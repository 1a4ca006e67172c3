// MappedFile: mmap(2) of a whole file, read-only.
#include "common/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <utility>

#include <fmt/core.h>
#include <fmt/std.h>

#include "common/error.h"
#include "common/io_rules.h"
#include "common/mapping_table.h"

namespace moeslice {
namespace {

// Page-aligns [offset, offset+length) within the mapping for madvise.
void advise(const std::byte* base, size_t size, size_t offset, size_t length, int advice) {
  if (base == nullptr || offset >= size) return;
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  const size_t begin = offset / page * page;
  const size_t end = std::min(size, offset + length);
  madvise(const_cast<std::byte*>(base) + begin, end - begin, advice);
}

int64_t mtime_ns(const struct stat& status) {
  return static_cast<int64_t>(status.st_mtim.tv_sec) * 1'000'000'000 + status.st_mtim.tv_nsec;
}

}  // namespace

MappedFile::MappedFile(const std::filesystem::path& path) : path_(path) {
  // Never blocks on a FIFO, refuses anything but a regular file.
  const int fd = open_input_file(path, {});
  struct stat status {};
  if (::fstat(fd, &status) != 0) {
    const int saved = errno;
    ::close(fd);
    throw InputError(fmt::format("cannot stat {}: {}", path.string(), std::strerror(saved)));
  }
  size_ = static_cast<size_t>(status.st_size);
  device_ = status.st_dev;
  inode_ = status.st_ino;
  mtime_ns_ = mtime_ns(status);
  if (size_ > 0) {
    void* mapping = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (mapping == MAP_FAILED) {
      const int saved = errno;
      ::close(fd);
      throw InputError(fmt::format("cannot map {}: {}", path.string(), std::strerror(saved)));
    }
    data_ = static_cast<const std::byte*>(mapping);
    table_slot_ = register_mapping(data_, size_, path);
  }
  ::close(fd);
}

MappedFile::~MappedFile() { release(); }

MappedFile::MappedFile(MappedFile&& other) noexcept
    : path_(std::move(other.path_)),
      data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      table_slot_(std::exchange(other.table_slot_, -1)),
      device_(other.device_),
      inode_(other.inode_),
      mtime_ns_(other.mtime_ns_) {}

MappedFile& MappedFile::operator=(MappedFile&& other) noexcept {
  if (this != &other) {
    release();
    path_ = std::move(other.path_);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
    table_slot_ = std::exchange(other.table_slot_, -1);
    device_ = other.device_;
    inode_ = other.inode_;
    mtime_ns_ = other.mtime_ns_;
  }
  return *this;
}

void MappedFile::release() noexcept {
  unregister_mapping(std::exchange(table_slot_, -1));
  if (data_ != nullptr) ::munmap(const_cast<std::byte*>(data_), size_);
  data_ = nullptr;
  size_ = 0;
}

void MappedFile::check_unchanged() const {
  struct stat status {};
  if (::stat(path_.c_str(), &status) != 0) {
    const int saved = errno;
    throw InputError(fmt::format("{} changed while being read (now: {}); nothing was written",
                                 path_.string(), std::strerror(saved)));
  }
  std::string change;
  if (status.st_dev != device_ || status.st_ino != inode_)
    change = "replaced by another file";
  else if (static_cast<size_t>(status.st_size) != size_)
    change = fmt::format("size {} bytes, now {}", size_, status.st_size);
  else if (mtime_ns(status) != mtime_ns_)
    change = "rewritten in place: its modification time changed";
  if (!change.empty())
    throw InputError(fmt::format(
        "{} changed while being read ({}): results would mix two versions of it, so nothing "
        "was written",
        path_.string(), change));
}

void MappedFile::will_need(size_t offset, size_t length) const {
  advise(data_, size_, offset, length, MADV_WILLNEED);
}

void MappedFile::dont_need(size_t offset, size_t length) const {
  advise(data_, size_, offset, length, MADV_DONTNEED);
}

}  // namespace moeslice
