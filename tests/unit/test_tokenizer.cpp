// Tests of the tokenizer.json tokenizer: the GPT-NeoX reference vectors on the OLMoE file,
// round trips on the dolma2 file, hand-made fixtures for SentencePiece-style BPE, added tokens,
// merge forms and priorities, Split behaviours, and the refusal of broken or unsupported files.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "text/tokenizer.h"
#include "text/tokenizer_byte_level.h"
#include "text/tokenizer_pre_tokenizers.h"
#include "text/tokenizer_regex.h"

namespace fs = std::filesystem;
using moeslice::Tokenizer;
using nlohmann::json;

namespace {

const fs::path kData = MOESLICE_TEST_DATA;

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE_MESSAGE(in.good(), "cannot open " << path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

const Tokenizer& olmoe() {
  static const Tokenizer t = Tokenizer::from_file(kData / "tokenizers/olmoe-tokenizer.json");
  return t;
}

const Tokenizer& dolma2() {
  static const Tokenizer t = Tokenizer::from_file(kData / "tokenizers/dolma2-tokenizer.json");
  return t;
}

// The .inp format of llama.cpp's vocab tests: strings separated by "\n__ggml_vocab_test__\n";
// the file ends with a separator, so the piece after the last one is not a string.
std::vector<std::string> parse_vector_inputs(const std::string& text) {
  const std::string separator = "\n__ggml_vocab_test__\n";
  std::vector<std::string> strings;
  size_t pos = 0;
  while (true) {
    const size_t found = text.find(separator, pos);
    if (found == std::string::npos) break;
    strings.push_back(text.substr(pos, found - pos));
    pos = found + separator.size();
  }
  CHECK_MESSAGE(pos == text.size(), "text after the last separator");
  return strings;
}

std::vector<std::vector<int32_t>> parse_vector_outputs(const std::string& text) {
  std::vector<std::vector<int32_t>> lines;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream words(line);
    std::vector<int32_t> ids;
    int32_t id = 0;
    while (words >> id) ids.push_back(id);
    lines.push_back(std::move(ids));
  }
  return lines;
}

std::vector<int32_t> bytes_of(std::string_view s) {
  std::vector<int32_t> ids;
  for (char c : s) ids.push_back(static_cast<uint8_t>(c));
  return ids;
}

std::vector<int32_t> concat(std::initializer_list<std::vector<int32_t>> parts) {
  std::vector<int32_t> all;
  for (const auto& p : parts) all.insert(all.end(), p.begin(), p.end());
  return all;
}

Tokenizer from_json(const json& j, const std::string& name = "fixture.json") {
  return Tokenizer::from_json_text(j.dump(), name);
}

// A byte-level tokenizer whose vocabulary is the 256 bytes (id = byte value) plus `extra`
// tokens, so expected ids can be written as bytes.
json byte_level_fixture() {
  json vocab = json::object();
  for (int b = 0; b < 256; ++b) {
    vocab[std::string(moeslice::text::byte_level_utf8(static_cast<uint8_t>(b)))] = b;
  }
  return json{
      {"version", "1.0"},
      {"added_tokens", json::array()},
      {"normalizer", nullptr},
      {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}}},
      {"post_processor", nullptr},
      {"decoder", {{"type", "ByteLevel"}}},
      {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", json::array()}}},
  };
}

json added(int id, const std::string& content, bool special, bool lstrip = false,
           bool rstrip = false, bool single_word = false, bool normalized = false) {
  return {{"id", id},          {"content", content}, {"single_word", single_word},
          {"lstrip", lstrip},  {"rstrip", rstrip},   {"normalized", normalized},
          {"special", special}};
}

