// CommandIo: a command's inputs, checked and collected, and its outputs checked against them.
#include "command_io.h"

#include "common/io_rules.h"

namespace moeslice::app {

CommandIo& CommandIo::checkpoint(const std::string& dir) {
  if (!dir.empty()) inputs_.emplace_back(dir);
  return *this;
}

CommandIo& CommandIo::file(const std::string& path, std::string_view flag) {
  if (path.empty()) return *this;
  // A missing file is left to its reader, which says so in its own words.
  std::error_code error;
  if (std::filesystem::exists(path, error)) check_input_file(path, flag);
  inputs_.emplace_back(path);
  return *this;
}

CommandIo& CommandIo::files(const std::vector<std::string>& paths, std::string_view flag) {
  for (const std::string& path : paths) file(path, flag);
  return *this;
}

CommandIo& CommandIo::corpus(const CorpusFlags& flags) {
  std::error_code error;
  if (!flags.corpus.empty() && flags.corpus != "-") {
    // A directory of text files, else a file or a pipe: a named FIFO or a device is refused.
    if (std::filesystem::exists(flags.corpus, error) &&
        !std::filesystem::is_directory(flags.corpus, error))
      check_input_file(flags.corpus, "--corpus", /*stream_ok=*/true);
    // A pipe cannot be overwritten by an output, and its /dev/fd name is no file to compare.
    if (std::filesystem::is_regular_file(flags.corpus, error) ||
        std::filesystem::is_directory(flags.corpus, error))
      inputs_.emplace_back(flags.corpus);
  }
  return file(flags.tokenizer, "--tokenizer");
}

void CommandIo::output(const std::string& path, bool force,
                       const std::vector<std::string>& companions) const {
  check_new_output(path, inputs_, force);
  for (const std::string& companion : companions) check_output_outside_inputs(companion, inputs_);
}

}  // namespace moeslice::app
