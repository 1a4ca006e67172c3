// Reading what `eval` and `compare` score: the corpus (through the shared corpus flags) and the
// multiple-choice tasks (--tasks), tokenised with the model's tokenizer.
#pragma once

#include <string>
#include <vector>

#include "corpus_options.h"
#include "forward/forward_pass.h"
#include "text/mc_tasks.h"

namespace moeslice::app {

struct EvalInputs {
  std::vector<CorpusDocument> documents;
  std::vector<McTask> tasks;
};

// Reads the corpus when flags.corpus is set and the tasks when `tasks_path` is set; at least one
// is required (InputError otherwise).
EvalInputs read_eval_inputs(const CorpusFlags& flags, const std::string& tasks_path,
                            const Model& model);

}  // namespace moeslice::app
