// Matching of added tokens: a byte trie per class (raw / normalised) and the word-boundary and
// whitespace-stripping rules of single_word, lstrip and rstrip.
#include "text/tokenizer_added_tokens.h"

#include <algorithm>

#include <fmt/core.h>

#include "text/tokenizer_unicode.h"

namespace moeslice::text {

void AddedVocabulary::Trie::insert(std::string_view pattern, int32_t token) {
  uint32_t node = 0;
  for (char ch : pattern) {
    const auto byte = static_cast<unsigned char>(ch);
    uint32_t child = 0;
    for (const auto& [b, index] : nodes[node].children) {
      if (b == byte) child = index;
    }
    if (child == 0) {
      child = static_cast<uint32_t>(nodes.size());
      nodes[node].children.emplace_back(byte, child);
      nodes.emplace_back();
    }
    node = child;
  }
  // The first token given a pattern keeps it, as with the reference's automaton.
  if (nodes[node].token < 0) nodes[node].token = token;
  const auto first = static_cast<unsigned char>(pattern.front());
  for (const auto& [b, index] : nodes[0].children) {
    if (b == first) root_child[first] = index;
  }
}

std::pair<size_t, int32_t> AddedVocabulary::Trie::longest_at(std::string_view text,
                                                             size_t at) const {
  std::pair<size_t, int32_t> best{0, -1};
  uint32_t node = root_child[static_cast<unsigned char>(text[at])];
  if (node == 0) return best;
  if (nodes[node].token >= 0) best = {1, nodes[node].token};
  for (size_t i = at + 1; i < text.size(); ++i) {
    const auto byte = static_cast<unsigned char>(text[i]);
    uint32_t child = 0;
    for (const auto& [b, index] : nodes[node].children) {
      if (b == byte) {
        child = index;
        break;
      }
    }
    if (child == 0) break;
    node = child;
    if (nodes[node].token >= 0) best = {i + 1 - at, nodes[node].token};
  }
  return best;
}

AddedVocabulary AddedVocabulary::from_json(const Json& list, const JsonPlace& place,
                                           const Normalizer& normalizer) {
  AddedVocabulary v;
  if (list.is_null()) return v;
  if (!list.is_array()) throw_format(place, "expected a list of added tokens");
  for (size_t i = 0; i < list.size(); ++i) {
    const JsonPlace at = place.index(i);
    const Json& entry = list[i];
    AddedToken t;
    t.id = json_token_id(json_required(entry, "id", at), at.child("id"));
    t.content = json_string(entry, "content", at);
    t.special = json_bool_or(entry, "special", false, at);
    t.single_word = json_bool_or(entry, "single_word", false, at);
    t.lstrip = json_bool_or(entry, "lstrip", false, at);
    t.rstrip = json_bool_or(entry, "rstrip", false, at);
    t.normalized = json_bool_or(entry, "normalized", !t.special, at);
    if (find_invalid_utf8(t.content) != std::string_view::npos) {
      throw_format(at.child("content"), "not valid UTF-8");
    }
    // The reference ignores empty tokens.
    if (t.content.empty()) continue;
    if (static_cast<size_t>(t.id) >= v.index_by_id_.size()) {
      v.index_by_id_.resize(static_cast<size_t>(t.id) + 1, -1);
    }
    v.index_by_id_[static_cast<size_t>(t.id)] = static_cast<int32_t>(v.tokens_.size());
    v.by_content_[t.content] = t.id;
    v.tokens_.push_back(std::move(t));
  }
  // Special tokens are registered before the others, so they win identical patterns.
  std::vector<size_t> order(v.tokens_.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return v.tokens_[a].special && !v.tokens_[b].special;
  });
  for (size_t index : order) {
    const AddedToken& t = v.tokens_[index];
    if (t.normalized) {
      std::string buffer;
      const std::string_view pattern = normalizer.apply(t.content, buffer);
      if (!pattern.empty()) v.normalized_.insert(pattern, static_cast<int32_t>(index));
    } else {
      v.raw_.insert(t.content, static_cast<int32_t>(index));
    }
  }
  return v;
}

const AddedToken* AddedVocabulary::find_id(int32_t id) const {
  if (id < 0 || static_cast<size_t>(id) >= index_by_id_.size()) return nullptr;
  const int32_t index = index_by_id_[static_cast<size_t>(id)];
  return index < 0 ? nullptr : &tokens_[static_cast<size_t>(index)];
}

std::optional<int32_t> AddedVocabulary::find_content(std::string_view content) const {
  auto it = by_content_.find(std::string(content));
  if (it == by_content_.end()) return std::nullopt;
  return it->second;
}

void AddedVocabulary::split(std::string_view text, bool normalized_class,
                            FunctionRef<void(std::string_view, int32_t, size_t)> sink) const {
  const Trie& trie = normalized_class ? normalized_ : raw_;
  if (trie.empty()) {
    if (!text.empty()) sink(text, -1, 0);
    return;
  }
  size_t emitted = 0;  // end of the text already handed to sink
  size_t pos = 0;      // where the automaton resumes: right after the previous raw match
  while (pos < text.size()) {
    if (trie.root_child[static_cast<unsigned char>(text[pos])] == 0) {
      ++pos;
      continue;
    }
    const auto [length, index] = trie.longest_at(text, pos);
    if (index < 0) {
      ++pos;
      continue;
    }
    const AddedToken& token = tokens_[static_cast<size_t>(index)];
    size_t start = pos;
    size_t stop = pos + length;
    pos = stop;
    if (token.single_word) {
      size_t unused = 0;
      const bool word_before =
          start > 0 && is_word_character(utf8_decode_before(text, start, &unused));
      const bool word_after = stop < text.size() && is_word_character(utf8_decode_at(text, stop));
      if (word_before || word_after) continue;
    }
    if (token.lstrip) {
      size_t new_start = start;
      while (new_start > 0) {
        size_t char_start = 0;
        if (!is_unicode_whitespace(utf8_decode_before(text, new_start, &char_start))) break;
        new_start = char_start;
      }
      // Whitespace already taken by the previous token stays with it.
      start = std::max(new_start, emitted);
    }
    if (token.rstrip) {
      while (stop < text.size() && is_unicode_whitespace(utf8_decode_at(text, stop))) {
        stop += utf8_char_length(static_cast<unsigned char>(text[stop]));
      }
    }
    // A match inside whitespace that an rstrip token already swallowed (only possible for
    // tokens that start with whitespace) is clipped rather than emitted twice.
    start = std::max(start, emitted);
    if (stop <= start) continue;
    if (start > emitted) sink(text.substr(emitted, start - emitted), -1, emitted);
    sink(text.substr(start, stop - start), token.id, start);
    emitted = stop;
  }
  if (emitted < text.size()) sink(text.substr(emitted), -1, emitted);
}

}  // namespace moeslice::text
