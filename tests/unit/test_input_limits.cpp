// Limits on inputs: parse_json's nesting bound and messages, excerpt's bounds, the bound reaching
// the JSON readers (files, tokenizer.json and its Sequence components), shape expressions that
// overflow, and config sizes beyond the named limits.
#include <doctest/doctest.h>

#include <string>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/excerpt.h"
#include "common/json_parse.h"
#include "format/json_file.h"
#include "model/dim_expression.h"
#include "model/keep_plan.h"
#include "model/model_spec.h"
#include "test_util.h"
#include "text/corpus.h"
#include "text/corpus_input.h"
#include "text/tokenizer.h"

using namespace moeslice;
using moeslice::test::check_mentions;
using moeslice::test::thrown_message;
namespace fs = std::filesystem;

namespace {

std::string nested_arrays(size_t depth) {
  return std::string(depth, '[') + std::string(depth, ']');
}

}  // namespace

TEST_CASE("parse_json accepts nesting up to the limit and refuses one level more") {
  CHECK(parse_json(nested_arrays(kMaxJsonDepth), "a.json").is_array());
  const auto message = thrown_message<FormatError>(
      [] { parse_json("{\"a\":\n " + nested_arrays(kMaxJsonDepth), "a.json"); });
  check_mentions(message, {"a.json", "more than 256 levels deep", "line 2, column 257"});
  // A lower limit for a format that has one (the safetensors header).
  CHECK_THROWS_AS(parse_json(nested_arrays(4), "h", 3), FormatError);
}

