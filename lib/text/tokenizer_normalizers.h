// Normalizers of tokenizer.json (NFC, NFD, NFKC, NFKD, Lowercase, Strip, Replace, Prepend and
// Sequence), flattened into one list of steps applied in order to each piece of text that lies
// between added tokens.
//
// Thread safety: immutable after construction; apply() may run concurrently.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "text/tokenizer_json.h"
#include "text/tokenizer_regex.h"
#include "text/tokenizer_unicode.h"

namespace moeslice::text {

class Normalizer {
 public:
  // An identity normalizer (tokenizer.json "normalizer": null).
  Normalizer() = default;
  // `value` may be null. Unknown types raise UnsupportedError naming the file and the type.
  static Normalizer from_json(const Json& value, const JsonPlace& place);

  // Returns the normalised text: either `text` itself (nothing to change) or a view of `buffer`.
  std::string_view apply(std::string_view text, std::string& buffer) const;
  bool is_identity() const { return steps_.empty(); }

 private:
  struct Step {
    enum class Kind { kUnicode, kLowercase, kStrip, kReplace, kPrepend };
    Kind kind;
    NormalForm form = NormalForm::kNFC;
    bool strip_left = false;
    bool strip_right = false;
    std::shared_ptr<const Regex> pattern;  // Replace
    std::string content;                   // Replace: replacement; Prepend: prefix
  };
  void add_from_json(const Json& value, const JsonPlace& place);
  // Applies one step; returns false when the text is unchanged.
  static bool apply_step(const Step& step, std::string_view text, std::string& out);

  std::vector<Step> steps_;
};

// The `pattern` member of Replace and Split: {"String": "..."} (literal) or {"Regex": "..."}.
std::shared_ptr<const Regex> pattern_from_json(const Json& obj, const JsonPlace& place);

// Replaces every match of `pattern` in `text` by `content`; returns false when nothing matched.
bool replace_all(const Regex& pattern, std::string_view content, std::string_view text,
                 std::string& out);

}  // namespace moeslice::text
