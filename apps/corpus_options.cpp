// Shared corpus flags: registration, the tokenizer default (the model directory's
// tokenizer.json, or a GGUF model's own tokenizer), and the warnings and metadata that every
// corpus-reading command reports.
#include "corpus_options.h"

#include <cstdio>

#include <fmt/core.h>

#include "common/atomic_output.h"
#include "count_flags.h"
#include "text/gguf_tokenizer.h"

namespace moeslice::app {

void add_corpus_flags(CLI::App& command, CorpusFlags& flags, bool corpus_required) {
  CLI::Option* corpus =
      command.add_option("--corpus", flags.corpus,
                         "Corpus: JSON Lines (.jsonl/.ndjson/.json; {\"text\": ...} or "
                         "{\"input_ids\": [...]}, optional \"id\", \"domain\"), a text file, a "
                         "directory of text files, or - for JSON Lines on stdin");
  corpus->required(corpus_required);
  command.add_option("--tokenizer", flags.tokenizer,
                     "tokenizer.json for text, or a GGUF file (default: the model directory's "
                     "tokenizer.json; a GGUF model's own tokenizer)");
  command.add_option("--field", flags.field,
                     "JSON Lines field holding the document: a string is text, a list is token "
                     "ids (default: input_ids when present, else text)");
  command.add_option("--format", flags.format, "Corpus shape: auto, jsonl or text")
      ->check(CLI::IsMember({"auto", "jsonl", "text"}));
  command.add_flag("--one-doc-per-line", flags.one_doc_per_line,
                   "Plain text: one document per non-blank line (default: the whole file)");
  command.add_option("--domain", flags.domain,
                     "Domain label of documents that do not carry a \"domain\"");
  command.add_flag("--add-bos", flags.add_bos,
                   "Put the tokenizer's BOS token before every document");
  command.add_option("--max-docs", flags.max_docs, "Read at most N documents")
      ->check(count_in_range(1, kMaxCountFlag));
  command
      .add_option("--max-tokens", flags.max_tokens, "Stop after the document that reaches N tokens")
      ->check(count_in_range(1, kMaxCountFlag));
  command.add_flag("--skip-bad", flags.skip_bad,
                   "Skip bad records (invalid JSON or UTF-8, missing fields, bad ids, empty "
                   "documents) with a warning instead of failing");
}

std::string chosen_tokenizer(const CorpusFlags& flags, const std::filesystem::path& model_dir) {
  if (!flags.tokenizer.empty()) return flags.tokenizer;
  std::error_code error;
  if (std::filesystem::is_regular_file(model_dir, error)) return model_dir.string();  // a GGUF
  const std::filesystem::path candidate = model_dir / "tokenizer.json";
  if (std::filesystem::is_regular_file(candidate, error)) return candidate.string();
  return {};
}

CorpusOptions corpus_options(const CorpusFlags& flags, const std::filesystem::path& model_dir,
                             int64_t vocab) {
  CorpusOptions options;
  options.format = flags.format == "jsonl"  ? CorpusFormat::jsonl
                   : flags.format == "text" ? CorpusFormat::text
                                            : CorpusFormat::automatic;
  options.field = flags.field;
  options.one_doc_per_line = flags.one_doc_per_line;
  options.vocab = vocab;
  options.add_bos = flags.add_bos;
  options.max_docs = flags.max_docs;
  options.max_tokens = flags.max_tokens;
  options.skip_bad = flags.skip_bad;
  options.default_domain = flags.domain;
  const std::string tokenizer = chosen_tokenizer(flags, model_dir);
  const bool own_gguf_tokenizer = flags.tokenizer.empty() && tokenizer == model_dir.string();
  if (own_gguf_tokenizer) {
    // A GGUF model's own tokenizer is used when it can be; token-id corpora need none.
    try {
      options.tokenizer = open_tokenizer(tokenizer);
    } catch (const InputError& error) {
      options.no_tokenizer_hint = fmt::format(
          "the GGUF's own tokenizer cannot be used: {}; pass --tokenizer FILE", error.what());
    }
  } else if (!tokenizer.empty()) {
    options.tokenizer = open_tokenizer(tokenizer);
  }
  if (options.tokenizer && options.tokenizer->vocab_size() > vocab)
    fmt::print(stderr,
               "moeslice: warning: {} has {} tokens, more than the model's vocabulary of {}; "
               "text that uses the extra tokens will be refused\n",
               tokenizer, options.tokenizer->vocab_size(), vocab);
  return options;
}

void print_corpus_warnings(const CorpusFlags& flags, const CorpusStats& stats) {
  const std::string corpus = flags.corpus == "-" ? std::string("<stdin>") : flags.corpus;
  if (stats.skipped_bad > 0) {
    fmt::print(stderr, "moeslice: warning: {}: skipped {} bad record{} (--skip-bad)\n", corpus,
               stats.skipped_bad, stats.skipped_bad == 1 ? "" : "s");
    for (const std::string& example : stats.skipped_examples)
      fmt::print(stderr, "moeslice: warning:   {}\n", example);
    if (stats.skipped_bad > static_cast<int64_t>(stats.skipped_examples.size()))
      fmt::print(stderr, "moeslice: warning:   ... and {} more\n",
                 stats.skipped_bad - static_cast<int64_t>(stats.skipped_examples.size()));
  }
  if (stats.skipped_binary > 0 || stats.skipped_empty_files > 0)
    fmt::print(stderr,
               "moeslice: warning: {}: skipped {} binary file{} (a NUL byte or invalid UTF-8) "
               "and {} empty file{}\n",
               corpus, stats.skipped_binary, stats.skipped_binary == 1 ? "" : "s",
               stats.skipped_empty_files, stats.skipped_empty_files == 1 ? "" : "s");
}

nlohmann::json corpus_source_json(const CorpusFlags& flags, const std::string& tokenizer,
                                  const char* shape, const CorpusStats& stats) {
  nlohmann::json source = {
      {"corpus", flags.corpus == "-" ? std::string("-") : normalized_absolute_path(flags.corpus)},
      {"shape", shape},
      {"documents", stats.documents},
      {"tokens", stats.tokens},
      {"tokenizer",
       tokenizer.empty() ? nlohmann::json() : nlohmann::json(normalized_absolute_path(tokenizer))},
  };
  if (!flags.field.empty()) source["field"] = flags.field;
  if (flags.add_bos) source["add_bos"] = true;
  if (stats.limited) source["limited"] = true;
  if (stats.skipped_bad > 0) source["skipped_bad"] = stats.skipped_bad;
  if (stats.skipped_binary > 0) source["skipped_binary"] = stats.skipped_binary;
  return source;
}

}  // namespace moeslice::app
