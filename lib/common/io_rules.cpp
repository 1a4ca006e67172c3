// The input/output rule (see io_rules.h): input kinds, output placement and overlap.
#include "common/io_rules.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>
#include <vector>

#include <fmt/core.h>

#include "common/error.h"

namespace moeslice {
namespace fs = std::filesystem;
namespace {

// statfs(2)'s f_type of the kernel's anonymous-pipe file system (linux/magic.h PIPEFS_MAGIC).
constexpr long kPipeFsMagic = 0x50495045;
// Device numbers of /dev/null (Linux's devices.txt: "1 char, 3 = /dev/null").
constexpr unsigned kNullDeviceMajor = 1;
constexpr unsigned kNullDeviceMinor = 3;

std::string describe(const fs::path& path, std::string_view role) {
  return role.empty() ? path.string() : fmt::format("{} {}", role, path.string());
}

struct FileId {
  dev_t device;
  ino_t inode;
  bool operator==(const FileId&) const = default;
};

std::optional<FileId> file_id(const fs::path& path) {
  struct stat status {};
  if (::stat(path.c_str(), &status) != 0) return std::nullopt;
  return FileId{status.st_dev, status.st_ino};
}

// The path and its existing ancestors, nearest first, as device/inode pairs.
std::vector<FileId> ids_of_path_and_ancestors(const fs::path& absolute) {
  std::vector<FileId> ids;
  for (fs::path p = absolute;; p = p.parent_path()) {
    if (const auto id = file_id(p)) ids.push_back(*id);
    if (p == p.parent_path()) break;
  }
  return ids;
}

// "out/" names "out"; without this its parent would be taken to be "out" itself.
fs::path without_trailing_separator(fs::path path) {
  while (!path.has_filename() && path.has_relative_path()) path = path.parent_path();
  return path;
}

// Absolute, with symbolic links and ".." resolved as far as the path exists.
fs::path resolved(const fs::path& path) {
  std::error_code error;
  fs::path absolute = fs::absolute(path, error);
  if (error) absolute = path;
  fs::path canonical = fs::weakly_canonical(absolute, error);
  if (error) canonical = absolute.lexically_normal();
  return without_trailing_separator(canonical);
}

bool overlaps(const fs::path& output, const fs::path& input) {
  const fs::path out = resolved(output);
  const fs::path in = resolved(input);
  const auto [out_it, in_it] = std::mismatch(out.begin(), out.end(), in.begin(), in.end());
  if (in_it == in.end() || out_it == out.end()) return true;  // inside, same, or around
  // Hard links, bind mounts and other second names of one file: compare identities.
  const auto input_id = file_id(in);
  if (!input_id) return false;
  const std::vector<FileId> output_chain = ids_of_path_and_ancestors(out);
  if (std::find(output_chain.begin(), output_chain.end(), *input_id) != output_chain.end())
    return true;
  const auto output_id = file_id(out);
  if (!output_id) return false;
  const std::vector<FileId> input_chain = ids_of_path_and_ancestors(in);
  return std::find(input_chain.begin(), input_chain.end(), *output_id) != input_chain.end();
}

// An input named like an entry the output's writer stages beside it (".NAME.tmp-..."), which
// the writer (or the next run's clean-up of stale entries) may delete.
bool is_staging_name_of(const fs::path& output, const fs::path& input) {
  const fs::path out = resolved(output);
  const fs::path in = resolved(input);
  if (out.parent_path() != in.parent_path()) return false;
  return in.filename().string().starts_with(fmt::format(".{}.tmp-", out.filename().string()));
}

}  // namespace

std::string_view file_kind_name(unsigned mode) {
  if (S_ISREG(mode)) return "a regular file";
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISLNK(mode)) return "a symbolic link";
  return "not a regular file";
}