TEST_CASE("brackets inside strings do not count as nesting") {
  const std::string deep_string =
      "[\"" + std::string(10'000, '[') + "\\\"" + std::string(10'000, '{') + "\"]";
  CHECK(parse_json(deep_string, "s.json")[0].get<std::string>().size() == 20'001);
}

TEST_CASE("300,000 unclosed brackets are refused quickly, without a stack overflow") {
  const std::string text(300'000, '[');
  check_mentions(thrown_message<FormatError>([&] { parse_json(text, "deep.json"); }),
                 {"deep.json", "more than 256 levels deep"});
  // Unbalanced closers do not make the count negative and let deeper input through.
  const std::string closers = std::string(1000, ']') + std::string(300, '[');
  check_mentions(thrown_message<FormatError>([&] { parse_json(closers, "c.json"); }),
                 {"more than 256 levels deep"});
}

TEST_CASE("a syntax error is a JsonSyntaxError whose message quotes at most an excerpt") {
  // A truncated line of 10 MB: nlohmann's "last read" would quote all of it.
  const std::string huge = "{\"text\": \"" + std::string(10'000'000, 'x');
  const auto message = thrown_message<JsonSyntaxError>([&] { parse_json(huge, "big.jsonl:3"); });
  check_mentions(message, {"big.jsonl:3: not valid JSON", "missing closing quote", "bytes)"});
  CHECK(message.size() < 400);
  // A number beyond a double is nlohmann's out_of_range, not a parse_error: still a syntax error.
  check_mentions(thrown_message<JsonSyntaxError>([] { parse_json("[7E322222]", "n.json"); }),
                 {"n.json: not valid JSON", "number overflow", "7E322222"});
  try {
    parse_json("{\"a\": tru}", "t.json");
    FAIL("no exception");
  } catch (const JsonSyntaxError& error) {
    CHECK(std::string(error.detail()).find("column") != std::string::npos);
    CHECK(std::string(error.detail()).find("json.exception") == std::string::npos);
  }
}

TEST_CASE("excerpt keeps short text, cuts long text at a character and escapes control bytes") {
  CHECK(excerpt("short") == "short");
  CHECK(excerpt("a\nb\x01") == "a\\nb\\x01");
  const std::string long_text(1000, 'y');
  CHECK(excerpt(long_text) == std::string(kMaxExcerptBytes, 'y') + "... (1000 bytes)");
  // "é" is two bytes: a cut inside it backs up to before it.
  std::string accents;
  for (int i = 0; i < 100; ++i) accents += "\xc3\xa9";
  const std::string cut = excerpt("x" + accents, 4);
  CHECK(cut == "x\xc3\xa9... (201 bytes)");
  CHECK(json_excerpt(nlohmann::json(long_text)).size() < 100);
}

TEST_CASE("read_json_file refuses deep nesting, naming the file") {
  test::TempDir dir;
  const auto path = dir.path() / "plan.json";
  test::write_file(path, "{\"unused\": " + std::string(300'000, '[') + "}");
  check_mentions(thrown_message<FormatError>([&] { read_json_file(path); }),
                 {path.string(), "more than 256 levels deep", "line 1, column 267"});
}

TEST_CASE("tokenizer.json: deep JSON and deeply nested Sequence components are refused") {
  check_mentions(thrown_message<FormatError>(
                     [] { Tokenizer::from_json_text(std::string(20'000, '['), "deep.json"); }),
                 {"deep.json", "levels deep"});
  // Sequence pre-tokenizers nested 20 deep: within the JSON limit, beyond the Sequence one.
  std::string pre = R"({"type": "Digits"})";
  for (int i = 0; i < 20; ++i) pre = R"({"type": "Sequence", "pretokenizers": [)" + pre + "]}";
  const std::string text = R"({"model": {"type": "BPE", "vocab": {}, "merges": []},
                               "pre_tokenizer": )" +
                           pre + "}";
  check_mentions(thrown_message<FormatError>([&] { Tokenizer::from_json_text(text, "seq.json"); }),
                 {"seq.json", "Sequence components nested more than 16 deep"});
}

TEST_CASE("shape expressions refuse 64-bit overflow and deep parentheses") {
  const auto lookup = [](std::string_view) -> int64_t { return INT64_MAX / 2; };
  CHECK(evaluate_dim_expression("2 * (3 + 4) / 7", lookup) == 2);
  for (const char* expression : {"x * 3", "x + x + x", "0 - x - x - x", "99999999999999999999"})
    check_mentions(
        thrown_message<std::invalid_argument>([&] { evaluate_dim_expression(expression, lookup); }),
        {"overflows 64 bits"});
  const std::string deep = std::string(100'000, '(') + "1" + std::string(100'000, ')');
  check_mentions(
      thrown_message<std::invalid_argument>([&] { evaluate_dim_expression(deep, lookup); }),
      {"nested too deep", "... (200001 bytes)"});
}

TEST_CASE(
    "a config asking for more layers or experts than the limits is refused before its "
    "tensor list is built") {
  const auto config =
      read_json_file(fs::path(MOESLICE_SOURCE_DIR) / "examples/models/emo-style/config.json");
  CHECK(resolve_model_spec(config, "config.json").layers.size() == 4);
  const struct {
    const char* key;
    int64_t value;
    const char* mentions;
  } cases[] = {
      {"num_experts", 1'000'000'000'000, "'num_experts' is 1000000000000, more than the limit"},
      {"num_experts", int64_t{1} << 31, "'num_experts' is 2147483648"},
      {"num_experts", 20'000, "limit of 16384 experts per layer"},
      {"num_hidden_layers", 1'000'000'000, "limit of 1024 layers"},
      {"num_hidden_layers", 1000, "1000 layers of 320 experts"},
      {"vocab_size", int64_t{1} << 40, "'vocab_size' is 1099511627776"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.key);
    CAPTURE(c.value);
    auto changed = config;
    changed[c.key] = c.value;
    if (std::string(c.key) == "num_hidden_layers" && c.value == 1000) changed["num_experts"] = 320;
    check_mentions(thrown_message<ModelError>([&] { resolve_model_spec(changed, "config.json"); }),
                   {"config.json", c.mentions});
  }
}

TEST_CASE("a corpus line cut short after 10 MB gives a short message; a deep one is refused") {
  test::TempDir dir;
  const auto path = dir.path() / "big.jsonl";
  test::write_file(path, "{\"text\": \"ok\"}\n{\"text\": \"" + std::string(10'000'000, 'x') + "\n" +
                             "{\"text\": " + std::string(100'000, '[') + "\n");
  CorpusOptions options;
  options.format = CorpusFormat::jsonl;
  options.field = "input_ids";
  options.skip_bad = true;
  CorpusReader reader(path, options);
  const auto message = thrown_message<InputError>([&] { reader.next(); });
  check_mentions(message, {"big.jsonl", "no documents"});
  const CorpusStats& stats = reader.stats();
  CHECK(stats.skipped_bad == 3);
  REQUIRE(stats.skipped_examples.size() >= 3);
  check_mentions(stats.skipped_examples[1], {"big.jsonl:2: invalid JSON", "(10000001 bytes)"});
  CHECK(stats.skipped_examples[1].size() < 400);
  check_mentions(stats.skipped_examples[2], {"big.jsonl:3", "more than 256 levels deep"});
}

TEST_CASE("plans: a huge expert id is quoted as written; an EMO layer needs a routed expert") {
  const auto config =
      read_json_file(fs::path(MOESLICE_SOURCE_DIR) / "examples/models/emo-style/config.json");
  const ModelSpec spec = resolve_model_spec(config, "config.json");
  auto plan_with = [](const char* layer0) {
    return parse_json(
        fmt::format(R"({{"experts_kept_per_layer": [{}, null, null, null]}})", layer0),
        "plan.json");
  };
  check_mentions(thrown_message<InputError>([&] {
                   parse_keep_plan(plan_with("[0, 18446744073709551615]"), spec, "plan.json");
                 }),
                 {"plan.json", "layer 0: expert id 18446744073709551615 is out of range"});
  // Expert 31 is the shared one: kept alone, the router would have nothing to choose from.
  check_mentions(
      thrown_message<InputError>([&] { parse_keep_plan(plan_with("[31]"), spec, "plan.json"); }),
      {"layer 0 keeps 1 experts, fewer than the 4 experts per token", "all of them shared"});
  CHECK(parse_keep_plan(plan_with("[0, 31]"), spec, "plan.json").kept_in(0)->size() == 2);
}

TEST_CASE("a model_type that is not a string is an unknown family, not an internal error") {
  // Found by the model_config fuzz target (tests/fuzz/corpus/model_config/regress-model-type-*).
  for (const char* model_type : {"5", "10000.0", "[\"emo\"]", "null"}) {
    CAPTURE(model_type);
    const auto config = parse_json(
        fmt::format(R"({{"model_type": {}, "architectures": ["EmoForCausalLM"]}})", model_type),
        "config.json");
    check_mentions(
        thrown_message<UnsupportedError>([&] { resolve_model_spec(config, "config.json"); }),
        {"config.json: unknown model family", model_type});
  }
}
