// Outputs that appear whole or not at all. Everything is written under a temporary sibling path,
// flushed to disk, and renamed into place by commit(); an output abandoned by an exception is
// removed by the destructor, so no half-written file or directory is ever left behind.
#pragma once

#include <cstdio>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace moeslice {

// Refuses (InputError) an output path equal to or inside any of `inputs`, so a command can never
// write into what it reads.
void check_output_outside_inputs(const std::filesystem::path& output,
                                 std::span<const std::filesystem::path> inputs);

// Refuses (InputError "output ... already exists (use --force to replace it)") an existing
// `output` unless `overwrite`; the outputs below refuse the same way when they are created.
void check_output_replaceable(const std::filesystem::path& output, bool overwrite);

// Both checks, as a command makes them before doing any work: fail before the hours of compute,
// not after.
void check_new_output(const std::filesystem::path& output,
                      std::span<const std::filesystem::path> inputs, bool overwrite);

// A directory output, e.g. a checkpoint. Files go into staging(); commit() renames it to the
// final path.
class AtomicOutputDir {
 public:
  // Throws InputError when `final_path` exists and `overwrite` is false, or when its parent
  // directory does not exist.
  AtomicOutputDir(std::filesystem::path final_path, bool overwrite);
  ~AtomicOutputDir();
  AtomicOutputDir(const AtomicOutputDir&) = delete;
  AtomicOutputDir& operator=(const AtomicOutputDir&) = delete;

  const std::filesystem::path& staging() const { return staging_; }
  const std::filesystem::path& final_path() const { return final_; }
  // fsyncs every file in staging, then moves staging into place (replacing an old output).
  void commit();

 private:
  std::filesystem::path final_;
  std::filesystem::path staging_;
  bool overwrite_;
  bool committed_ = false;
};

// A single-file output written through a FILE*.
class AtomicOutputFile {
 public:
  AtomicOutputFile(std::filesystem::path final_path, bool overwrite);
  ~AtomicOutputFile();
  AtomicOutputFile(const AtomicOutputFile&) = delete;
  AtomicOutputFile& operator=(const AtomicOutputFile&) = delete;

  // Appends bytes; throws IoError (naming the path) when the disk refuses.
  void write(std::span<const std::byte> bytes);
  void write(std::string_view text);
  // Flushes, fsyncs and renames into place.
  void commit();
  const std::filesystem::path& final_path() const { return final_; }

 private:
  std::filesystem::path final_;
  std::filesystem::path staging_;
  std::FILE* file_ = nullptr;
  bool overwrite_;
  bool committed_ = false;
};

// Writes a whole small file atomically (temporary sibling + fsync + rename).
void write_file_atomically(const std::filesystem::path& path, std::string_view content,
                           bool overwrite);

// An absolute, normalised spelling of `path` without a trailing separator, for recording where
// an input came from ("/data/models/olmoe" for "olmoe/" run in /data/models).
std::string normalized_absolute_path(const std::filesystem::path& path);

// fsyncs a file or directory by path; throws IoError on failure.
void sync_path(const std::filesystem::path& path);

}  // namespace moeslice
