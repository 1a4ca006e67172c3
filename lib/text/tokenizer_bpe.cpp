// BPE: loading vocabulary and merges from tokenizer.json, and encoding one word.
#include "text/tokenizer_bpe.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <memory>
#include <unordered_map>

#include <fmt/core.h>

#include "common/error.h"
#include "common/json_parse.h"
#include "text/tokenizer_byte_level.h"
#include "text/tokenizer_unicode.h"

namespace moeslice::text {

// ---- MergeTable -------------------------------------------------------------------------------

void MergeTable::reserve(size_t count) {
  while ((mask_ + 1) < count * 2) grow();
}

void MergeTable::grow() {
  std::vector<Slot> old = std::move(slots_);
  slots_ = std::vector<Slot>(old.size() * 2);
  mask_ = slots_.size() - 1;
  for (const Slot& slot : old) {
    if (slot.key == kEmpty) continue;
    size_t i = mix(slot.key) & mask_;
    while (slots_[i].key != kEmpty) i = (i + 1) & mask_;
    slots_[i] = slot;
  }
}

void MergeTable::insert_or_assign(uint64_t k, Merge m) {
  if ((size_ + 1) * 2 > slots_.size()) grow();
  size_t i = mix(k) & mask_;
  while (slots_[i].key != kEmpty && slots_[i].key != k) i = (i + 1) & mask_;
  if (slots_[i].key == kEmpty) ++size_;
  slots_[i].key = k;
  slots_[i].merge = m;
}

// ---- VocabTable ---------------------------------------------------------------------------------

void VocabTable::reserve(size_t count) {
  while ((mask_ + 1) < count * 2) grow();
}

void VocabTable::grow() {
  std::vector<Slot> old = std::move(slots_);
  slots_ = std::vector<Slot>(old.size() * 2);
  mask_ = slots_.size() - 1;
  for (const Slot& slot : old) {
    if (slot.id < 0) continue;
    size_t i = slot.hash & mask_;
    while (slots_[i].id >= 0) i = (i + 1) & mask_;
    slots_[i] = slot;
  }
}

void VocabTable::insert(std::string_view key, int32_t id) {
  if ((size_ + 1) * 2 > slots_.size()) grow();
  const uint64_t h = std::hash<std::string_view>{}(key);
  size_t i = h & mask_;
  while (slots_[i].id >= 0) {
    const Slot& slot = slots_[i];
    if (slot.hash == h && slot.length == key.size() &&
        keys_.compare(slot.offset, slot.length, key) == 0) {
      slots_[i].id = id;
      return;
    }
    i = (i + 1) & mask_;
  }
  slots_[i] = {h, static_cast<uint32_t>(keys_.size()), static_cast<uint32_t>(key.size()), id};
  keys_.append(key);
  ++size_;
}

// ---- per-thread scratch -------------------------------------------------------------------------

namespace {

// Words longer than this are encoded every time: long runs (whitespace, base64) rarely repeat
// and would crowd the cache.
constexpr size_t kMaxCachedWordBytes = 256;
// The cache is dropped wholesale when it holds this many words; cheap and good enough for text
// whose vocabulary of words is Zipfian.
constexpr size_t kMaxCachedWords = 1 << 17;

struct Symbol {
  int32_t id;
  int32_t prev;
  int32_t next;
  bool alive;
};

struct Candidate {
  int32_t rank;
  int32_t pos;
  // std::push_heap builds a max-heap; the "largest" candidate must be the lowest rank, leftmost.
  bool operator<(const Candidate& other) const {
    return rank != other.rank ? rank > other.rank : pos > other.pos;
  }
};

// Encoded words of one thread: an open-addressing table over a key arena and an id arena, so a
// hit costs one hash and about three cache lines (slot, key bytes, ids) with no node chasing.
class WordCache {
 public:
  bool find(std::string_view word, size_t hash, std::vector<int32_t>& out) const {
    if (slots_.empty()) return false;
    for (size_t i = hash & mask_;; i = (i + 1) & mask_) {
      const Slot& slot = slots_[i];
      if (slot.key_length == 0) return false;
      if (slot.hash == hash && slot.key_length == word.size() &&
          std::memcmp(keys_.data() + slot.key_offset, word.data(), word.size()) == 0) {
        out.insert(out.end(), ids_.begin() + slot.ids_offset,
                   ids_.begin() + slot.ids_offset + slot.ids_count);
        return true;
      }
    }
  }

