// Post-processors of tokenizer.json (TemplateProcessing, ByteLevel, RobertaProcessing,
// BertProcessing and Sequence), reduced to what they do to one sequence: special token ids
// before and after it, added only when the caller asks for special tokens.
//
// Thread safety: immutable after construction.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "text/tokenizer_json.h"

namespace moeslice::text {

class PostProcessor {
 public:
  PostProcessor() = default;
  // `value` may be null. Unknown types raise UnsupportedError naming the file and the type.
  static PostProcessor from_json(const Json& value, const JsonPlace& place);

  const std::vector<int32_t>& prefix() const { return prefix_; }
  const std::vector<int32_t>& suffix() const { return suffix_; }

 private:
  void add_from_json(const Json& value, const JsonPlace& place);

  std::vector<int32_t> prefix_;
  std::vector<int32_t> suffix_;
};

}  // namespace moeslice::text
