// The BPE model of tokenizer.json: vocabulary, merge ranks, and the word encoder (initial
// symbols, byte fallback and unknown-token handling, then merges lowest rank first, leftmost on
// ties), with a per-thread cache of encoded words.
//
// When the pre-tokenizer ends with ByteLevel the model works on raw bytes: one initial symbol per
// byte, looked up through the byte-level spelling, so no text is ever re-spelled per word.
//
// Thread safety: immutable after construction; encode_word() may run concurrently because the
// word cache and scratch buffers are per thread (thread_local, one set per model instance).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "text/tokenizer_json.h"

namespace moeslice::text {

// Open-addressing map from a token pair to its merge (rank and resulting token).
class MergeTable {
 public:
  struct Merge {
    int32_t rank;
    int32_t id;
  };
  static uint64_t key(int32_t left, int32_t right) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) |
           static_cast<uint32_t>(right);
  }
  void reserve(size_t count);
  // Later merges of the same pair replace earlier ones, as the reference's hash map does.
  void insert_or_assign(uint64_t k, Merge m);
  const Merge* find(uint64_t k) const {
    size_t i = mix(k) & mask_;
    while (true) {
      const Slot& slot = slots_[i];
      if (slot.key == k) return &slot.merge;
      if (slot.key == kEmpty) return nullptr;
      i = (i + 1) & mask_;
    }
  }
  size_t size() const { return size_; }

 private:
  static constexpr uint64_t kEmpty = ~uint64_t{0};
  struct Slot {
    uint64_t key = kEmpty;
    Merge merge{0, 0};
  };
  static uint64_t mix(uint64_t k) {
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    return k;
  }
  void grow();

  std::vector<Slot> slots_ = std::vector<Slot>(16);
  size_t mask_ = 15;
  size_t size_ = 0;
};

// Open-addressing map from token spelling to id, keys packed in one arena: loading 100k tokens
// and resolving 100k merges is dominated by these lookups.
class VocabTable {
 public:
  void reserve(size_t count);
  // A key given twice keeps the later id (JSON objects in practice never repeat keys).
  void insert(std::string_view key, int32_t id);
  int32_t find(std::string_view key) const {
    const uint64_t h = std::hash<std::string_view>{}(key);
    for (size_t i = h & mask_;; i = (i + 1) & mask_) {
      const Slot& slot = slots_[i];
      if (slot.id < 0) return -1;
      if (slot.hash == h && slot.length == key.size() &&
          keys_.compare(slot.offset, slot.length, key) == 0) {
        return slot.id;
      }
    }
  }

 private:
  struct Slot {
    uint64_t hash = 0;
    uint32_t offset = 0;
    uint32_t length = 0;
    int32_t id = -1;  // -1 marks an empty slot
  };
  void grow();

  std::vector<Slot> slots_ = std::vector<Slot>(16);
  size_t mask_ = 15;
  size_t size_ = 0;
  std::string keys_;
};

class BpeModel {
 public:
  // `model` is tokenizer.json's "model" object (type BPE). `byte_level` says whether words
  // arrive as raw bytes (pre-tokenizer ends with ByteLevel).
  static BpeModel from_json(const Json& model, const JsonPlace& place, bool byte_level);

  BpeModel(BpeModel&&) noexcept = default;
  BpeModel& operator=(BpeModel&&) noexcept = default;
  BpeModel(const BpeModel&) = delete;
  BpeModel& operator=(const BpeModel&) = delete;

  // Per-thread word cache and buffers of this model; fetch once per text, not per word.
  struct Scratch;
  Scratch& thread_scratch() const;

  // Appends the ids of one pre-tokenized word; `scratch` must come from thread_scratch() on the
  // calling thread.
  void encode_word(std::string_view word, std::vector<int32_t>& out, Scratch& scratch) const;

  std::optional<int32_t> token_to_id(std::string_view token) const;
  // The vocabulary's spelling of `id`, or nullptr.
  const std::string* id_to_token(int32_t id) const;
  // One past the highest id in the vocabulary.
  int32_t id_limit() const { return static_cast<int32_t>(tokens_.size()); }
  size_t merge_count() const { return merges_.size(); }

 private:
  BpeModel() = default;
  void merge_word(std::string_view word, std::vector<int32_t>& out, Scratch& scratch) const;
  int32_t lookup(std::string_view token) const { return vocab_.find(token); }

  VocabTable vocab_;
  std::vector<std::string> tokens_;  // by id; empty string where no token has that id
  std::vector<bool> has_token_;
  MergeTable merges_;
  bool byte_level_ = false;
  bool byte_fallback_ = false;
  bool fuse_unk_ = false;
  bool ignore_merges_ = false;
  int32_t unk_id_ = -1;
  std::string prefix_;              // continuing_subword_prefix
  std::string suffix_;              // end_of_word_suffix
  int32_t byte_ids_[256];           // byte-level mode: the token of each single byte, or -1
  int32_t byte_fallback_ids_[256];  // the <0xXX> tokens, or -1
  uint64_t instance_ = 0;           // keys this model's per-thread scratch
};

}  // namespace moeslice::text
