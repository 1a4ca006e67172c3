// AtomicOutputDir / AtomicOutputFile: temporary sibling, fsync, rename.
#include "common/atomic_output.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <functional>

#include <fmt/core.h>

#include "common/error.h"
#include "common/staging.h"

namespace moeslice {
namespace fs = std::filesystem;
namespace {

// How often a swap into place is tried again when a concurrent writer changes the output between
// two steps (each try is a rename; they fail only under such a race).
constexpr int kMaxSwapAttempts = 64;

// "out/" names the directory "out"; left as is, its parent would be taken to be "out" itself and
// the temporary sibling would be created inside the output.
fs::path without_trailing_separator(fs::path path) {
  while (!path.has_filename() && path.has_relative_path()) path = path.parent_path();
  return path;
}

fs::path absolute_parent(const fs::path& path) {
  fs::path parent = fs::absolute(path).parent_path();
  return parent;
}

// Checks the output, clears stale staging entries beside it, and creates a staging entry with
// `create` (true on success, errno set otherwise). The entry is tracked before it exists and
// created under the staging lock, so a signal's clean-up never runs between the two.
fs::path create_staging(const fs::path& final_path, bool overwrite,
                        const std::function<bool(const fs::path&)>& create) {
  check_output_location(final_path);
  check_output_replaceable(final_path, overwrite);
  remove_stale_staging(final_path);
  fs::path staging = staging_path_for(final_path);
  const auto lock = lock_staging();
  track_staging(staging);
  if (!create(staging)) {
    const int saved = errno;
    untrack_staging(staging);
    throw IoError(fmt::format("cannot create {}: {}", staging.string(), std::strerror(saved)));
  }
  return staging;
}

IoError rename_error(const fs::path& from, const fs::path& to, int error) {
  return IoError(
      fmt::format("cannot rename {} to {}: {}", from.string(), to.string(), std::strerror(error)));
}

bool swap_unsupported(int error) { return error == EINVAL || error == ENOSYS || error == ENOTSUP; }

// For file systems without renameat2 flags: move an existing output aside, then rename.
void replace_by_moving_aside(const fs::path& staging, const fs::path& final_path, bool overwrite) {
  for (int attempt = 0; attempt < kMaxSwapAttempts; ++attempt) {
    std::error_code error;
    fs::path old_output;
    if (fs::symlink_status(final_path, error).type() != fs::file_type::not_found) {
      check_output_replaceable(final_path, overwrite);
      old_output = staging_path_for(final_path);
      track_staging(old_output);
      if (::rename(final_path.c_str(), old_output.c_str()) != 0) {
        untrack_staging(old_output);
        if (errno == ENOENT) continue;  // a concurrent writer moved it first
        throw IoError(
            fmt::format("cannot move old {} aside: {}", final_path.string(), std::strerror(errno)));
      }
    }
    const int result = ::rename(staging.c_str(), final_path.c_str());
    const int saved = errno;
    if (!old_output.empty()) {
      fs::remove_all(old_output, error);
      untrack_staging(old_output);
    }
    if (result == 0) return;
    // A concurrent writer's output arrived in between: replace it in turn.
    if (saved == ENOTEMPTY || saved == EEXIST) continue;
    throw rename_error(staging, final_path, saved);
  }
  throw IoError(
      fmt::format("cannot replace {}: other processes keep replacing it", final_path.string()));
}

// Moves `staging` to `final_path` atomically: into place when nothing is there, else swapped
// with the old output (renameat2 RENAME_EXCHANGE), which is then removed from the staging path.
// The output path never disappears in between, and a concurrent writer's output is replaced
// rather than making this rename fail.
void replace_with(const fs::path& staging, const fs::path& final_path, bool overwrite) {
  const auto lock = lock_staging();
  for (int attempt = 0;; ++attempt) {
    if (attempt == kMaxSwapAttempts)
      throw IoError(
          fmt::format("cannot replace {}: other processes keep replacing it", final_path.string()));
    if (::renameat2(AT_FDCWD, staging.c_str(), AT_FDCWD, final_path.c_str(), RENAME_NOREPLACE) == 0)
      break;
    if (swap_unsupported(errno)) {
      replace_by_moving_aside(staging, final_path, overwrite);
      break;
    }
    if (errno != EEXIST) throw rename_error(staging, final_path, errno);
    check_output_replaceable(final_path, overwrite);
    if (::renameat2(AT_FDCWD, staging.c_str(), AT_FDCWD, final_path.c_str(), RENAME_EXCHANGE) ==
        0) {
      std::error_code error;
      fs::remove_all(staging, error);  // now the old output
      break;
    }
    if (errno == ENOENT) continue;  // a concurrent writer removed the output in between
    if (swap_unsupported(errno)) {
      replace_by_moving_aside(staging, final_path, overwrite);
      break;
    }
    throw rename_error(staging, final_path, errno);
  }
  untrack_staging(staging);
  sync_path(absolute_parent(final_path));
}

}  // namespace

void sync_path(const fs::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    throw IoError(fmt::format("cannot open {} to sync: {}", path.string(), std::strerror(errno)));
  const int result = ::fsync(fd);
  const int saved = errno;
  ::close(fd);
  // Some file systems refuse fsync on directories (EINVAL); that is not a data-loss risk.
  if (result != 0 && saved != EINVAL)
    throw IoError(fmt::format("cannot sync {}: {}", path.string(), std::strerror(saved)));
}

std::string normalized_absolute_path(const fs::path& path) {
  return without_trailing_separator(fs::absolute(path).lexically_normal()).string();
}

AtomicOutputDir::AtomicOutputDir(fs::path final_path, bool overwrite)
    : final_(without_trailing_separator(std::move(final_path))), overwrite_(overwrite) {
  staging_ = create_staging(final_, overwrite_,
                            [](const fs::path& path) { return ::mkdir(path.c_str(), 0777) == 0; });
}

AtomicOutputDir::~AtomicOutputDir() {
  if (!committed_) {
    std::error_code ignored;
    fs::remove_all(staging_, ignored);
    untrack_staging(staging_);
  }
}

IoError AtomicOutputDir::naming_final(const IoError& error) const {
  std::string message = error.what();
  const std::string staging = staging_.string(), final_name = final_.string();
  for (size_t at = message.find(staging); at != std::string::npos;
       at = message.find(staging, at + final_name.size()))
    message.replace(at, staging.size(), final_name);
  return IoError(message);
}

void AtomicOutputDir::commit() {
  fill([](const fs::path& staging) {
    for (const auto& entry : fs::recursive_directory_iterator(staging))
      if (entry.is_regular_file()) sync_path(entry.path());
    sync_path(staging);
  });
  replace_with(staging_, final_, overwrite_);
  committed_ = true;
}

AtomicOutputFile::AtomicOutputFile(fs::path final_path, bool overwrite)
    : final_(without_trailing_separator(std::move(final_path))), overwrite_(overwrite) {
  if (fs::is_directory(final_))
    throw InputError(fmt::format("output {} is a directory", final_.string()));
  staging_ = create_staging(final_, overwrite_, [this](const fs::path& path) {
    file_ = std::fopen(path.c_str(), "wbx");
    return file_ != nullptr;
  });
}

AtomicOutputFile::~AtomicOutputFile() {
  if (file_ != nullptr) std::fclose(file_);
  if (!committed_) {
    std::error_code ignored;
    fs::remove(staging_, ignored);
    untrack_staging(staging_);
  }
}

void AtomicOutputFile::write(std::span<const std::byte> bytes) {
  if (bytes.empty()) return;
  if (std::fwrite(bytes.data(), 1, bytes.size(), file_) != bytes.size())
    throw IoError(fmt::format("cannot write {}: {}", final_.string(), std::strerror(errno)));
}

void AtomicOutputFile::write(std::string_view text) {
  write(std::as_bytes(std::span(text.data(), text.size())));
}

void AtomicOutputFile::commit() {
  if (std::fflush(file_) != 0 || ::fsync(::fileno(file_)) != 0)
    throw IoError(fmt::format("cannot write {}: {}", final_.string(), std::strerror(errno)));
  std::fclose(file_);
  file_ = nullptr;
  replace_with(staging_, final_, overwrite_);
  committed_ = true;
}

void write_file_atomically(const fs::path& path, std::string_view content, bool overwrite) {
  AtomicOutputFile output(path, overwrite);
  output.write(content);
  output.commit();
}

}  // namespace moeslice
