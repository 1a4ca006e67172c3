// Skipping bad records (--skip-bad), shared by the corpus and multiple-choice task readers: a
// record that fails with FormatError is either fatal or counted, with the first few messages kept
// for the warning.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "common/error.h"

namespace moeslice {

// How many skipped records' messages are kept for the warning.
inline constexpr size_t kSkippedRecordExamples = 3;

// Returns read()'s first good result (an empty optional at the end of the input). A FormatError
// is rethrown unless `skip_bad`, in which case it is counted in `skipped_count` (its message
// kept in `examples` while there are few) and the next record read.
template <typename Read>
auto read_skipping_bad(Read read, bool skip_bad, int64_t& skipped_count,
                       std::vector<std::string>& examples) -> decltype(read()) {
  for (;;) {
    try {
      return read();
    } catch (const FormatError& error) {
      if (!skip_bad) throw;
      ++skipped_count;
      if (examples.size() < kSkippedRecordExamples) examples.emplace_back(error.what());
    }
  }
}

}  // namespace moeslice