int open_input_file(const fs::path& path, std::string_view role, bool stream_ok) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0)
    throw InputError(fmt::format("cannot open {}: {}", describe(path, role), std::strerror(errno)));
  struct stat status {};
  if (::fstat(fd, &status) != 0) {
    const int saved = errno;
    ::close(fd);
    throw InputError(fmt::format("cannot stat {}: {}", describe(path, role), std::strerror(saved)));
  }
  bool accepted = S_ISREG(status.st_mode);
  if (!accepted && stream_ok && S_ISFIFO(status.st_mode)) {
    struct statfs file_system {};
    accepted = ::fstatfs(fd, &file_system) == 0 && file_system.f_type == kPipeFsMagic;
  }
  // /dev/null reads as an empty stream (and so is refused later as holding no documents).
  if (!accepted && stream_ok && S_ISCHR(status.st_mode))
    accepted = status.st_rdev == makedev(kNullDeviceMajor, kNullDeviceMinor);
  if (!accepted) {
    ::close(fd);
    throw InputError(fmt::format(
        "{} is {}, not a regular file{}", describe(path, role), file_kind_name(status.st_mode),
        stream_ok ? " (or a pipe such as - or <(...)); a named FIFO or device is not read" : ""));
  }
  // Reads block again as usual (a pipe's writer may be slow).
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  return fd;
}

bool input_exists(const fs::path& path) {
  std::error_code error;
  const bool exists = fs::exists(path, error);
  if (error) throw InputError(fmt::format("cannot read {}: {}", path.string(), error.message()));
  return exists;
}

void check_input_file(const fs::path& path, std::string_view role, bool stream_ok) {
  ::close(open_input_file(path, role, stream_ok));
}

std::string read_input_file(const fs::path& path, uint64_t max_bytes, std::string_view role) {
  const int fd = open_input_file(path, role);
  struct stat status {};
  ::fstat(fd, &status);
  if (static_cast<uint64_t>(status.st_size) > max_bytes) {
    ::close(fd);
    throw InputError(fmt::format("{} has {} bytes, more than the {} bytes read at most",
                                 describe(path, role), status.st_size, max_bytes));
  }
  std::string content(static_cast<size_t>(status.st_size), '\0');
  size_t done = 0;
  // The file may grow while it is read; what is past the size found above is not read.
  while (done < content.size()) {
    const ssize_t got = ::read(fd, content.data() + done, content.size() - done);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) {
      const int saved = errno;
      ::close(fd);
      throw IoError(fmt::format("cannot read {}: {}", describe(path, role), std::strerror(saved)));
    }
    if (got == 0) break;  // shrank while read
    done += static_cast<size_t>(got);
  }
  ::close(fd);
  content.resize(done);
  return content;
}

void check_output_outside_inputs(const fs::path& output, std::span<const fs::path> inputs) {
  for (const auto& input : inputs) {
    if (overlaps(output, input))
      throw InputError(fmt::format("output {} overlaps the input {}: choose another output path",
                                   output.string(), input.string()));
    if (is_staging_name_of(output, input))
      throw InputError(fmt::format(
          "output {} would stage its files under names like the input {}, which its clean-up "
          "removes: choose another output path or rename the input",
          output.string(), input.string()));
  }
}

void check_output_replaceable(const fs::path& output, bool overwrite) {
  struct stat status {};
  if (::lstat(output.c_str(), &status) != 0) return;  // nothing there to replace
  // A symbolic link is replaced, not followed, but one to a device is surely a mistake.
  struct stat target {};
  if (S_ISLNK(status.st_mode) && ::stat(output.c_str(), &target) == 0) status = target;
  if (!S_ISREG(status.st_mode) && !S_ISDIR(status.st_mode) && !S_ISLNK(status.st_mode))
    throw InputError(fmt::format(
        "output {} is {}: outputs are regular files or directories (refused even with --force)",
        output.string(), file_kind_name(status.st_mode)));
  if (!overwrite)
    throw InputError(
        fmt::format("output {} already exists (use --force to replace it)", output.string()));
}

void check_output_location(const fs::path& output) {
  if (output.empty()) throw InputError("output path is empty: name a file or directory to write");
  std::error_code ignored;
  // As written (links are followed by the checks themselves), so the message names it so.
  const fs::path parent =
      without_trailing_separator(fs::absolute(output, ignored).lexically_normal()).parent_path();
  std::error_code error;
  if (!fs::is_directory(parent, error))
    throw InputError(fmt::format("cannot write {}: directory {} does not exist", output.string(),
                                 parent.string()));
  if (::access(parent.c_str(), W_OK | X_OK) != 0)
    throw InputError(fmt::format("cannot write {}: directory {} is not writable ({})",
                                 output.string(), parent.string(), std::strerror(errno)));
}

void check_new_output(const fs::path& output, std::span<const fs::path> inputs, bool overwrite) {
  check_output_location(output);
  check_output_outside_inputs(output, inputs);
  check_output_replaceable(output, overwrite);
}

}  // namespace moeslice