  void insert(std::string_view word, size_t hash, const std::vector<int32_t>& ids) {
    if (word.empty() || word.size() > kMaxCachedWordBytes || ids.size() > UINT16_MAX) return;
    if (size_ >= kMaxCachedWords) clear();
    if ((size_ + 1) * 2 > slots_.size()) grow();
    size_t i = hash & mask_;
    while (slots_[i].key_length != 0) i = (i + 1) & mask_;
    slots_[i] = {hash, static_cast<uint32_t>(keys_.size()), static_cast<uint32_t>(ids_.size()),
                 static_cast<uint16_t>(word.size()), static_cast<uint16_t>(ids.size())};
    keys_.append(word);
    ids_.insert(ids_.end(), ids.begin(), ids.end());
    ++size_;
  }

 private:
  struct Slot {
    size_t hash = 0;
    uint32_t key_offset = 0;
    uint32_t ids_offset = 0;
    uint16_t key_length = 0;  // 0 marks an empty slot (empty words are never cached)
    uint16_t ids_count = 0;
  };

  void clear() {
    std::fill(slots_.begin(), slots_.end(), Slot{});
    keys_.clear();
    ids_.clear();
    size_ = 0;
  }

  void grow() {
    std::vector<Slot> old = std::move(slots_);
    slots_.assign(old.empty() ? 1024 : old.size() * 2, Slot{});
    mask_ = slots_.size() - 1;
    for (const Slot& slot : old) {
      if (slot.key_length == 0) continue;
      size_t i = slot.hash & mask_;
      while (slots_[i].key_length != 0) i = (i + 1) & mask_;
      slots_[i] = slot;
    }
  }

  std::vector<Slot> slots_;
  size_t mask_ = 0;
  size_t size_ = 0;
  std::string keys_;
  std::vector<int32_t> ids_;
};

}  // namespace

struct BpeModel::Scratch {
  WordCache cache;
  std::vector<Symbol> symbols;
  std::vector<Candidate> heap;
  std::vector<int32_t> word_ids;
  std::string unit;
};

BpeModel::Scratch& BpeModel::thread_scratch() const {
  thread_local std::unordered_map<uint64_t, std::unique_ptr<Scratch>> per_model;
  auto it = per_model.find(instance_);
  if (it != per_model.end()) return *it->second;
  // Models that are gone leave their scratch behind; bound how many a thread keeps.
  if (per_model.size() >= 8) per_model.clear();
  auto& slot = per_model[instance_];
  slot = std::make_unique<Scratch>();
  return *slot;
}

// ---- loading --------------------------------------------------------------------------------

BpeModel BpeModel::from_json(const Json& model, const JsonPlace& place, bool byte_level) {
  static std::atomic<uint64_t> next_instance{1};
  BpeModel m;
  m.instance_ = next_instance.fetch_add(1);
  m.byte_level_ = byte_level;

  const Json* dropout = json_optional(model, "dropout", place);
  if (dropout != nullptr && (!dropout->is_number() || dropout->get<double>() != 0.0)) {
    throw UnsupportedError(
        fmt::format("{}: {}: BPE dropout {} makes tokenization random; only null or 0 is supported",
                    *place.file, place.child("dropout").path, json_excerpt(*dropout)));
  }
  m.byte_fallback_ = json_bool_or(model, "byte_fallback", false, place);
  m.fuse_unk_ = json_bool_or(model, "fuse_unk", false, place);
  m.ignore_merges_ = json_bool_or(model, "ignore_merges", false, place);
  m.prefix_ = json_string_or(model, "continuing_subword_prefix", "", place);
  m.suffix_ = json_string_or(model, "end_of_word_suffix", "", place);

  const Json& vocab = json_required(model, "vocab", place);
  const JsonPlace vocab_place = place.child("vocab");
  if (!vocab.is_object()) throw_format(vocab_place, "expected an object of token -> id");
  m.vocab_.reserve(vocab.size());
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    const int32_t id = json_token_id(it.value(), vocab_place.child(it.key()));
    m.vocab_.insert(it.key(), id);
    if (static_cast<size_t>(id) >= m.tokens_.size()) {
      m.tokens_.resize(std::max(static_cast<size_t>(id) + 1, vocab.size()));
      m.has_token_.resize(m.tokens_.size());
    }
    m.tokens_[static_cast<size_t>(id)] = it.key();
    m.has_token_[static_cast<size_t>(id)] = true;
  }
  // Trim to one past the highest id.
  while (!m.has_token_.empty() && !m.has_token_.back()) {
    m.has_token_.pop_back();
    m.tokens_.pop_back();
  }

