// Shared pieces of the libFuzzer targets: which exceptions are the expected answer to a bad
// input, a scratch file for readers that take a path, and the fixed inputs a target needs
// besides the fuzzed one (a tokenizer, a model spec).
#pragma once

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <system_error>

#include "common/error.h"

namespace moeslice::fuzz {

// The fuzzed bytes as text.
inline std::string_view as_text(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// Runs `parse`. The library's typed input errors are its answer to a bad input and are
// swallowed; anything else (another exception, a crash, a sanitizer report, a timeout, running
// out of memory) escapes to libFuzzer and is a finding.
template <class Parse>
void expect_input_errors(Parse&& parse) {
  try {
    parse();
  } catch (const InputError&) {
  }
}

// A directory of this process for files the fuzzed readers open by path, under $TMPDIR; removed
// when the process exits normally.
class ScratchDir {
 public:
  ScratchDir() {
    const char* tmp = std::getenv("TMPDIR");
    path_ = std::filesystem::path(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") /
            ("moeslice-fuzz-" + std::to_string(::getpid()));
    std::filesystem::create_directories(path_);
  }
  ~ScratchDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

inline const std::filesystem::path& scratch_dir() {
  static const ScratchDir dir;
  return dir.path();
}

// Writes the fuzzed bytes to scratch_dir()/name and returns the path.
inline std::filesystem::path scratch_file(std::string_view name, std::string_view bytes) {
  auto path = scratch_dir() / name;
  std::ofstream(path, std::ios::binary | std::ios::trunc)
      .write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return path;
}

// A file of the source tree (the example model's tokenizer and config).
inline std::filesystem::path source_file(std::string_view relative) {
  return std::filesystem::path(MOESLICE_SOURCE_DIR) / relative;
}

}  // namespace moeslice::fuzz
