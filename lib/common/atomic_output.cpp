// AtomicOutputDir / AtomicOutputFile: temporary sibling, fsync, rename.
#include "common/atomic_output.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <random>

#include <fmt/core.h>

#include "common/error.h"

namespace moeslice {
namespace fs = std::filesystem;
namespace {

fs::path temporary_sibling(const fs::path& final_path) {
  std::random_device device;
  const auto tag =
      fmt::format(".{}.tmp-{}-{:08x}", final_path.filename().string(), ::getpid(), device());
  return final_path.parent_path() / tag;
}

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

void require_writable_target(const fs::path& final_path, bool overwrite) {
  if (final_path.empty()) throw InputError("output path is empty");
  check_output_replaceable(final_path, overwrite);
  std::error_code error;
  const fs::path parent = absolute_parent(final_path);
  if (!fs::is_directory(parent, error))
    throw InputError(fmt::format("cannot write {}: directory {} does not exist",
                                 final_path.string(), parent.string()));
}

// Moves `staging` to `final_path`; an existing output is first moved aside, then removed.
void replace_with(const fs::path& staging, const fs::path& final_path, bool overwrite) {
  std::error_code error;
  fs::path old_output;
  if (fs::exists(final_path, error)) {
    check_output_replaceable(final_path, overwrite);
    old_output = temporary_sibling(final_path);
    fs::rename(final_path, old_output, error);
    if (error)
      throw IoError(
          fmt::format("cannot move old {} aside: {}", final_path.string(), error.message()));
  }
  fs::rename(staging, final_path, error);
  if (error) {
    if (!old_output.empty()) fs::rename(old_output, final_path, error);
    throw IoError(fmt::format("cannot rename {} to {}: {}", staging.string(), final_path.string(),
                              error.message()));
  }
  sync_path(absolute_parent(final_path));
  if (!old_output.empty()) fs::remove_all(old_output, error);
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

void check_output_outside_inputs(const fs::path& output, std::span<const fs::path> inputs) {
  const fs::path out = fs::weakly_canonical(fs::absolute(output));
  for (const auto& input : inputs) {
    const fs::path in = fs::weakly_canonical(fs::absolute(input));
    auto [out_it, in_it] = std::mismatch(out.begin(), out.end(), in.begin(), in.end());
    const bool inside_input = in_it == in.end();
    const bool is_parent_of_input = out_it == out.end();
    if (inside_input || is_parent_of_input)
      throw InputError(fmt::format("output {} overlaps the input {}: choose another output path",
                                   output.string(), input.string()));
  }
}

void check_output_replaceable(const fs::path& output, bool overwrite) {
  std::error_code error;
  if (!overwrite && fs::exists(output, error))
    throw InputError(
        fmt::format("output {} already exists (use --force to replace it)", output.string()));
}

void check_new_output(const fs::path& output, std::span<const fs::path> inputs, bool overwrite) {
  check_output_outside_inputs(output, inputs);
  check_output_replaceable(output, overwrite);
}

AtomicOutputDir::AtomicOutputDir(fs::path final_path, bool overwrite)
    : final_(without_trailing_separator(std::move(final_path))), overwrite_(overwrite) {
  require_writable_target(final_, overwrite_);
  staging_ = temporary_sibling(final_);
  std::error_code error;
  fs::create_directory(staging_, error);
  if (error) throw IoError(fmt::format("cannot create {}: {}", staging_.string(), error.message()));
}

AtomicOutputDir::~AtomicOutputDir() {
  if (!committed_) {
    std::error_code ignored;
    fs::remove_all(staging_, ignored);
  }
}

void AtomicOutputDir::commit() {
  for (const auto& entry : fs::recursive_directory_iterator(staging_))
    if (entry.is_regular_file()) sync_path(entry.path());
  sync_path(staging_);
  replace_with(staging_, final_, overwrite_);
  committed_ = true;
}

AtomicOutputFile::AtomicOutputFile(fs::path final_path, bool overwrite)
    : final_(without_trailing_separator(std::move(final_path))), overwrite_(overwrite) {
  require_writable_target(final_, overwrite_);
  if (fs::is_directory(final_))
    throw InputError(fmt::format("output {} is a directory", final_.string()));
  staging_ = temporary_sibling(final_);
  file_ = std::fopen(staging_.c_str(), "wbx");
  if (file_ == nullptr)
    throw IoError(fmt::format("cannot create {}: {}", staging_.string(), std::strerror(errno)));
}

AtomicOutputFile::~AtomicOutputFile() {
  if (file_ != nullptr) std::fclose(file_);
  if (!committed_) {
    std::error_code ignored;
    fs::remove(staging_, ignored);
  }
}

void AtomicOutputFile::write(std::span<const std::byte> bytes) {
  if (bytes.empty()) return;
  if (std::fwrite(bytes.data(), 1, bytes.size(), file_) != bytes.size())
    throw IoError(fmt::format("cannot write {}: {}", staging_.string(), std::strerror(errno)));
}

void AtomicOutputFile::write(std::string_view text) {
  write(std::as_bytes(std::span(text.data(), text.size())));
}

void AtomicOutputFile::commit() {
  if (std::fflush(file_) != 0 || ::fsync(::fileno(file_)) != 0)
    throw IoError(fmt::format("cannot flush {}: {}", staging_.string(), std::strerror(errno)));
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