  if (const Json* unk = json_optional(model, "unk_token", place); unk != nullptr) {
    if (!unk->is_string()) throw_format(place.child("unk_token"), "expected a string");
    m.unk_id_ = m.lookup(unk->get<std::string>());
    if (m.unk_id_ < 0) {
      throw_format(
          place.child("unk_token"),
          fmt::format("unk_token \"{}\" is not in the vocabulary", unk->get<std::string>()));
    }
  }

  for (int b = 0; b < 256; ++b) {
    const auto byte = static_cast<uint8_t>(b);
    m.byte_ids_[b] = byte_level ? m.lookup(byte_level_utf8(byte)) : -1;
    m.byte_fallback_ids_[b] = m.lookup(fmt::format("<0x{:02X}>", b));
  }

  const Json& merges = json_required(model, "merges", place);
  const JsonPlace merges_place = place.child("merges");
  if (!merges.is_array()) throw_format(merges_place, "expected a list of merges");
  m.merges_.reserve(merges.size());
  std::string left;
  std::string right;
  for (size_t i = 0; i < merges.size(); ++i) {
    const Json& entry = merges[i];
    if (entry.is_string()) {
      const std::string& line = entry.get_ref<const std::string&>();
      const size_t space = line.find(' ');
      if (space == std::string::npos || line.find(' ', space + 1) != std::string::npos) {
        throw_format(merges_place.index(i),
                     fmt::format("expected \"left right\" (one space), found \"{}\"", line));
      }
      left.assign(line, 0, space);
      right.assign(line, space + 1);
    } else if (entry.is_array() && entry.size() == 2 && entry[0].is_string() &&
               entry[1].is_string()) {
      left = entry[0].get<std::string>();
      right = entry[1].get<std::string>();
    } else {
      throw_format(
          merges_place.index(i),
          fmt::format("expected \"left right\" or [left, right], found {}", json_excerpt(entry)));
    }
    const int32_t left_id = m.lookup(left);
    const int32_t right_id = m.lookup(right);
    // The right part loses the continuing-subword prefix when glued, as in the reference.
    std::string merged = left;
    merged.append(right, std::min(m.prefix_.size(), right.size()));
    const int32_t merged_id = m.lookup(merged);
    for (const auto& [part, id] :
         {std::pair{&left, left_id}, std::pair{&right, right_id}, std::pair{&merged, merged_id}}) {
      if (id < 0) {
        throw_format(merges_place.index(i),
                     fmt::format("merge token \"{}\" is not in the vocabulary", *part));
      }
    }
    m.merges_.insert_or_assign(MergeTable::key(left_id, right_id),
                               {static_cast<int32_t>(i), merged_id});
  }
  return m;
}

std::optional<int32_t> BpeModel::token_to_id(std::string_view token) const {
  const int32_t id = lookup(token);
  if (id < 0) return std::nullopt;
  return id;
}

const std::string* BpeModel::id_to_token(int32_t id) const {
  if (id < 0 || id >= id_limit() || !has_token_[static_cast<size_t>(id)]) return nullptr;
  return &tokens_[static_cast<size_t>(id)];
}

// ---- encoding -------------------------------------------------------------------------------

void BpeModel::encode_word(std::string_view word, std::vector<int32_t>& out,
                           Scratch& scratch) const {
  if (word.empty()) return;
  const bool plain = prefix_.empty() && suffix_.empty();
  if (byte_level_ && plain && word.size() == 1) {
    const int32_t id = byte_ids_[static_cast<uint8_t>(word[0])];
    if (id >= 0) {
      out.push_back(id);
      return;
    }
  }
  if (ignore_merges_) {
    const int32_t id = byte_level_ ? lookup(byte_level_encode(word)) : lookup(word);
    if (id >= 0) {
      out.push_back(id);
      return;
    }
  }
  const size_t hash = std::hash<std::string_view>{}(word);
  if (scratch.cache.find(word, hash, out)) return;
  scratch.word_ids.clear();
  merge_word(word, scratch.word_ids, scratch);
  out.insert(out.end(), scratch.word_ids.begin(), scratch.word_ids.end());
  scratch.cache.insert(word, hash, scratch.word_ids);
}

