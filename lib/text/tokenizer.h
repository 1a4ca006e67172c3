// The Hugging Face tokenizer.json tokenizer: byte-level BPE (GPT-2, GPT-NeoX/OLMoE, dolma2,
// Qwen, Llama-3) and SentencePiece-style BPE (Llama-2, Mixtral), producing the same ids as the
// reference `tokenizers` library for the components listed in each component's header.
//
// Pipeline of encode(): added tokens are cut out of the raw text; each remaining piece is
// normalised; added tokens marked `normalized` are cut out of the result; the pre-tokenizer
// splits the rest into words; the BPE model encodes each word; special tokens from the
// post-processor are added around the whole only when asked. The `truncation` and `padding`
// settings of the file are ignored: moeslice always encodes whole texts.
//
// Thread safety: a Tokenizer is immutable after loading; encode() and decode() may be called
// concurrently from several threads. The only mutable state, the BPE word cache and scratch
// buffers, is thread_local (one per thread and model). Copies share the loaded data.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace moeslice {

class Tokenizer {
 public:
  // Throws InputError when the file cannot be read, FormatError when it is not valid JSON or
  // lacks a required key, UnsupportedError for a component type that is not implemented. Every
  // message names the file.
  static Tokenizer from_file(const std::filesystem::path& path);
  // The same from JSON text; `source` names it in error messages.
  static Tokenizer from_json_text(std::string_view json, std::string_view source);

  // Encodes `text` (UTF-8; InputError otherwise) as one sequence. Special tokens of the
  // post-processor (BOS/EOS) are added only when `add_special` is true.
  std::vector<int32_t> encode(std::string_view text, bool add_special = false) const;

  // Decodes ids back to text; `skip_special` drops added tokens marked special. Throws
  // InputError naming the first id that is not in the vocabulary.
  std::string decode(std::span<const int32_t> ids, bool skip_special = false) const;

  // One past the highest token id (model vocabulary and added tokens): the embedding rows.
  int32_t vocab_size() const;
  // The special tokens the post-processor puts before / after a sequence, when it has them.
  std::optional<int32_t> bos_id() const;
  std::optional<int32_t> eos_id() const;

  std::optional<int32_t> token_to_id(std::string_view token) const;
  // The token's spelling as stored in the file (byte-level tokens keep their 'Ġ' spelling).
  std::optional<std::string> id_to_token(int32_t id) const;

  // The file (or source name) this tokenizer was loaded from.
  const std::string& source() const;

 private:
  struct Impl;
  explicit Tokenizer(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<const Impl> impl_;
};

}  // namespace moeslice
