// Post-processors: the single-sequence template of each kind, composed in order for Sequence.
#include "text/tokenizer_post_processors.h"

#include <fmt/core.h>

#include "common/json_parse.h"

namespace moeslice::text {

namespace {

constexpr std::string_view kSupported =
    "TemplateProcessing, ByteLevel, RobertaProcessing, BertProcessing, Sequence";

// RobertaProcessing / BertProcessing store ["<s>", 0] pairs.
int32_t pair_id(const Json& obj, std::string_view key, const JsonPlace& place) {
  const Json& pair = json_required(obj, key, place);
  if (!pair.is_array() || pair.size() != 2) {
    throw_format(place.child(key),
                 fmt::format("expected [token, id], found {}", json_excerpt(pair)));
  }
  return json_token_id(pair[1], place.child(key).index(1));
}

}  // namespace

PostProcessor PostProcessor::from_json(const Json& value, const JsonPlace& place) {
  PostProcessor p;
  if (!value.is_null()) p.add_from_json(value, place);
  return p;
}

void PostProcessor::add_from_json(const Json& value, const JsonPlace& place) {
  const std::string type = json_type(value, place);
  std::vector<int32_t> before;
  std::vector<int32_t> after;
  if (type == "Sequence") {
    const Json& list = json_required(value, "processors", place);
    if (!list.is_array()) throw_format(place.child("processors"), "expected a list");
    // Each processor wraps what the previous ones produced.
    for (size_t i = 0; i < list.size(); ++i) {
      add_from_json(list[i], place.sequence_item("processors", i));
    }
    return;
  }
  if (type == "ByteLevel") {
    return;  // only trims offsets; no ids change
  }
  if (type == "RobertaProcessing" || type == "BertProcessing") {
    before.push_back(pair_id(value, "cls", place));
    after.push_back(pair_id(value, "sep", place));
  } else if (type == "TemplateProcessing") {
    const Json& single = json_required(value, "single", place);
    const JsonPlace single_place = place.child("single");
    if (!single.is_array()) throw_format(single_place, "expected a list of template pieces");
    const Json& specials = json_required(value, "special_tokens", place);
    bool seen_sequence = false;
    for (size_t i = 0; i < single.size(); ++i) {
      const JsonPlace at = single_place.index(i);
      const Json& piece = single[i];
      if (const Json* seq = json_optional(piece, "Sequence", at); seq != nullptr) {
        const std::string id = json_string(*seq, "id", at.child("Sequence"));
        if (id != "A") {
          throw_format(at, fmt::format("the single-sequence template uses sequence '{}'", id));
        }
        seen_sequence = true;
        continue;
      }
      const Json* special = json_optional(piece, "SpecialToken", at);
      if (special == nullptr)
        throw_format(at, "expected {\"Sequence\": ...} or {\"SpecialToken\": ...}");
      const std::string name = json_string(*special, "id", at.child("SpecialToken"));
      const JsonPlace specials_place = place.child("special_tokens");
      const Json& entry = json_required(specials, name, specials_place);
      const Json& ids = json_required(entry, "ids", specials_place.child(name));
      if (!ids.is_array()) throw_format(specials_place.child(name).child("ids"), "expected a list");
      for (size_t k = 0; k < ids.size(); ++k) {
        const int32_t id = json_token_id(ids[k], specials_place.child(name).child("ids").index(k));
        (seen_sequence ? after : before).push_back(id);
      }
    }
    if (!seen_sequence) throw_format(single_place, "the template has no $A sequence");
  } else {
    throw_unsupported_type(place, "post-processor", type, kSupported);
  }
  prefix_.insert(prefix_.begin(), before.begin(), before.end());
  suffix_.insert(suffix_.end(), after.begin(), after.end());
}

}  // namespace moeslice::text
