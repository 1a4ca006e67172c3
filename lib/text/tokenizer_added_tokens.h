// Added tokens (tokenizer.json "added_tokens"): special and user tokens that are cut out of the
// text before the model sees it, by leftmost-longest matching, honouring single_word, lstrip,
// rstrip and normalized like the reference library's AddedVocabulary.
//
// Thread safety: immutable after construction; split() may run concurrently.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "text/tokenizer_json.h"
#include "text/tokenizer_normalizers.h"
#include "text/tokenizer_pre_tokenizers.h"

namespace moeslice::text {

struct AddedToken {
  int32_t id = 0;
  std::string content;
  bool single_word = false;
  bool lstrip = false;
  bool rstrip = false;
  bool normalized = true;
  bool special = false;
};

class AddedVocabulary {
 public:
  AddedVocabulary() = default;
  // `list` may be null. Tokens with normalized=true are matched in normalised text, so their
  // content goes through `normalizer` first.
  static AddedVocabulary from_json(const Json& list, const JsonPlace& place,
                                   const Normalizer& normalizer);

  // Cuts `text` at the tokens of one class (matched against normalised text or not). Calls
  // sink(piece, id, offset): id >= 0 for a token, -1 for the text between tokens. Empty text
  // pieces are skipped.
  void split(std::string_view text, bool normalized_class,
             FunctionRef<void(std::string_view, int32_t, size_t)> sink) const;

  const std::vector<AddedToken>& tokens() const { return tokens_; }
  const AddedToken* find_id(int32_t id) const;
  std::optional<int32_t> find_content(std::string_view content) const;

 private:
  // A byte trie over the patterns of one class; walking it from a position yields the longest
  // pattern that starts there.
  struct Trie {
    struct Node {
      std::vector<std::pair<unsigned char, uint32_t>> children;
      int32_t token = -1;  // index into tokens_ when a pattern ends here
    };
    std::vector<Node> nodes{Node{}};
    uint32_t root_child[256] = {};  // the root's children by byte; 0 = no pattern starts so

    void insert(std::string_view pattern, int32_t token);
    // Length of the longest pattern starting at text[at] and its token index, or {0, -1}.
    std::pair<size_t, int32_t> longest_at(std::string_view text, size_t at) const;
    bool empty() const { return nodes.size() == 1; }
  };

  std::vector<AddedToken> tokens_;
  std::vector<int32_t> index_by_id_;  // id -> index into tokens_, or -1
  std::unordered_map<std::string, int32_t> by_content_;
  Trie raw_;
  Trie normalized_;
};

}  // namespace moeslice::text