// A Llama-2-style SentencePiece BPE: "▁" for spaces, byte fallback, <s> prepended on request.
json sentencepiece_fixture() {
  json vocab = {{"<unk>", 0}, {"<s>", 1}, {"</s>", 2}};
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof(name), "<0x%02X>", b);
    vocab[name] = 3 + b;
  }
  vocab["▁"] = 259;
  vocab["a"] = 260;
  vocab["b"] = 261;
  vocab["c"] = 262;
  vocab["▁a"] = 263;
  vocab["ab"] = 264;
  vocab["▁ab"] = 265;
  vocab["▁c"] = 266;
  return json{
      {"added_tokens",
       json::array({added(0, "<unk>", true), added(1, "<s>", true), added(2, "</s>", true)})},
      {"normalizer",
       {{"type", "Sequence"},
        {"normalizers",
         json::array({{{"type", "Prepend"}, {"prepend", "▁"}},
                      {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", "▁"}}})}}},
      {"pre_tokenizer", nullptr},
      {"post_processor",
       {{"type", "TemplateProcessing"},
        {"single", json::array({{{"SpecialToken", {{"id", "<s>"}, {"type_id", 0}}}},
                                {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}})},
        {"pair", json::array()},
        {"special_tokens", {{"<s>", {{"id", "<s>"}, {"ids", {1}}, {"tokens", {"<s>"}}}}}}}},
      {"decoder",
       {{"type", "Sequence"},
        {"decoders",
         json::array({{{"type", "Replace"}, {"pattern", {{"String", "▁"}}}, {"content", " "}},
                      {{"type", "ByteFallback"}},
                      {{"type", "Fuse"}},
                      {{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}}})}}},
      {"model",
       {{"type", "BPE"},
        {"dropout", nullptr},
        {"unk_token", "<unk>"},
        {"fuse_unk", true},
        {"byte_fallback", true},
        {"vocab", vocab},
        {"merges", json::array({"▁ a", "a b", "▁a b", "▁ c"})}}},
  };
}

template <typename E>
std::string error_message(const json& j, const std::string& name = "broken.json") {
  try {
    from_json(j, name);
  } catch (const E& e) {
    return e.what();
  } catch (const std::exception& e) {
    FAIL("wrong exception type: " << e.what());
  }
  FAIL("no exception for " << name);
  return {};
}

}  // namespace

TEST_CASE("olmoe tokenizer reproduces the GPT-NeoX-20B reference vectors") {
  const auto inputs = parse_vector_inputs(read_file(kData / "tokenizer-vectors/gpt-neox-20b.inp"));
  const auto outputs =
      parse_vector_outputs(read_file(kData / "tokenizer-vectors/gpt-neox-20b.out"));
  REQUIRE(inputs.size() == 46);
  REQUIRE(outputs.size() == inputs.size());
  CHECK(inputs[0] == "ied 4 \xC2\xBD months");
  CHECK(inputs[2].empty());
  CHECK(inputs[7] == "\n");
  for (size_t i = 0; i < inputs.size(); ++i) {
    CAPTURE(i);
    CAPTURE(inputs[i]);
    CHECK(olmoe().encode(inputs[i]) == outputs[i]);
    // The inputs are NFC already, so decoding gives them back byte for byte.
    CHECK(olmoe().decode(outputs[i]) == inputs[i]);
  }
}

TEST_CASE("olmoe tokenizer: vocabulary facts and NFC") {
  CHECK(olmoe().vocab_size() == 50280);
  CHECK(olmoe().token_to_id("<|endoftext|>") == 50279);
  CHECK_FALSE(olmoe().bos_id().has_value());  // ByteLevel post-processor adds nothing
  CHECK(olmoe().encode("Hello world", true) == olmoe().encode("Hello world", false));
  // Decomposed "é" (e + U+0301) is composed by the NFC normalizer before BPE.
  CHECK(olmoe().encode("caf\x65\xCC\x81 au lait") == olmoe().encode("caf\xC3\xA9 au lait"));
  CHECK(olmoe().decode(olmoe().encode("caf\x65\xCC\x81")) == "caf\xC3\xA9");
  // Special tokens are cut out first and can be skipped when decoding.
  const auto ids = olmoe().encode("a<|endoftext|>b");
  CHECK(ids == std::vector<int32_t>{66, 50279, 67});
  CHECK(olmoe().decode(ids) == "a<|endoftext|>b");
  CHECK(olmoe().decode(ids, true) == "ab");
}

TEST_CASE("dolma2 tokenizer: known ids and the cl100k-style split") {
  const Tokenizer& t = dolma2();
  CHECK(t.vocab_size() == 100278);
  CHECK(t.encode("Hello world") == std::vector<int32_t>{9906, 1917});
  CHECK(t.encode("hello world") == std::vector<int32_t>{15339, 1917});
  // \p{N}{1,3}: digits go three at a time.
  CHECK(t.encode("123456") == std::vector<int32_t>{4513, 10961});
  // (?i:'s|...): contractions match in either case.
  CHECK(t.encode("'S") == std::vector<int32_t>{13575});
  CHECK(t.encode("'s") == std::vector<int32_t>{596});
  CHECK(t.encode("<|endoftext|>") == std::vector<int32_t>{100257});
  CHECK(t.token_to_id("<|pad|>") == 100277);
}

TEST_CASE("dolma2 tokenizer decodes back to varied input") {
  const std::vector<std::string> texts = {
      "The quick brown fox jumps over the lazy dog.",
      "\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E\xE3\x81\xAE\xE6\x96\x87\xE7\xAB\xA0\xE3\x80\x82 "
      "\xE4\xB8\xAD\xE6\x96\x87\xE6\xB5\x8B\xE8\xAF\x95",  // Japanese, Chinese
      "\xD9\x85\xD8\xB1\xD8\xAD\xD8\xA8\xD8\xA7 \xD8\xA8\xD8\xA7\xD9\x84\xD8\xB9\xD8\xA7\xD9\x84"
      "\xD9\x85",                                           // Arabic
      "caf\xC3\xA9 na\xC3\xAFve r\xC3\xA9sum\xC3\xA9",      // composed accents
      "cafe\xCC\x81 nai\xCC\x88ve re\xCC\x81sume\xCC\x81",  // decomposed accents
      "\xF0\x9F\x98\x80\xF0\x9F\x91\x8D\xF0\x9F\x8F\xBD \xF0\x9F\x87\xAB\xF0\x9F\x87\xB7 "
      "\xF0\x9F\x91\xA8\xE2\x80\x8D\xF0\x9F\x91\xA9\xE2\x80\x8D\xF0\x9F\x91\xA7",  // emoji, ZWJ
      "int main(int argc, char** argv) {\n\treturn argc > 1 ? 0 : -1;\n}\n",
      "def f(x):\n    if x:\n        return [i**2 for i in range(x)]\n\n\n",
      "   leading spaces, trailing spaces   \n\n\t\t  \r\n  \u00a0nbsp\u2003em-space  ",
      "MIXED Case 'LL 'Ve I'M 12345678 3.14159 1,000,000",
      "\xD0\x9F\xD1\x80\xD0\xB8\xD0\xB2\xD0\xB5\xD1\x82, \xD0\xBC\xD0\xB8\xD1\x80! "
      "\xCE\x93\xCE\xB5\xCE\xB9\xCE\xAC \xCF\x83\xCE\xBF\xCF\x85 \xE0\xA4\xA8\xE0\xA4\xAE\xE0\xA4"
      "\xB8\xE0\xA5\x8D\xE0\xA4\xA4\xE0\xA5\x87",  // Cyrillic, Greek, Hindi
      "",
  };
  std::string all;
  for (const std::string& text : texts) {
    CAPTURE(text);
    const auto ids = dolma2().encode(text);
    CHECK(dolma2().decode(ids) == text);
    CHECK(ids.size() <= text.size());
    all += text;
  }
  CHECK(dolma2().decode(dolma2().encode(all)) == all);
  CHECK(olmoe().decode(olmoe().encode("\xE6\x97\xA5\xE6\x9C\xAC \xF0\x9F\x98\x80")) ==
        "\xE6\x97\xA5\xE6\x9C\xAC \xF0\x9F\x98\x80");
}

// The plainest BPE there is: repeatedly merge the lowest-ranked adjacent pair, leftmost first.
// The tokenizer's heap-based merge must agree with it word for word.
TEST_CASE("dolma2 encodes like a naive BPE over its own regex split") {
  const json file = json::parse(read_file(kData / "tokenizers/dolma2-tokenizer.json"));
  std::unordered_map<std::string, int32_t> vocab;
  for (const auto& [token, id] : file["model"]["vocab"].items()) vocab[token] = id.get<int32_t>();
  std::map<std::pair<std::string, std::string>, size_t> ranks;
  const auto& merges = file["model"]["merges"];
  for (size_t i = 0; i < merges.size(); ++i) {
    const std::string line = merges[i].get<std::string>();
    const size_t space = line.find(' ');
    ranks.emplace(std::pair{line.substr(0, space), line.substr(space + 1)}, i);
  }
  const std::string pattern =
      file["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"].get<std::string>();
  const moeslice::text::Regex split(pattern, moeslice::text::Regex::Syntax::kRegex, "test");

  std::string text = read_file(kData / "tokenizer-vectors/gpt-neox-20b.inp");
  text += read_file(fs::path(MOESLICE_SOURCE_DIR) / "tests/unit/test_tokenizer.cpp");
  // The naive encoder knows nothing of added tokens such as <|endoftext|>.
  for (size_t at = text.find("<|"); at != std::string::npos; at = text.find("<|", at)) {
    text.replace(at, 2, "< |");
  }
  std::vector<int32_t> expected;
  moeslice::text::split_by_regex(
      split, text, moeslice::text::SplitBehavior::kRemoved, true, [&](size_t begin, size_t end) {
        std::vector<std::string> symbols;
        for (size_t i = begin; i < end; ++i) {
          symbols.emplace_back(moeslice::text::byte_level_utf8(static_cast<uint8_t>(text[i])));
        }
        while (true) {
          size_t best = symbols.size();
          size_t best_rank = SIZE_MAX;
          for (size_t i = 0; i + 1 < symbols.size(); ++i) {
            auto it = ranks.find({symbols[i], symbols[i + 1]});
            if (it != ranks.end() && it->second < best_rank) {
              best_rank = it->second;
              best = i;
            }
          }
          if (best == symbols.size()) break;
          symbols[best] += symbols[best + 1];
          symbols.erase(symbols.begin() + static_cast<std::ptrdiff_t>(best) + 1);
        }
        for (const std::string& s : symbols) expected.push_back(vocab.at(s));
      });
  CHECK(dolma2().encode(text) == expected);
}

TEST_CASE("very long runs of one character class do not exhaust the regex engine") {
  for (const std::string& run : {std::string(300000, 'a'), std::string(300000, ' '),
                                 std::string(300000, '7'), std::string(100000, '\n') + "x"}) {
    const auto ids = dolma2().encode(run);
    CHECK(dolma2().decode(ids) == run);
    CHECK(olmoe().decode(olmoe().encode(run)) == run);
  }
}

TEST_CASE("concurrent encodes agree with a single-threaded one") {
  const std::string text = read_file(kData / "tokenizer-vectors/gpt-neox-20b.inp");
  const auto expected = dolma2().encode(text);
  std::vector<std::vector<int32_t>> results(4);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < results.size(); ++i) {
    threads.emplace_back([&, i] {
      for (int k = 0; k < 5; ++k) results[i] = dolma2().encode(text);
    });
  }
  for (auto& th : threads) th.join();
  for (const auto& r : results) CHECK(r == expected);
}

TEST_CASE("invalid UTF-8 input and unknown ids are refused") {
  CHECK_THROWS_AS(olmoe().encode("abc\xFF"), moeslice::InputError);
  CHECK_THROWS_AS(olmoe().encode("\xC3"), moeslice::InputError);
  const std::vector<int32_t> bad = {50, 999999};
  try {
    olmoe().decode(bad);
    FAIL("no exception");
  } catch (const moeslice::InputError& e) {
    CHECK(std::string(e.what()).find("999999") != std::string::npos);
  }
  CHECK_THROWS_AS(olmoe().decode(std::vector<int32_t>{-1}), moeslice::InputError);
}

TEST_CASE("SentencePiece-style BPE with byte fallback") {
  const Tokenizer t = from_json(sentencepiece_fixture());
  CHECK(t.encode("ab c") == std::vector<int32_t>{265, 266});
  CHECK(t.encode("ab c", true) == std::vector<int32_t>{1, 265, 266});
  CHECK(t.bos_id() == 1);
  CHECK_FALSE(t.eos_id().has_value());
  CHECK(t.decode(std::vector<int32_t>{265, 266}) == "ab c");
  // "é" is not in the vocabulary: its two UTF-8 bytes become <0xC3> <0xA9>.
  CHECK(t.encode("\xC3\xA9") == std::vector<int32_t>{259, 3 + 0xC3, 3 + 0xA9});
  CHECK(t.decode(t.encode("a \xC3\xA9 c")) == "a \xC3\xA9 c");
  CHECK(t.decode(std::vector<int32_t>{1, 265}, true) == "ab");
  // A lone continuation byte cannot be decoded: one U+FFFD per byte token.
  CHECK(t.decode(std::vector<int32_t>{260, 3 + 0xA9, 261}) ==
        "a\xEF\xBF\xBD"
        "b");
  CHECK(t.encode("").empty());
}

TEST_CASE("SentencePiece-style BPE: unknown characters, fused or not") {
  json j = sentencepiece_fixture();
  j["model"]["byte_fallback"] = false;
  const Tokenizer fused = from_json(j);
  CHECK(fused.encode("axyb") == std::vector<int32_t>{263, 0, 261});
  j["model"]["fuse_unk"] = false;
  const Tokenizer unfused = from_json(j);
  CHECK(unfused.encode("axyb") == std::vector<int32_t>{263, 0, 0, 261});
}

TEST_CASE("SentencePiece-style BPE with the Metaspace pre-tokenizer and decoder") {
  json j = sentencepiece_fixture();
  j["normalizer"] = nullptr;
  j["pre_tokenizer"] = {
      {"type", "Metaspace"}, {"replacement", "▁"}, {"prepend_scheme", "always"}, {"split", true}};
  j["decoder"] = {{"type", "Metaspace"}, {"replacement", "▁"}, {"prepend_scheme", "always"}};
  const Tokenizer t = from_json(j);
  CHECK(t.encode("ab c") == std::vector<int32_t>{265, 266});
  CHECK(t.encode("ab  c") == std::vector<int32_t>{265, 259, 266});
  CHECK(t.decode(std::vector<int32_t>{265, 266}) == "ab c");

  // "first" prepends only at the very start of the input, not after an added token.
  j["pre_tokenizer"]["prepend_scheme"] = "first";
  const Tokenizer first = from_json(j);
  CHECK(first.encode("ab</s>ab") == std::vector<int32_t>{265, 2, 264});
  j["pre_tokenizer"]["prepend_scheme"] = "always";
  CHECK(from_json(j).encode("ab</s>ab") == std::vector<int32_t>{265, 2, 265});
}

TEST_CASE("added tokens: lstrip, rstrip, single_word, normalized") {
  json j = byte_level_fixture();
  j["normalizer"] = {{"type", "Lowercase"}};
  j["added_tokens"] = json::array({added(256, "<mask>", true, /*lstrip=*/true),
                                   added(257, "<sep>", true, false, /*rstrip=*/true),
                                   added(258, "ony", false, false, false, /*single_word=*/true,
                                         /*normalized=*/true),
                                   added(259, "<RAW>", false)});
  const Tokenizer t = from_json(j);
  CHECK(t.encode("I saw a <mask> there") ==
        concat({bytes_of("i saw a"), {256}, bytes_of(" there")}));
  CHECK(t.encode("a<sep>  \t b") == concat({bytes_of("a"), {257}, bytes_of("b")}));
  // single_word: not inside "Anthony"; normalized: "ONY" matches after lowercasing.
  CHECK(t.encode("ony Anthony ONY") == concat({{258}, bytes_of(" anthony "), {258}}));
  CHECK(t.encode("onyx") == bytes_of("onyx"));
  // normalized=false tokens match the raw text only.
  CHECK(t.encode("<RAW><raw>") == concat({{259}, bytes_of("<raw>")}));
  CHECK(t.decode(std::vector<int32_t>{104, 256, 105}) == "h<mask>i");
  CHECK(t.decode(std::vector<int32_t>{104, 256, 105}, true) == "hi");
  CHECK(t.vocab_size() == 260);
}

TEST_CASE("merges: both forms, lowest rank first, leftmost on ties, ignore_merges") {
  auto model = [](json vocab, json merges) {
    return json{{"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", merges}}}};
  };
  // Pair form allows tokens with spaces.
  const Tokenizer pairs =
      from_json(model({{"a", 0}, {" ", 1}, {"b", 2}, {"a ", 3}, {"a b", 4}},
                      json::array({json::array({"a", " "}), json::array({"a ", "b"})})));
  CHECK(pairs.encode("a b") == std::vector<int32_t>{4});
  CHECK(pairs.decode(std::vector<int32_t>{4, 0}) == "a b a");  // no decoder: joined by spaces

  const json vocab = {{"a", 0}, {"b", 1}, {"c", 2}, {"aa", 3}, {"ab", 4}, {"bc", 5}};
  const Tokenizer ranked = from_json(model(vocab, {"b c", "a a", "a b"}));
  CHECK(ranked.encode("abc") == std::vector<int32_t>{0, 5});
  CHECK(ranked.encode("aaa") == std::vector<int32_t>{3, 0});
  CHECK(ranked.encode("aab") == std::vector<int32_t>{3, 1});
  const Tokenizer ranked_pairs = from_json(model(
      vocab,
      json::array({json::array({"b", "c"}), json::array({"a", "a"}), json::array({"a", "b"})})));
  CHECK(ranked_pairs.encode("abcaab") == ranked.encode("abcaab"));

  json with_whole = model({{"a", 0}, {"b", 1}, {"ab", 2}, {"abb", 3}}, {"a b"});
  CHECK(from_json(with_whole).encode("abb") == std::vector<int32_t>{2, 1});
  with_whole["model"]["ignore_merges"] = true;
  CHECK(from_json(with_whole).encode("abb") == std::vector<int32_t>{3});
}

TEST_CASE("Split behaviours and Digits") {
  using moeslice::text::Regex;
  using moeslice::text::SplitBehavior;
  const Regex dash("-", Regex::Syntax::kLiteral, "test");
  auto pieces = [&](std::string_view text, SplitBehavior b, bool invert = false) {
    std::vector<std::string> out;
    moeslice::text::split_by_regex(dash, text, b, invert, [&](size_t begin, size_t end) {
      out.emplace_back(text.substr(begin, end - begin));
    });
    return out;
  };
  using V = std::vector<std::string>;
  CHECK(pieces("the-final--x", SplitBehavior::kRemoved) == V{"the", "final", "x"});
  CHECK(pieces("the-final--x", SplitBehavior::kIsolated) == V{"the", "-", "final", "-", "-", "x"});
  CHECK(pieces("the-final--x", SplitBehavior::kMergedWithPrevious) ==
        V{"the-", "final-", "-", "x"});
  CHECK(pieces("the-final--x", SplitBehavior::kMergedWithNext) == V{"the", "-final", "-", "-x"});
  CHECK(pieces("the-final--x", SplitBehavior::kContiguous) == V{"the", "-", "final", "--", "x"});
  CHECK(pieces("-a-", SplitBehavior::kRemoved, true) == V{"-", "-"});

  // A byte-level tokenizer with Digits(individual) before ByteLevel: each digit on its own.
  json j = byte_level_fixture();
  json vocab = j["model"]["vocab"];
  vocab["12"] = 300;
  j["model"]["vocab"] = vocab;
  j["model"]["merges"] = {"1 2"};
  j["pre_tokenizer"] = {
      {"type", "Sequence"},
      {"pretokenizers",
       json::array({{{"type", "Digits"}, {"individual_digits", true}},
                    {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}}})}};
  CHECK(from_json(j).encode("a12") == bytes_of("a12"));
  j["pre_tokenizer"]["pretokenizers"][0]["individual_digits"] = false;
  CHECK(from_json(j).encode("a12") == std::vector<int32_t>{'a', 300});
  // ByteLevel's add_prefix_space adds a space when the text does not start with one.
  j["pre_tokenizer"]["pretokenizers"][1]["add_prefix_space"] = true;
  CHECK(from_json(j).encode("a12") == std::vector<int32_t>{' ', 'a', ' ', 300});
}

