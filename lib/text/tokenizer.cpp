// Tokenizer: loading tokenizer.json into its components and running the encode / decode
// pipelines across them.
#include "text/tokenizer.h"

#include <algorithm>

#include <fmt/core.h>

#include "common/error.h"
#include "common/io_rules.h"
#include "common/json_parse.h"
#include "text/tokenizer_added_tokens.h"
#include "text/tokenizer_bpe.h"
#include "text/tokenizer_decoders.h"
#include "text/tokenizer_json.h"
#include "text/tokenizer_normalizers.h"
#include "text/tokenizer_post_processors.h"
#include "text/tokenizer_pre_tokenizers.h"
#include "text/tokenizer_unicode.h"

namespace moeslice {

using text::Json;
using text::JsonPlace;

struct Tokenizer::Impl {
  std::string source;
  text::Normalizer normalizer;
  text::PreTokenizer pre_tokenizer;
  text::AddedVocabulary added;
  text::PostProcessor post_processor;
  text::Decoder decoder;
  std::optional<text::BpeModel> model;
  int32_t vocab_size = 0;
};

namespace {

constexpr std::string_view kSupportedModels = "BPE";

}  // namespace

Tokenizer Tokenizer::from_json_text(std::string_view json_text, std::string_view source) {
  auto impl = std::make_shared<Impl>();
  impl->source = std::string(source);
  const JsonPlace root{&impl->source, ""};

  const Json json = parse_json(json_text, impl->source);
  if (!json.is_object()) text::throw_format(root, "expected a JSON object at the top level");

  const Json null_value;
  auto member = [&](std::string_view key) -> const Json& {
    const Json* value = text::json_optional(json, key, root);
    return value != nullptr ? *value : null_value;
  };

  impl->normalizer = text::Normalizer::from_json(member("normalizer"), root.child("normalizer"));
  impl->pre_tokenizer =
      text::PreTokenizer::from_json(member("pre_tokenizer"), root.child("pre_tokenizer"));
  impl->post_processor =
      text::PostProcessor::from_json(member("post_processor"), root.child("post_processor"));
  impl->decoder = text::Decoder::from_json(member("decoder"), root.child("decoder"));

  const Json& model = text::json_required(json, "model", root);
  const JsonPlace model_place = root.child("model");
  std::string type;
  if (text::json_optional(model, "type", model_place) != nullptr) {
    type = text::json_type(model, model_place);
  } else if (text::json_optional(model, "merges", model_place) != nullptr) {
    type = "BPE";  // files written before models were tagged
  } else {
    text::throw_format(model_place, "missing key 'type'");
  }
  if (type != "BPE") text::throw_unsupported_type(model_place, "model", type, kSupportedModels);
  impl->model.emplace(
      text::BpeModel::from_json(model, model_place, impl->pre_tokenizer.byte_level()));

  impl->added = text::AddedVocabulary::from_json(member("added_tokens"), root.child("added_tokens"),
                                                 impl->normalizer);
  impl->vocab_size = impl->model->id_limit();
  for (const text::AddedToken& t : impl->added.tokens()) {
    impl->vocab_size = std::max(impl->vocab_size, t.id + 1);
  }
  for (int32_t id : impl->post_processor.prefix()) {
    if (id >= impl->vocab_size) {
      text::throw_format(root.child("post_processor"),
                         fmt::format("special token id {} is outside the vocabulary", id));
    }
  }
  for (int32_t id : impl->post_processor.suffix()) {
    if (id >= impl->vocab_size) {
      text::throw_format(root.child("post_processor"),
                         fmt::format("special token id {} is outside the vocabulary", id));
    }
  }
  return Tokenizer(std::move(impl));
}

Tokenizer Tokenizer::from_file(const std::filesystem::path& path) {
  const std::string text = read_input_file(path, kMaxJsonFileBytes, "tokenizer");
  return from_json_text(text, path.string());
}

std::vector<int32_t> Tokenizer::encode(std::string_view input, bool add_special) const {
  const Impl& t = *impl_;
  const size_t bad = text::find_invalid_utf8(input);
  if (bad != std::string_view::npos) {
    throw InputError(
        fmt::format("the text to tokenize is not valid UTF-8 (byte {} of {})", bad, input.size()));
  }
  std::vector<int32_t> ids;
  ids.reserve(input.size() / 3 + 4);
  if (add_special) {
    ids.insert(ids.end(), t.post_processor.prefix().begin(), t.post_processor.prefix().end());
  }
  text::BpeModel::Scratch& scratch = t.model->thread_scratch();
  auto encode_word = [&](std::string_view word, bool /*at_start*/) {
    t.model->encode_word(word, ids, scratch);
  };
  std::string normalized_buffer;
  t.added.split(input, false, [&](std::string_view piece, int32_t id, size_t offset) {
    if (id >= 0) {
      ids.push_back(id);
      return;
    }
    const std::string_view normalized = t.normalizer.apply(piece, normalized_buffer);
    t.added.split(normalized, true, [&](std::string_view part, int32_t part_id, size_t at) {
      if (part_id >= 0) {
        ids.push_back(part_id);
        return;
      }
      t.pre_tokenizer.run(part, offset == 0 && at == 0, encode_word);
    });
  });
  if (add_special) {
    ids.insert(ids.end(), t.post_processor.suffix().begin(), t.post_processor.suffix().end());
  }
  return ids;
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool skip_special) const {
  const Impl& t = *impl_;
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (const int32_t id : ids) {
    if (const text::AddedToken* added = t.added.find_id(id); added != nullptr) {
      if (!(skip_special && added->special)) tokens.push_back(added->content);
      continue;
    }
    const std::string* token = t.model->id_to_token(id);
    if (token == nullptr) {
      throw InputError(fmt::format("token id {} is not in the vocabulary of {} (ids 0..{})", id,
                                   t.source, t.vocab_size - 1));
    }
    tokens.push_back(*token);
  }
  return t.decoder.decode(std::move(tokens));
}

int32_t Tokenizer::vocab_size() const { return impl_->vocab_size; }

std::optional<int32_t> Tokenizer::bos_id() const {
  const auto& prefix = impl_->post_processor.prefix();
  if (prefix.empty()) return std::nullopt;
  return prefix.front();
}

std::optional<int32_t> Tokenizer::eos_id() const {
  const auto& suffix = impl_->post_processor.suffix();
  if (suffix.empty()) return std::nullopt;
  return suffix.back();
}

std::optional<int32_t> Tokenizer::token_to_id(std::string_view token) const {
  if (auto id = impl_->added.find_content(token)) return id;
  return impl_->model->token_to_id(token);
}

std::optional<std::string> Tokenizer::id_to_token(int32_t id) const {
  if (const text::AddedToken* added = impl_->added.find_id(id)) return added->content;
  if (const std::string* token = impl_->model->id_to_token(id)) return *token;
  return std::nullopt;
}

const std::string& Tokenizer::source() const { return impl_->source; }

}  // namespace moeslice
