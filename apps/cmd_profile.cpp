// `moeslice profile` and `moeslice merge`: expert usage per document over a corpus, and the
// concatenation of profiles made from parts of a corpus.
#include <unistd.h>

#include <chrono>
#include <cstdio>

#include <fmt/core.h>

#include "commands.h"
#include "common/atomic_output.h"
#include "common/error.h"
#include "profile/profiler.h"

namespace moeslice::app {
namespace {

// "documents 12/40, tokens 6144, 812 tok/s, ETA 0:35" rewritten in place on a terminal.
class ProgressLine {
 public:
  ProgressLine(int64_t total_documents, bool enabled)
      : total_(total_documents), enabled_(enabled), start_(std::chrono::steady_clock::now()) {}

  void update(int64_t documents, int64_t tokens) {
    if (!enabled_) return;
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    const double rate = seconds > 0 ? static_cast<double>(tokens) / seconds : 0;
    const double eta = documents > 0 ? seconds * static_cast<double>(total_ - documents) /
                                           static_cast<double>(documents)
                                     : 0;
    fmt::print(stderr, "\rdocuments {}/{}, tokens {}, {:.0f} tok/s, ETA {}:{:02d}   ", documents,
               total_, tokens, rate, static_cast<int>(eta) / 60, static_cast<int>(eta) % 60);
    if (documents == total_) fmt::print(stderr, "\n");
  }

 private:
  int64_t total_;
  bool enabled_;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace

void add_profile_command(CLI::App& app) {
  struct Options {
    std::string model, corpus, out, keep;
    size_t threads = 0, max_seq = 0;
    int64_t max_docs = 0, max_tokens = 0;
    bool quiet = false, force = false;
  };
  auto options = std::make_shared<Options>();
  CLI::App* command = app.add_subcommand(
      "profile", "Record which experts each document of a corpus uses (counts, mass, gate norm)");
  command->add_option("--model", options->model, "Checkpoint directory")->required();
  command->add_option("--corpus", options->corpus,
                      "JSON Lines corpus, one {\"input_ids\": [...], \"id\": ...} per line")
      ->required();
  command->add_option("--out", options->out, "Output usage file (.safetensors)")->required();
  command->add_option("--keep", options->keep, "Restrict routing to a plan's experts");
  command->add_option("--threads", options->threads, "Threads (0: all cores)");
  command->add_option("--max-seq", options->max_seq, "Longest window; longer documents are cut")
      ->check(CLI::PositiveNumber);
  command->add_option("--max-docs", options->max_docs, "Profile at most N documents")
      ->check(CLI::PositiveNumber);
  command->add_option("--max-tokens", options->max_tokens,
                      "Stop after the document that reaches N tokens")
      ->check(CLI::PositiveNumber);
  command->add_flag("--quiet", options->quiet, "No progress line");
  command->add_flag("--force", options->force, "Replace an existing output file");
  command->callback([options] {
    std::vector<std::filesystem::path> inputs = {options->model, options->corpus};
    check_output_outside_inputs(options->out, inputs);
    if (!options->force && std::filesystem::exists(options->out))
      throw InputError(fmt::format("output {} already exists (use --force to replace it)",
                                   options->out));
    const Model model = open_model(options->model);
    std::vector<TokenDocument> documents = read_token_corpus(options->corpus, model.spec.vocab);
    if (options->max_docs > 0 && static_cast<int64_t>(documents.size()) > options->max_docs)
      documents.resize(static_cast<size_t>(options->max_docs));
    if (options->max_tokens > 0) {
      int64_t tokens = 0;
      size_t keep = 0;
      while (keep < documents.size() && tokens < options->max_tokens)
        tokens += static_cast<int64_t>(documents[keep++].tokens.size());
      documents.resize(keep);
    }
    ProfileOptions profile_options;
    profile_options.threads = options->threads;
    profile_options.max_seq = options->max_seq;
    if (!options->keep.empty()) profile_options.keep = read_keep_plan(options->keep, model.spec);
    ProgressLine progress(static_cast<int64_t>(documents.size()),
                          !options->quiet && ::isatty(::fileno(stderr)));
    profile_options.progress = [&progress](int64_t done, int64_t tokens) {
      progress.update(done, tokens);
    };
    UsageProfile profile = empty_usage_profile(model, profile_options);
    profile.info["sources"] = nlohmann::json::array(
        {{{"corpus", normalized_absolute_path(options->corpus)},
          {"documents", documents.size()}}});
    profile_documents(model, documents, {}, profile_options, profile);
    write_usage_profile(options->out, profile, options->force);
    int64_t tokens = 0;
    for (int64_t count : profile.tokens) tokens += count;
    fmt::print("wrote {}: {} documents, {} tokens, {} layers x {} experts\n", options->out,
               profile.document_count(), tokens, profile.layers, profile.experts);
  });
}

void add_merge_command(CLI::App& app) {
  struct Options {
    std::string out;
    std::vector<std::string> inputs;
    bool force = false;
  };
  auto options = std::make_shared<Options>();
  CLI::App* command = app.add_subcommand(
      "merge", "Concatenate the documents of usage profiles of the same model");
  command->add_option("--out", options->out, "Output usage file")->required();
  command->add_option("inputs", options->inputs, "Usage files, in document order")->required();
  command->add_flag("--force", options->force, "Replace an existing output file");
  command->callback([options] {
    std::vector<std::filesystem::path> inputs(options->inputs.begin(), options->inputs.end());
    check_output_outside_inputs(options->out, inputs);
    std::vector<UsageProfile> profiles;
    for (const auto& input : options->inputs) profiles.push_back(read_usage_profile(input));
    const UsageProfile merged = merge_usage_profiles(profiles, options->inputs);
    write_usage_profile(options->out, merged, options->force);
    fmt::print("wrote {}: {} documents from {} profiles\n", options->out,
               merged.document_count(), profiles.size());
  });
}

}  // namespace moeslice::app
