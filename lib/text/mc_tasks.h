// Multiple-choice tasks in the lm-eval style, read from JSON Lines (a file, or "-" for standard
// input), one task per line: {"context": "...", "choices": ["...", ...], "answer": index} with
// optional "id" and "domain". Each task comes back tokenised: the context once, and for every
// choice the continuation tokens that follow it.
//
// Tokenisation rule (that of lm-eval's _encode_pair, plus a fallback):
//   1. Trailing whitespace of the context (space, tab, CR, LF, FF, VT) moves to the front of
//      every choice, so "Answer: " + "Paris" is scored as "Answer:" + " Paris".
//   2. context = tokens(context); whole = tokens(context + choice).
//   3. If `whole` starts with `context`, the choice's tokens are whole[len(context):] -- exactly
//      lm-eval's result.
//   4. Otherwise the last context token merged with the start of the choice (lm-eval would then
//      score a shifted split); the choice's tokens are tokens(choice) on their own, so the
//      context tokens stay the same for every choice. Such choices are counted in
//      McTaskStats::boundary_fallbacks.
//   With add_bos the BOS id is put before the context. An empty context (after step 1) is
//   refused unless add_bos gives it a token, since nothing would predict the first choice token.
//
// Thread safety: a McTaskReader is used by one thread at a time; encode_mc_task is reentrant.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "text/tokenizer.h"

namespace moeslice {

struct McTask {
  std::string id;                // the record's "id", else its 0-based record index
  std::string domain;            // the record's "domain", else McTaskOptions::default_domain
  std::vector<int32_t> context;  // BOS (with add_bos) and the context's tokens
  std::vector<std::vector<int32_t>> choices;  // continuation tokens per choice, never empty
  std::vector<size_t> choice_bytes;           // each choice's text length in bytes (acc_norm)
  size_t answer = 0;                          // index into choices
  std::string source;                         // the file ("<stdin>" for standard input)
  size_t line = 0;                            // 1-based line of the task
};

struct McTaskOptions {
  explicit McTaskOptions(Tokenizer tokenizer_) : tokenizer(std::move(tokenizer_)) {}
  Tokenizer tokenizer;
  int64_t vocab = 0;  // token ids must be below this; 0: the tokenizer's vocabulary size
  bool add_bos = false;
  int64_t max_tasks = 0;  // > 0: stop after this many tasks
  bool skip_bad = false;  // count and skip bad records instead of throwing
  std::string default_domain;
};

struct McTaskStats {
  int64_t tasks = 0;
  int64_t skipped_bad = 0;
  std::vector<std::string> skipped_examples;  // the first few messages
  int64_t boundary_fallbacks = 0;             // choices tokenised on their own (rule 4)
};

// The tokens of one task by the rule above (without BOS and vocabulary checks).
struct McEncoding {
  std::vector<int32_t> context;
  std::vector<std::vector<int32_t>> choices;
  std::vector<bool> fallback;  // per choice: rule 4 was used
};
McEncoding encode_mc_task(const Tokenizer& tokenizer, std::string_view context,
                          std::span<const std::string> choices);

class McTaskReader {
 public:
  // Throws InputError when the file cannot be opened, or add_bos without a BOS id.
  McTaskReader(const std::filesystem::path& path, McTaskOptions options);
  ~McTaskReader();
  McTaskReader(McTaskReader&&) noexcept;
  McTaskReader& operator=(McTaskReader&&) noexcept;

  // The next task, or nullopt at the end. Throws FormatError "file:line: ..." for invalid JSON
  // or UTF-8, a missing or mistyped field, fewer than two choices, an answer that is not an
  // index into the choices, an empty context or choice, ids outside the vocabulary (unless
  // skip_bad); InputError when the file ends without a single task.
  std::optional<McTask> next();
  const McTaskStats& stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Every task of the file.
std::vector<McTask> read_mc_tasks(const std::filesystem::path& path, McTaskOptions options,
                                  McTaskStats* stats = nullptr);

}  // namespace moeslice
