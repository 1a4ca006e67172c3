// A corpus of already-tokenised documents: JSON Lines, one document per line,
// {"input_ids": [...], "id": optional}. Blank lines are skipped. Kept apart from the forward
// pass so a text corpus read through a tokenizer can produce the same TokenDocument list.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace moeslice {

struct TokenDocument {
  std::string id;  // the line's "id" (a string, or a number printed), else its document index
  std::vector<int32_t> tokens;
  size_t line = 0;  // 1-based line in the corpus file
};

// Reads every document. Throws FormatError naming the file and line for invalid JSON, a missing
// or non-array input_ids, a non-integer id, an id outside [0, vocab), or an empty document;
// InputError when the file cannot be read or holds no document.
std::vector<TokenDocument> read_token_corpus(const std::filesystem::path& path, int64_t vocab);

}  // namespace moeslice