TEST_CASE("unknown component types are refused by name") {
  const json base = byte_level_fixture();
  struct Case {
    const char* key;
    json value;
    const char* type;
  };
  const std::vector<Case> cases = {
      {"normalizer", {{"type", "BertNormalizer"}}, "BertNormalizer"},
      {"pre_tokenizer", {{"type", "Whitespace"}}, "Whitespace"},
      {"post_processor", {{"type", "FancyProcessing"}}, "FancyProcessing"},
      {"decoder", {{"type", "WordPiece"}, {"prefix", "##"}}, "WordPiece"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.key);
    json j = base;
    j[c.key] = c.value;
    const std::string message = error_message<moeslice::UnsupportedError>(j, "weird.json");
    CHECK(message.find("weird.json") != std::string::npos);
    CHECK(message.find(c.type) != std::string::npos);
    CHECK(message.find("supported:") != std::string::npos);
  }
  json wordpiece = base;
  wordpiece["model"]["type"] = "WordPiece";
  const std::string message = error_message<moeslice::UnsupportedError>(wordpiece, "wp.json");
  CHECK(message.find("wp.json") != std::string::npos);
  CHECK(message.find("WordPiece") != std::string::npos);
  CHECK(message.find("BPE") != std::string::npos);

  // Nested in a Sequence, the path says where.
  json nested = base;
  nested["pre_tokenizer"] = {{"type", "Sequence"},
                             {"pretokenizers", json::array({{{"type", "Punctuation"}}})}};
  CHECK(error_message<moeslice::UnsupportedError>(nested).find("pretokenizers[0]") !=
        std::string::npos);
}

