// A GGUF file's tokenizer.ggml.* metadata turned into the tokenizer.json it stands for, and
// open_tokenizer(). The pre-tokenizer table follows llama.cpp's llama-vocab.cpp (the names it
// accepts for `tokenizer.ggml.pre`, the regexes and `ignore_merges` it sets for them).
#include "text/gguf_tokenizer.h"

#include <array>
#include <cstdint>
#include <fstream>
#include <optional>
#include <string>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/json_parse.h"
#include "format/gguf/file.h"
#include "format/gguf/metadata.h"
#include "format/gguf/model.h"

namespace moeslice {

namespace {

using Json = nlohmann::json;

// GPT-2's split, also OLMo's, MPT's, Jais's and Trillion's.
constexpr std::string_view kGpt2Regex =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)";
// Llama 3's split (llama.cpp's spelling of its case-insensitive contractions), also DBRX's,
// Smaug's and ChatGLM-4's.
constexpr std::string_view kLlama3Regex =
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|"
    "\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
// Qwen2's: Llama 3's with single digits.
constexpr std::string_view kQwen2Regex =
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|"
    "\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
// gpt-4o's (gpt-oss), with llama.cpp's lookahead spelling of upper- and lower-case letters.
constexpr std::string_view kGpt4oRegex =
    "[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))*((?=[\\p{L}])([^A-Z]))+"
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|"
    "[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))+((?=[\\p{L}])([^A-Z]))*"
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|"
    "\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
// DeepSeek-V3's three splits.
constexpr std::array<std::string_view, 3> kDeepSeekV3Regexes = {
    "\\p{N}{1,3}",
    "[\u4e00-\u9fa5\u3040-\u309f\u30a0-\u30ff]+",
    "[!\"#$%&'()*+,\\-./"
    ":;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\\r\\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+|"
    " ?[\\p{P}\\p{S}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
};
// llama.cpp's default for a BPE vocabulary without a known pre-tokenizer.
constexpr std::array<std::string_view, 4> kDefaultRegexes = {
    "[\\p{P}\\$\\+<=>\\^~\\|]+",
    kGpt2Regex,
    "\\p{N}+",
    "[0-9][0-9][0-9]",
};

bool one_of(std::string_view name, std::initializer_list<std::string_view> names) {
  for (std::string_view candidate : names)
    if (name == candidate) return true;
  return false;
}

// llama.cpp sets ignore_merges (a whole word found in the vocabulary is one token) for these.
bool ignores_merges(std::string_view pre) {
  return one_of(pre, {"llama3", "llama-v3", "llama-bpe"});
}

// llama.cpp's add_bos before tokenizer.ggml.add_bos_token overrides it.
bool adds_bos_by_default(std::string_view pre) {
  return one_of(pre, {"llama3", "llama-v3", "llama-bpe"});
}

// GGUF token types (llama.cpp's llama_token_type).
constexpr int64_t kTokenControl = 3;
constexpr int64_t kTokenUserDefined = 4;

[[noreturn]] void fail_key(const GgufMetadata& metadata, std::string_view key,
                           const std::string& what) {
  throw FormatError(fmt::format("{}: {}: {}", metadata.source().string(), key, what));
}

// A string array key as strings.
std::vector<std::string> string_array(const GgufMetadata& metadata, std::string_view key,
                                      bool required) {
  const GgufValue* value = metadata.find(key);
  if (value == nullptr) {
    if (required) fail_key(metadata, key, "missing (the file carries no tokenizer)");
    return {};
  }
  if (value->type() != GgufType::kArray || value->element_type() != GgufType::kString)
    fail_key(metadata, key,
             fmt::format("expected an ARRAY of STRING, found {}", value->describe()));
  std::vector<std::string> out;
  out.reserve(value->size());
  for (uint64_t i = 0; i < value->size(); ++i) out.push_back(*value->element(i).as_string());
  return out;
}

// The token types, one per token; empty when the key is absent.
std::vector<int64_t> token_types(const GgufMetadata& metadata, size_t token_count) {
  constexpr std::string_view kKey = "tokenizer.ggml.token_type";
  const GgufValue* value = metadata.find(kKey);
  if (value == nullptr) return {};
  if (value->type() != GgufType::kArray || value->size() != token_count)
    fail_key(metadata, kKey,
             fmt::format("expected an ARRAY of {} integers (one per token), found {}", token_count,
                         value->describe()));
  std::vector<int64_t> out;
  out.reserve(token_count);
  for (uint64_t i = 0; i < value->size(); ++i) {
    const std::optional<int64_t> type = value->element(i).as_int();
    if (!type) fail_key(metadata, kKey, fmt::format("element {} is not an integer", i));
    out.push_back(*type);
  }
  return out;
}

// A token id key, checked against the vocabulary; nullopt when absent.
std::optional<int64_t> token_id(const GgufMetadata& metadata, std::string_view key,
                                size_t token_count) {
  const std::optional<uint64_t> id = metadata.get_uint(key);
  if (!id) return std::nullopt;
  if (*id >= token_count)
    fail_key(metadata, key,
             fmt::format("token id {} is outside the vocabulary of {} tokens", *id, token_count));
  return static_cast<int64_t>(*id);
}

Json pre_tokenizer_json(const std::vector<std::string_view>& regexes) {
  Json stages = Json::array();
  for (std::string_view regex : regexes)
    stages.push_back({{"type", "Split"},
                      {"pattern", {{"Regex", std::string(regex)}}},
                      {"behavior", "Isolated"},
                      {"invert", false}});
  stages.push_back({{"type", "ByteLevel"},
                    {"add_prefix_space", false},
                    {"trim_offsets", true},
                    {"use_regex", false}});
  return {{"type", "Sequence"}, {"pretokenizers", stages}};
}

// The post-processor: BOS before a sequence when llama.cpp would add it, EOS after likewise.
Json post_processor_json(const std::vector<std::string>& tokens, std::optional<int64_t> bos,
                         std::optional<int64_t> eos) {
  Json single = Json::array();
  Json specials = Json::object();
  auto special = [&](int64_t id) {
    const std::string& name = tokens[static_cast<size_t>(id)];
    specials[name] = {{"id", name}, {"ids", {id}}, {"tokens", {name}}};
    single.push_back({{"SpecialToken", {{"id", name}, {"type_id", 0}}}});
  };
  if (bos) special(*bos);
  single.push_back({{"Sequence", {{"id", "A"}, {"type_id", 0}}}});
  if (eos) special(*eos);
  return {{"type", "TemplateProcessing"},
          {"single", single},
          {"pair", Json::array()},
          {"special_tokens", specials}};
}

}  // namespace

