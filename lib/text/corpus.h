// Task corpora turned into token documents, one at a time. Accepted shapes
// (docs/corpus-formats.md):
//   - JSON Lines (.jsonl, .ndjson, .json, "-" for standard input, or any file starting with
//     '{'): one object per line with the text in "text" (or another field), or token ids in
//     "input_ids"; optional "id", "domain".
//   - plain text (.txt, .md, ... or any file not starting with '{'): the whole file is one
//     document, or one document per non-blank line.
//   - a directory: every non-hidden regular file below it is one document (its relative path is
//     the id), in byte order of the paths; binary and empty files are skipped and counted.
// CorpusReader is a pull interface: it holds one line or one file at a time, so a corpus of any
// size streams in bounded memory. Bad records throw FormatError naming the file and line, or are
// skipped and counted with `skip_bad`.
//
// Thread safety: a CorpusReader is used by one thread at a time.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "text/tokenizer.h"

namespace moeslice {

struct CorpusDocument {
  std::string id;      // the record's "id"; else its 0-based record index (or relative path)
  std::string domain;  // the record's "domain"; else CorpusOptions::default_domain
  std::vector<int32_t> tokens;
  std::string source;  // the file the document came from ("<stdin>" for standard input)
  size_t line = 0;     // 1-based line where the document starts in `source`
};
// The name the forward pass and profiler have always used.
using TokenDocument = CorpusDocument;

enum class CorpusFormat {
  // A directory: its files. .jsonl/.ndjson/.json: JSON Lines. With one_doc_per_line: text.
  // "-": JSON Lines. .txt/.text/.md/.markdown/.rst: text. Any other file: JSON Lines when its
  // first non-blank byte is '{' (or it is empty), else text.
  automatic,
  jsonl,
  text,
};

// The default advice when text needs a tokenizer and there is none.
inline constexpr const char* kNoTokenizerHint =
    "put a tokenizer.json in the model directory or pass --tokenizer FILE";

struct CorpusOptions {
  CorpusFormat format = CorpusFormat::automatic;
  // JSON Lines: the field holding the document, a string (text) or a list (token ids). Empty:
  // "input_ids" when the record has it, else "text".
  std::string field;
  // Plain text: one document per non-blank line instead of the whole file.
  bool one_doc_per_line = false;
  // Needed for text; Tokenizer copies are cheap (shared data).
  std::optional<Tokenizer> tokenizer;
  // Without a tokenizer: what to tell a user whose corpus needs one.
  std::string no_tokenizer_hint = kNoTokenizerHint;
  // Every token id must be below this (the model's embedding rows); 0: the tokenizer's
  // vocabulary size, or any non-negative int32 without a tokenizer.
  int64_t vocab = 0;
  // Put the tokenizer's BOS id before every document (InputError when it has none).
  bool add_bos = false;
  int64_t max_docs = 0;        // > 0: stop after this many documents
  int64_t max_tokens = 0;      // > 0: stop after the document that reaches this many tokens
  bool skip_bad = false;       // count and skip bad records instead of throwing
  std::string default_domain;  // the domain of documents that do not name one
};

struct CorpusStats {
  int64_t documents = 0;                      // returned so far
  int64_t tokens = 0;                         // in the returned documents (BOS included)
  int64_t skipped_bad = 0;                    // bad records skipped (skip_bad)
  std::vector<std::string> skipped_examples;  // the first few of their messages
  int64_t skipped_binary = 0;                 // directory: files with a NUL byte or invalid UTF-8
  int64_t skipped_empty_files = 0;            // directory: zero-byte files
  bool limited = false;                       // stopped early by max_docs or max_tokens
};

class CorpusReader {
 public:
  // Opens the corpus and checks the options against its shape. Throws InputError for a missing
  // path, text without a tokenizer, add_bos without a BOS id, one_doc_per_line on JSON Lines.
  CorpusReader(const std::filesystem::path& path, CorpusOptions options);
  ~CorpusReader();
  CorpusReader(CorpusReader&&) noexcept;
  CorpusReader& operator=(CorpusReader&&) noexcept;

  // The next document, or nullopt at the end (or at a limit). Throws FormatError "file:line:
  // ..." for a bad record (invalid JSON or UTF-8, a missing or mistyped field, an id outside the
  // vocabulary, an empty document) unless skip_bad; InputError when the corpus ends without a
  // single document.
  std::optional<CorpusDocument> next();

  const CorpusStats& stats() const;
  // "jsonl", "text", "text-lines" or "directory".
  const char* shape() const;
  // Progress: input bytes consumed and the total (0 when unknown, e.g. a pipe).
  uint64_t bytes_read() const;
  uint64_t total_bytes() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Every document of the corpus (for commands that keep them all anyway).
std::vector<CorpusDocument> read_corpus(const std::filesystem::path& path, CorpusOptions options,
                                        CorpusStats* stats = nullptr);

// A JSON Lines corpus of token ids ({"input_ids": [...], "id": ...}) checked against `vocab`.
std::vector<TokenDocument> read_token_corpus(const std::filesystem::path& path, int64_t vocab);

}  // namespace moeslice
