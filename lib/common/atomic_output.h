// Outputs that appear whole or not at all. Everything is written under a temporary sibling path,
// flushed to disk, and renamed into place by commit(); an output abandoned by an exception is
// removed by the destructor, so no half-written file or directory is ever left behind. Outputs
// follow the rule of io_rules.h; staging entries are cleaned up as staging.h describes (those of
// dead processes when an output is created, this process's own on an interrupting signal).
#pragma once

#include <cstdio>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"
#include "common/io_rules.h"

namespace moeslice {

// A directory output, e.g. a checkpoint. Files go into staging(); commit() renames it to the
// final path.
class AtomicOutputDir {
 public:
  // Throws InputError when `final_path` exists and `overwrite` is false, is not a regular file
  // or directory, or when its parent directory does not exist or is not writable.
  AtomicOutputDir(std::filesystem::path final_path, bool overwrite);
  ~AtomicOutputDir();
  AtomicOutputDir(const AtomicOutputDir&) = delete;
  AtomicOutputDir& operator=(const AtomicOutputDir&) = delete;

  const std::filesystem::path& staging() const { return staging_; }
  const std::filesystem::path& final_path() const { return final_; }
  // Runs `write(staging())`. An IoError it throws (a full disk) is rethrown naming the file by
  // its place in the final output: the staging entry is removed by then, so its name would only
  // mislead.
  template <typename Write>
  void fill(Write&& write) const {
    try {
      write(staging_);
    } catch (const IoError& error) {
      throw naming_final(error);
    }
  }
  // fsyncs every file in staging, then moves staging into place (replacing an old output in one
  // atomic swap: concurrent writers to one output never fail on each other or orphan an output;
  // the last one wins).
  void commit();

 private:
  IoError naming_final(const IoError& error) const;

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
  // The file being written, for a writer that fills it by path (range_copy.h) instead of write();
  // it must keep the file (open it without O_EXCL, truncate rather than replace it).
  const std::filesystem::path& staging() const { return staging_; }

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
