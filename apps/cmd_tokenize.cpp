// `moeslice tokenize`: text to token ids with a Hugging Face tokenizer.json or a GGUF file's own
// tokenizer, or ids back to text with --decode. Each input is one sequence; special tokens only
// with --add-special.
#include <charconv>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/core.h>

#include "command_io.h"
#include "commands.h"
#include "common/error.h"
#include "common/mapped_file.h"
#include "text/gguf_tokenizer.h"
#include "text/tokenizer.h"

namespace moeslice::app {

namespace {

std::string read_whole_file(const std::string& path) {
  const MappedFile file(path);
  const auto bytes = file.bytes();
  return std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

// Whitespace-separated decimal ids; every bad word is named, up to a few.
std::vector<int32_t> parse_ids(std::string_view text, std::string_view source, int32_t vocab_size) {
  std::vector<int32_t> ids;
  std::vector<std::string> bad;
  size_t bad_count = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    while (pos < text.size() &&
           std::string_view(" \t\r\n\f\v").find(text[pos]) != std::string_view::npos)
      ++pos;
    if (pos >= text.size()) break;
    size_t end = pos;
    while (end < text.size() &&
           std::string_view(" \t\r\n\f\v").find(text[end]) == std::string_view::npos)
      ++end;
    const std::string_view word = text.substr(pos, end - pos);
    pos = end;
    int64_t value = 0;
    const auto [ptr, ec] = std::from_chars(word.data(), word.data() + word.size(), value);
    std::string problem;
    if (ec != std::errc() || ptr != word.data() + word.size()) {
      problem = fmt::format("'{}' (not an integer)", word);
    } else if (value < 0 || value >= vocab_size) {
      problem = fmt::format("{} (outside 0..{})", value, vocab_size - 1);
    } else {
      ids.push_back(static_cast<int32_t>(value));
      continue;
    }
    if (++bad_count <= 5) bad.push_back(std::move(problem));
  }
  if (bad_count > 0) {
    std::string list;
    for (const std::string& b : bad) list += (list.empty() ? "" : ", ") + b;
    if (bad_count > bad.size()) list += fmt::format(" and {} more", bad_count - bad.size());
    throw InputError(fmt::format("{}: {} bad token id{}: {}", source, bad_count,
                                 bad_count == 1 ? "" : "s", list));
  }
  return ids;
}

}  // namespace

void add_tokenize_command(CLI::App& app) {
  struct Options {
    std::string tokenizer;
    std::vector<std::string> inputs;
    std::string text;
    bool add_special = false;
    bool decode = false;
  };
  auto options = std::make_shared<Options>();
  CLI::App* command = app.add_subcommand(
      "tokenize",
      "Turn text into token ids with a tokenizer.json or a GGUF file's tokenizer, or ids into "
      "text (--decode)");
  command
      ->add_option("--tokenizer", options->tokenizer,
                   "Hugging Face tokenizer.json, or a GGUF file (its tokenizer.ggml.* metadata)")
      ->required();
  CLI::Option* input = command->add_option(
      "--input", options->inputs,
      "File whose whole content is the text (the ids with --decode); several files give one "
      "line of ids each, in order");
  CLI::Option* text =
      command->add_option("--text", options->text, "The text itself (the ids with --decode)");
  input->excludes(text);
  CLI::Option* decode = command->add_flag(
      "--decode", options->decode,
      "Read whitespace-separated ids and print their text as is (no newline added)");
  command
      ->add_flag("--add-special", options->add_special,
                 "Add the special tokens of the tokenizer's post-processor (BOS/EOS)")
      ->excludes(decode);
  command->callback([options, input, text] {
    const bool from_file = input->count() > 0;
    // An empty --text is fine (it encodes to nothing); a missing source is not.
    if (!from_file && text->count() == 0) {
      throw InputError("tokenize needs the text: --input FILE or --text STRING");
    }
    CommandIo().file(options->tokenizer, "--tokenizer").files(options->inputs, "--input");
    const Tokenizer tokenizer = open_tokenizer(options->tokenizer);
    std::vector<std::string> sources = options->inputs;
    if (!from_file) sources.assign(1, "--text");
    for (const std::string& source : sources) {
      const std::string content = from_file ? read_whole_file(source) : options->text;
      if (options->decode) {
        const std::vector<int32_t> ids = parse_ids(content, source, tokenizer.vocab_size());
        std::string decoded;
        try {
          decoded = tokenizer.decode(ids);
        } catch (const InputError& e) {
          throw InputError(fmt::format("{}: {}", source, e.what()));
        }
        std::fwrite(decoded.data(), 1, decoded.size(), stdout);
        continue;
      }
      std::vector<int32_t> ids;
      try {
        ids = tokenizer.encode(content, options->add_special);
      } catch (const InputError& e) {
        throw InputError(fmt::format("{}: {}", source, e.what()));
      }
      std::string line;
      line.reserve(ids.size() * 6 + 1);
      for (size_t i = 0; i < ids.size(); ++i) {
        if (i > 0) line += ' ';
        line += std::to_string(ids[i]);
      }
      line += '\n';
      std::fwrite(line.data(), 1, line.size(), stdout);
    }
  });
}

}  // namespace moeslice::app
