// `moeslice logits`: runs the CPU forward pass over a tokenised corpus and writes every
// document's logits (and, with --router, each MoE layer's routing) to one safetensors file, in
// the form the PyTorch reference in tests/reference writes.
#include <algorithm>
#include <filesystem>
#include <map>
#include <vector>

#include <fmt/core.h>

#include "command_io.h"
#include "commands.h"
#include "common/atomic_output.h"
#include "common/error.h"
#include "corpus_options.h"
#include "forward/forward_pass.h"
#include "logits_output.h"
#include "model/keep_plan.h"
#include "run_flags.h"
#include "text/corpus.h"

namespace moeslice::app {

void add_logits_command(CLI::App& app) {
  struct Options {
    std::string model;
    CorpusFlags corpus;
    std::string out;
    std::string keep;
    bool router = false;
    RunSettings run;
    bool force = false;
  };
  auto options = std::make_shared<Options>();
  CLI::App* command = app.add_subcommand(
      "logits", "Run the forward pass over a token corpus and write logits (and routing)");
  command->add_option("--model", options->model, "Checkpoint directory or GGUF file")->required();
  add_corpus_flags(*command, options->corpus);
  command->add_option("--out", options->out, "Output safetensors file")->required();
  command->add_option("--keep", options->keep,
                      "Restricted-routing plan {\"experts_kept_per_layer\": [...]}");
  command->add_flag("--router", options->router,
                    "Also write each MoE layer's router logits, chosen experts, weights and "
                    "expert output norms");
  add_run_flags(*command, options->run);
  command->add_flag("--force", options->force, "Replace an existing output file");
  command->callback([options] {
    CommandIo io;
    io.checkpoint(options->model).corpus(options->corpus).file(options->keep, "--keep");
    io.output(options->out, options->force);

    const Model model = open_model(options->model);
    ForwardOptions pass_options = forward_options(options->run);
    if (!options->keep.empty()) pass_options.keep = read_keep_plan(options->keep, model.spec);
    ForwardPass forward(model, std::move(pass_options));
    CorpusStats corpus_stats;
    const std::vector<TokenDocument> documents = read_corpus(
        options->corpus.corpus, corpus_options(options->corpus, options->model, model.spec.vocab),
        &corpus_stats);
    print_corpus_warnings(options->corpus, corpus_stats);

    // Refuse a sliding window that matters before computing anything.
    size_t longest = 0;
    for (const auto& document : documents)
      longest = std::max(longest, std::min(document.tokens.size(), forward.max_window()));
    check_sequence_length(model.spec, forward.config(), static_cast<int64_t>(longest));

    RouterRecorder recorder;
    std::vector<TensorSource> tensors;
    std::map<size_t, std::vector<Window>> split;
    size_t total_tokens = 0;
    for (size_t i = 0; i < documents.size(); ++i) {
      const TokenDocument& document = documents[i];
      const std::vector<Window> windows = forward.windows_for(document.tokens.size());
      if (windows.size() > 1) {
        fmt::print(stderr,
                   "moeslice: note: {}:{}: document '{}' has {} tokens, more than the window of "
                   "{}; computing it as {} independent windows (recorded in the output "
                   "metadata)\n",
                   document.source, document.line, document.id, document.tokens.size(),
                   forward.max_window(), windows.size());
        split[i] = windows;
      }
      recorder.reset(document.tokens.size());
      DocumentResult result = naming_document(document.id, [&] {
        return forward.run(document.tokens, options->router ? &recorder : nullptr);
      });
      append_document_tensors(i, result, options->router ? &recorder : nullptr, tensors);
      total_tokens += document.tokens.size();
    }
    model.checkpoint->check_unchanged();  // one version of the model throughout
    write_safetensors(options->out, tensors, logits_metadata(forward, documents, split),
                      options->force);
    fmt::print("wrote {}: {} documents, {} tokens, {} family{}\n", options->out, documents.size(),
               total_tokens, model.spec.family->family,
               options->keep.empty() ? "" : ", restricted routing from " + options->keep);
  });
}

}  // namespace moeslice::app