std::vector<std::string_view> gguf_pre_tokenizer_regexes(std::string_view pre) {
  if (pre == "default") return {kDefaultRegexes.begin(), kDefaultRegexes.end()};
  if (one_of(pre, {"gpt-2", "phi-2", "olmo", "mpt", "jais", "trillion"})) return {kGpt2Regex};
  if (one_of(pre, {"llama3", "llama-v3", "llama-bpe", "dbrx", "smaug-bpe", "glm4", "chatglm-bpe"}))
    return {kLlama3Regex};
  if (one_of(pre, {"qwen2", "deepseek-r1-qwen", "stablelm2"})) return {kQwen2Regex};
  if (pre == "deepseek-v3") return {kDeepSeekV3Regexes.begin(), kDeepSeekV3Regexes.end()};
  if (pre == "gpt-4o") return {kGpt4oRegex};
  return {};
}

Tokenizer tokenizer_from_gguf(const GgufMetadata& metadata) {
  const std::string source = metadata.source().string();
  const std::optional<std::string> model = metadata.get_string("tokenizer.ggml.model");
  if (!model) fail_key(metadata, "tokenizer.ggml.model", "missing (the file carries no tokenizer)");
  if (*model != "gpt2")
    throw UnsupportedError(fmt::format(
        "{}: tokenizer.ggml.model is '{}'; moeslice reads GGUF tokenizers of model 'gpt2' "
        "(byte-level BPE) only: pass the model's tokenizer.json with --tokenizer",
        source, *model));
  const std::string pre = metadata.get_string("tokenizer.ggml.pre").value_or("default");
  const std::vector<std::string_view> regexes = gguf_pre_tokenizer_regexes(pre);
  if (regexes.empty())
    throw UnsupportedError(fmt::format(
        "{}: tokenizer.ggml.pre is '{}', a pre-tokenizer moeslice has no mapping for (known: "
        "default, gpt-2, phi-2, olmo, mpt, jais, trillion, llama3, llama-v3, llama-bpe, dbrx, "
        "smaug-bpe, glm4, chatglm-bpe, qwen2, deepseek-r1-qwen, stablelm2, deepseek-v3, gpt-4o): "
        "pass the model's tokenizer.json with --tokenizer",
        source, pre));

  const std::vector<std::string> tokens = string_array(metadata, "tokenizer.ggml.tokens", true);
  const std::vector<std::string> merges = string_array(metadata, "tokenizer.ggml.merges", true);
  const std::vector<int64_t> types = token_types(metadata, tokens.size());

  Json vocab = Json::object();
  Json added = Json::array();
  for (size_t id = 0; id < tokens.size(); ++id) {
    vocab[tokens[id]] = id;  // a repeated spelling maps to its last id, as in llama.cpp
    const int64_t type = types.empty() ? 1 : types[id];
    if (type == kTokenControl || type == kTokenUserDefined)
      added.push_back({{"id", id},
                       {"content", tokens[id]},
                       {"single_word", false},
                       {"lstrip", false},
                       {"rstrip", false},
                       {"normalized", false},
                       {"special", type == kTokenControl}});
  }
  const bool add_bos =
      metadata.get_bool("tokenizer.ggml.add_bos_token").value_or(adds_bos_by_default(pre));
  const bool add_eos = metadata.get_bool("tokenizer.ggml.add_eos_token").value_or(false);
  const std::optional<int64_t> bos =
      token_id(metadata, "tokenizer.ggml.bos_token_id", tokens.size());
  const std::optional<int64_t> eos =
      token_id(metadata, "tokenizer.ggml.eos_token_id", tokens.size());

  const Json tokenizer_json = {
      {"version", "1.0"},
      {"added_tokens", added},
      {"normalizer", nullptr},
      {"pre_tokenizer", pre_tokenizer_json(regexes)},
      {"post_processor",
       post_processor_json(tokens,
                           add_bos && !one_of(pre, {"glm4", "chatglm-bpe"}) ? bos : std::nullopt,
                           add_eos ? eos : std::nullopt)},
      {"decoder",
       {{"type", "ByteLevel"},
        {"add_prefix_space", true},
        {"trim_offsets", true},
        {"use_regex", true}}},
      {"model",
       {{"type", "BPE"},
        {"dropout", nullptr},
        {"unk_token", nullptr},
        {"byte_fallback", false},
        {"ignore_merges", ignores_merges(pre)},
        {"vocab", vocab},
        {"merges", merges}}},
  };
  return Tokenizer::from_json_text(dump_json(tokenizer_json), source + " (tokenizer.ggml.*)");
}

Tokenizer open_tokenizer(const std::filesystem::path& path) {
  std::array<char, 4> magic{};
  {
    std::ifstream in(path, std::ios::binary);
    in.read(magic.data(), magic.size());
  }
  if (std::string_view(magic.data(), magic.size()) == "GGUF")
    return tokenizer_from_gguf(GgufModel::open(path)->metadata());
  return Tokenizer::from_file(path);
}

}  // namespace moeslice
