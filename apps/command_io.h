// What a command reads and writes, gathered before any work so that the rule of
// common/io_rules.h is applied the same way everywhere: every file or directory read is an input
// (checkpoints, corpus and tokenizer, plans including --keep, usage files, tasks, comparison
// files); a file read whole must be a regular file; an output may not be, contain or lie inside
// an input, must be a regular file or directory when it exists, and its directory must exist and
// be writable. Every command in apps/ declares its inputs and outputs through CommandIo.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "corpus_options.h"

namespace moeslice::app {

class CommandIo {
 public:
  // A checkpoint directory (--model, --sliced). Nothing when `dir` is empty.
  CommandIo& checkpoint(const std::string& dir);
  // A file read whole (--plan, --keep, --usage, --tasks, --compare): refused now (InputError
  // naming `flag`) when it is a FIFO, a device or a directory; a missing one is left to its
  // reader's message. Nothing when `path` is empty.
  CommandIo& file(const std::string& path, std::string_view flag);
  CommandIo& files(const std::vector<std::string>& paths, std::string_view flag);
  // The corpus (a file, a directory, a pipe or -) and the --tokenizer of the corpus flags.
  CommandIo& corpus(const CorpusFlags& flags);

  // Refuses an output that breaks the rule, or exists without `force`. `companions` are other
  // paths its writer writes or removes beside it (profile's OUT.partial): they may not be
  // inputs either.
  void output(const std::string& path, bool force,
              const std::vector<std::string>& companions = {}) const;

  const std::vector<std::filesystem::path>& inputs() const { return inputs_; }

 private:
  std::vector<std::filesystem::path> inputs_;
};

}  // namespace moeslice::app