TEST_CASE("malformed files are refused with the file named") {
  try {
    Tokenizer::from_json_text("{\"model\": [1, 2", "cut.json");
    FAIL("no exception");
  } catch (const moeslice::FormatError& e) {
    CHECK(std::string(e.what()).find("cut.json") != std::string::npos);
  }
  json no_vocab = byte_level_fixture();
  no_vocab["model"].erase("vocab");
  CHECK(error_message<moeslice::FormatError>(no_vocab).find("'vocab'") != std::string::npos);

  json bad_merge = byte_level_fixture();
  bad_merge["model"]["merges"] = {"Ġ zzz"};
  CHECK(error_message<moeslice::FormatError>(bad_merge).find("zzz") != std::string::npos);

  json bad_merge_form = byte_level_fixture();
  bad_merge_form["model"]["merges"] = {"a b c"};
  CHECK(error_message<moeslice::FormatError>(bad_merge_form).find("merges[0]") !=
        std::string::npos);

  json bad_regex = byte_level_fixture();
  bad_regex["pre_tokenizer"] = {{"type", "Split"},
                                {"pattern", {{"Regex", "(unclosed"}}},
                                {"behavior", "Isolated"},
                                {"invert", false}};
  CHECK(error_message<moeslice::FormatError>(bad_regex).find("(unclosed") != std::string::npos);

  json dropout = byte_level_fixture();
  dropout["model"]["dropout"] = 0.1;
  CHECK(error_message<moeslice::UnsupportedError>(dropout).find("dropout") != std::string::npos);

  json no_model = byte_level_fixture();
  no_model.erase("model");
  CHECK(error_message<moeslice::FormatError>(no_model).find("'model'") != std::string::npos);

  try {
    Tokenizer::from_file(kData / "tokenizers/does-not-exist.json");
    FAIL("no exception");
  } catch (const moeslice::InputError& e) {
    CHECK(std::string(e.what()).find("does-not-exist.json") != std::string::npos);
  }
}
