// The corpus and multiple-choice inputs of `eval` and `compare`.
#include "eval_inputs.h"

#include <fmt/core.h>

#include "common/error.h"
#include "mpi_cluster.h"

namespace moeslice::app {

EvalInputs read_eval_inputs(const CorpusFlags& flags, const std::string& tasks_path,
                            const Model& model) {
  if (flags.corpus.empty() && tasks_path.empty())
    throw InputError("nothing to evaluate: give --corpus, --tasks or both");
  EvalInputs inputs;
  const CorpusOptions options = corpus_options(flags, model.checkpoint->path(), model.spec.vocab);
  if (!flags.corpus.empty()) {
    CorpusStats stats;
    inputs.documents = read_corpus(flags.corpus, options, &stats);
    if (job().is_root()) print_corpus_warnings(flags, stats);  // once for the job
  }
  if (!tasks_path.empty()) {
    if (!options.tokenizer)
      throw InputError(fmt::format("--tasks {} needs a tokenizer, and none was given ({})",
                                   tasks_path, options.no_tokenizer_hint));
    McTaskOptions task_options(*options.tokenizer);
    task_options.vocab = model.spec.vocab;
    task_options.add_bos = flags.add_bos;
    task_options.skip_bad = flags.skip_bad;
    task_options.default_domain = flags.domain;
    McTaskReader reader(tasks_path, std::move(task_options));
    while (auto task = reader.next()) inputs.tasks.push_back(std::move(*task));
  }
  return inputs;
}

}  // namespace moeslice::app