void BpeModel::merge_word(std::string_view word, std::vector<int32_t>& out, Scratch& s) const {
  std::vector<Symbol>& symbols = s.symbols;
  symbols.clear();
  auto add = [&](int32_t id) {
    const auto index = static_cast<int32_t>(symbols.size());
    symbols.push_back({id, index - 1, index + 1, true});
  };

  // 1. Initial symbols: one per character (per byte in byte-level mode).
  const bool plain = prefix_.empty() && suffix_.empty();
  bool unk_pending = false;
  size_t i = 0;
  while (i < word.size()) {
    const auto lead = static_cast<uint8_t>(word[i]);
    const size_t n = byte_level_ ? 1 : std::min(utf8_char_length(lead), word.size() - i);
    const std::string_view spelled = byte_level_ ? byte_level_utf8(lead) : word.substr(i, n);
    std::string_view unit = spelled;
    int32_t id = -1;
    if (plain) {
      id = byte_level_ ? byte_ids_[lead] : lookup(spelled);
    } else {
      s.unit.clear();
      if (i != 0) s.unit += prefix_;
      s.unit.append(spelled);
      if (i + n == word.size()) s.unit += suffix_;
      unit = s.unit;
      id = lookup(unit);
    }
    i += n;
    if (id >= 0) {
      if (unk_pending) add(unk_id_);
      unk_pending = false;
      add(id);
      continue;
    }
    if (byte_fallback_) {
      bool all = true;
      for (char ch : unit) all = all && byte_fallback_ids_[static_cast<uint8_t>(ch)] >= 0;
      if (all) {
        // Like the reference, a pending unknown stays pending across byte-fallback tokens.
        for (char ch : unit) add(byte_fallback_ids_[static_cast<uint8_t>(ch)]);
        continue;
      }
    }
    if (unk_id_ >= 0) {
      if (unk_pending && !fuse_unk_) add(unk_id_);
      unk_pending = true;
    }
    // Without an unknown token the character is dropped, as in the reference.
  }
  if (unk_pending) add(unk_id_);
  if (symbols.empty()) return;
  symbols.back().next = -1;

  // 2. Merges, lowest rank first and leftmost among equal ranks.
  std::vector<Candidate>& heap = s.heap;
  heap.clear();
  auto consider = [&](int32_t pos) {
    const int32_t next = symbols[static_cast<size_t>(pos)].next;
    if (next < 0) return;
    const MergeTable::Merge* m = merges_.find(MergeTable::key(
        symbols[static_cast<size_t>(pos)].id, symbols[static_cast<size_t>(next)].id));
    if (m == nullptr) return;
    heap.push_back({m->rank, pos});
    std::push_heap(heap.begin(), heap.end());
  };
  for (size_t k = 0; k + 1 < symbols.size(); ++k) {
    consider(static_cast<int32_t>(k));
  }
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end());
    const Candidate top = heap.back();
    heap.pop_back();
    Symbol& left = symbols[static_cast<size_t>(top.pos)];
    if (!left.alive || left.next < 0) continue;
    Symbol& right = symbols[static_cast<size_t>(left.next)];
    // The pair may have changed since it was queued; only the current pair may merge.
    const MergeTable::Merge* m = merges_.find(MergeTable::key(left.id, right.id));
    if (m == nullptr || m->rank != top.rank) continue;
    left.id = m->id;
    right.alive = false;
    left.next = right.next;
    if (right.next >= 0) symbols[static_cast<size_t>(right.next)].prev = top.pos;
    if (left.prev >= 0) consider(left.prev);
    consider(top.pos);
  }
  for (int32_t k = 0; k >= 0; k = symbols[static_cast<size_t>(k)].next) {
    out.push_back(symbols[static_cast<size_t>(k)].id);
  }
}

}  // namespace moeslice::text
