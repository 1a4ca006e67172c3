// Decoders of tokenizer.json (ByteLevel, Metaspace, Replace, ByteFallback, Fuse, Strip and
// Sequence): they turn the token strings of an id sequence back into text.
//
// Thread safety: immutable after construction; decode() may run concurrently.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "text/tokenizer_json.h"
#include "text/tokenizer_regex.h"

namespace moeslice::text {

class Decoder {
 public:
  // No decoder: tokens are joined with single spaces, as in the reference.
  Decoder() = default;
  // `value` may be null. Unknown types raise UnsupportedError naming the file and the type.
  static Decoder from_json(const Json& value, const JsonPlace& place);

  std::string decode(std::vector<std::string> tokens) const;

 private:
  struct Step {
    enum class Kind { kByteLevel, kMetaspace, kReplace, kByteFallback, kFuse, kStrip };
    Kind kind = Kind::kFuse;
    std::string text;                      // Metaspace replacement, Replace content, Strip char
    bool flag = false;                     // Metaspace: drop the replacement in the first token
    std::shared_ptr<const Regex> pattern;  // Replace
    size_t start = 0;                      // Strip
    size_t stop = 0;                       // Strip
  };
  void add_from_json(const Json& value, const JsonPlace& place);
  static void apply(const Step& step, std::vector<std::string>& tokens);

  std::vector<Step> steps_;
  bool present_ = false;
};

}  // namespace moeslice::text
