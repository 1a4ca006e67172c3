// A compiled PCRE2 pattern (UTF + UCP, JIT-compiled when the platform allows) used by the Split
// and ByteLevel pre-tokenizers and the Replace normalizer and decoder.
//
// Thread safety: a Regex is immutable after construction and may be shared between threads;
// the per-match scratch state (match data, JIT stack) is kept per thread.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

namespace moeslice::text {

class Regex {
 public:
  enum class Syntax { kRegex, kLiteral };

  // Throws FormatError naming `where` (file and JSON path) when the pattern does not compile.
  Regex(std::string_view pattern, Syntax syntax, std::string_view where);

  // Finds the leftmost match in `text` (valid UTF-8) starting at or after byte `start` (a
  // character boundary). Lookbehind and lookahead see the whole of `text`.
  bool find(std::string_view text, size_t start, size_t* match_start, size_t* match_end) const;

  // Calls fn(begin, end) for each successive match, including empty ones; after an empty match
  // the search resumes one character further, as the reference library's regex does.
  template <typename Fn>
  void for_each_match(std::string_view text, Fn&& fn) const {
    size_t pos = 0;
    size_t begin = 0;
    size_t end = 0;
    while (pos <= text.size() && find(text, pos, &begin, &end)) {
      fn(begin, end);
      if (end > begin) {
        pos = end;
      } else {
        if (end >= text.size()) break;
        pos = end + next_char_length(text, end);
      }
    }
  }

  const std::string& pattern() const { return pattern_; }

 private:
  static size_t next_char_length(std::string_view text, size_t at);

  struct Code;
  std::shared_ptr<const Code> code_;
  std::string pattern_;
};

// The pre-tokenization regex of GPT-2's byte-level BPE (the ByteLevel pre-tokenizer's own).
inline constexpr std::string_view kGpt2SplitPattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

}  // namespace moeslice::text
