// The command-line flags shared by every command that reads a corpus (--corpus, --tokenizer,
// --field, --format, --one-doc-per-line, --domain, --add-bos, --max-docs, --max-tokens,
// --skip-bad), turned into CorpusOptions, and the warnings printed after reading.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "text/corpus.h"

namespace moeslice::app {

struct CorpusFlags {
  std::string corpus;
  std::string tokenizer;
  std::string field;
  std::string format = "auto";
  std::string domain;
  bool one_doc_per_line = false;
  bool add_bos = false;
  bool skip_bad = false;
  int64_t max_docs = 0;
  int64_t max_tokens = 0;
};

// Registers the flags on `command`; `flags` must outlive the parse (keep it in the command's
// shared options). `corpus_required` false lets a command run on other inputs alone (eval --tasks).
void add_corpus_flags(CLI::App& command, CorpusFlags& flags, bool corpus_required = true);

// CorpusOptions for a model: the tokenizer is --tokenizer (a tokenizer.json or a GGUF file), else
// <model_dir>/tokenizer.json when it exists, else a GGUF model's own tokenizer when `model_dir`
// is a GGUF file and its tokenizer can be read (else none, and the reason ends the message of a
// corpus that needs one); token ids are checked against `vocab`. Warns on stderr when the
// tokenizer's vocabulary is larger than the model's.
CorpusOptions corpus_options(const CorpusFlags& flags, const std::filesystem::path& model_dir,
                             int64_t vocab);

// The path of the tokenizer corpus_options() chose ("" when none).
std::string chosen_tokenizer(const CorpusFlags& flags, const std::filesystem::path& model_dir);

// Prints "moeslice: warning: ..." lines for skipped records and files and early stops.
void print_corpus_warnings(const CorpusFlags& flags, const CorpusStats& stats);

// The corpus's entry in an output's "sources" list.
nlohmann::json corpus_source_json(const CorpusFlags& flags, const std::string& tokenizer,
                                  const char* shape, const CorpusStats& stats);

}  // namespace moeslice::app
