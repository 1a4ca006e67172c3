// `moeslice profile` and `moeslice merge`: expert usage per document over a corpus, and the
// concatenation of profiles made from parts of a corpus.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <map>

#include <fmt/core.h>

#include "command_io.h"
#include "commands.h"
#include "common/atomic_output.h"
#include "common/error.h"
#include "common/excerpt.h"
#include "corpus_options.h"
#include "count_flags.h"
#include "forward/run_limits.h"
#include "mpi_cluster.h"
#include "profile/profiler.h"
#include "profile/usage_exchange.h"
#include "run_flags.h"

namespace moeslice::app {
namespace {

// "documents 12, tokens 6144, 812 tok/s, 35% of the corpus, ETA 0:35" rewritten in place on a
// terminal. The corpus streams, so the share of its bytes read stands in for the share of
// documents done (unknown on a pipe).
class ProgressLine {
 public:
  // `ranks`: the number of ranks of the job, whose progress this rank's stands for.
  ProgressLine(const CorpusReader& reader, bool enabled, int ranks)
      : reader_(reader),
        enabled_(enabled),
        ranks_(ranks),
        start_(std::chrono::steady_clock::now()) {}

  void update(int64_t documents, int64_t tokens) {
    if (!enabled_) return;
    documents *= ranks_;
    tokens *= ranks_;
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    const double rate = seconds > 0 ? static_cast<double>(tokens) / seconds : 0;
    std::string where;
    const uint64_t total = reader_.total_bytes();
    if (total > 0) {
      const double done = static_cast<double>(reader_.bytes_read()) / static_cast<double>(total);
      const double eta = done > 0 ? seconds * (1 - done) / done : 0;
      where = fmt::format(", {:.0f}% of the corpus, ETA {}:{:02d}", 100 * done,
                          static_cast<int>(eta) / 60, static_cast<int>(eta) % 60);
    }
    fmt::print(stderr, "\rdocuments {}, tokens {}, {:.0f} tok/s{}   ", documents, tokens, rate,
               where);
    shown_ = true;
  }

  void finish() {
    if (shown_) fmt::print(stderr, "\n");
  }

 private:
  const CorpusReader& reader_;
  bool enabled_;
  int ranks_;
  bool shown_ = false;
  std::chrono::steady_clock::time_point start_;
};

// Refuses to resume from a partial profile whose document `index` is not `document` (the
// corpus's document at that position): another corpus, or a corpus that changed.
void check_resumed_document(const std::filesystem::path& partial_path, const UsageProfile& partial,
                            size_t index, const std::optional<TokenDocument>& document) {
  const UsageDocument& recorded = partial.documents.at(index);
  const int64_t recorded_tokens = partial.tokens.at(index);
  if (!document)
    throw InputError(fmt::format(
        "{}: holds {} documents, but the corpus ends after {}: it is a partial profile of another "
        "corpus (remove it, or run without --resume)",
        partial_path.string(), partial.document_count(), index));
  if (document->id != recorded.id ||
      static_cast<int64_t>(document->tokens.size()) != recorded_tokens)
    throw InputError(fmt::format(
        "{}: document {} is '{}' with {} tokens, but the corpus's document {} is '{}' with {} "
        "tokens: it is a partial profile of another corpus (remove it, or run without --resume)",
        partial_path.string(), index, excerpt(recorded.id), recorded_tokens, index,
        excerpt(document->id), document->tokens.size()));
}

}  // namespace

void add_profile_command(CLI::App& app) {
  struct Options {
    std::string model, out, keep;
    CorpusFlags corpus;
    RunSettings run;
    size_t stream_block_tokens = 32768, checkpoint_every = 0;
    ProfileOrder order = ProfileOrder::kAuto;
    bool stream_layers = false, resume = false, quiet = false, force = false;
  };
  auto options = std::make_shared<Options>();
  CLI::App* command = app.add_subcommand(
      "profile", "Record which experts each document of a corpus uses (counts, mass, gate norm)");
  command->add_option("--model", options->model, "Checkpoint directory or GGUF file")->required();
  add_corpus_flags(*command, options->corpus);
  command->add_option("--out", options->out, "Output usage file (.safetensors)")->required();
  command->add_option("--keep", options->keep, "Restrict routing to a plan's experts");
  add_run_flags(*command, options->run);
  command
      ->add_option("--order", options->order,
                   "layer (auto, the default): a block of documents through one layer at a "
                   "time, the windows' tokens sharing each expert's GEMMs (faster), each layer's "
                   "pages released after it (memory near one layer plus the block's "
                   "activations, for checkpoints larger than RAM); document: each document "
                   "through every layer (one window's activations). The profile is the same in "
                   "every order")
      ->transform(CLI::CheckedTransformer(
          std::map<std::string, ProfileOrder>{{"auto", ProfileOrder::kAuto},
                                              {"document", ProfileOrder::kDocuments},
                                              {"layer", ProfileOrder::kLayers}}))
      ->option_text("auto|document|layer");
  command->add_flag("--stream-layers", options->stream_layers, "The same as --order layer")
      ->excludes("--order");
  command
      ->add_option("--stream-block-tokens", options->stream_block_tokens,
                   "Tokens per layer-major block (activations held at once)")
      ->check(count_in_range(1, kMaxSequenceTokens));
  command
      ->add_option("--checkpoint-every", options->checkpoint_every,
                   "Every N documents, save the profile so far as OUT.partial (replaced "
                   "each time, removed when the run completes)")
      ->check(count_in_range(1, kMaxCountFlag));
  command->add_flag("--resume", options->resume,
                    "Continue from OUT.partial: its documents are skipped in the corpus, the "
                    "rest profiled and appended (same model, corpus and options required)");
  command->add_flag("--quiet", options->quiet, "No progress line");
  command->add_flag("--force", options->force, "Replace an existing output file");
  command->callback([options] {
    const Cluster& job = app::job();
    require_shared_corpus(options->corpus.corpus);
    // The partial profile beside the output (one per rank in a job of several) is written, and
    // removed at the end.
    const std::filesystem::path partial_path =
        job.size() == 1
            ? options->out + ".partial"
            : fmt::format("{}.rank-{}-of-{}.partial", options->out, job.rank(), job.size());
    CommandIo io;
    io.checkpoint(options->model).corpus(options->corpus).file(options->keep, "--keep");
    io.output(options->out, options->force, {partial_path.string()});
    const Model model = open_model(options->model);
    CorpusReader reader(options->corpus.corpus,
                        corpus_options(options->corpus, options->model, model.spec.vocab));
    ProfileOptions profile_options;
    profile_options.run = options->run;
    profile_options.order = options->stream_layers ? ProfileOrder::kLayers : options->order;
    profile_options.block_tokens = options->stream_block_tokens;
    if (!options->keep.empty()) profile_options.keep = read_keep_plan(options->keep, model.spec);
    // Rank 0 shows the job's progress, its own scaled by the number of ranks.
    ProgressLine progress(reader, !options->quiet && job.is_root() && ::isatty(::fileno(stderr)),
                          job.size());
    profile_options.progress = [&progress](int64_t done, int64_t tokens) {
      progress.update(done, tokens);
    };
    // This rank's documents (all of them for one process); gathered in corpus order at the end.
    UsageProfile profile = empty_usage_profile(model, profile_options);
    int64_t skip = 0;
    if (options->resume) {
      if (std::filesystem::exists(partial_path)) {
        UsageProfile partial = read_usage_profile(partial_path);
        // Refuses a partial profile of another model or other options, naming the key.
        const std::vector<std::string> names = {partial_path.string(), "this run"};
        merge_usage_profiles(std::vector<UsageProfile>{partial, profile}, names);
        skip = partial.document_count();
        profile = std::move(partial);
        fmt::print(stderr, "moeslice: {}resuming after {} documents of {}\n", rank_prefix(), skip,
                   partial_path.string());
      } else {
        fmt::print(stderr, "moeslice: {}note: no {} to resume from; starting at the beginning\n",
                   rank_prefix(), partial_path.string());
      }
    }
    const int64_t resumed = skip;
    int64_t last_checkpoint = resumed;
    const auto inner_progress = profile_options.progress;
    profile_options.progress = [&](int64_t done, int64_t tokens) {
      inner_progress(resumed + done, tokens);
      if (options->checkpoint_every > 0 && profile.document_count() - last_checkpoint >=
                                               static_cast<int64_t>(options->checkpoint_every)) {
        model.checkpoint->check_unchanged();
        write_usage_profile(partial_path, profile, /*overwrite=*/true);
        last_checkpoint = profile.document_count();
      }
    };
    int64_t corpus_documents = 0;  // read so far, every rank's
    int64_t checked = 0;           // this rank's documents found in the partial profile
    profile_documents(
        model,
        [&]() -> std::optional<TokenDocument> {
          for (;;) {
            std::optional<TokenDocument> document = reader.next();
            // Documents already in the partial profile are read again (ids and skips stay the
            // same) but not computed; each must be the one the partial holds, else the partial
            // came from another corpus.
            if (!document) {
              if (checked < resumed)
                check_resumed_document(partial_path, profile, static_cast<size_t>(checked),
                                       document);
              return document;
            }
            if (!job.owns(corpus_documents++)) continue;  // another rank's
            if (checked < resumed) {
              check_resumed_document(partial_path, profile, static_cast<size_t>(checked++),
                                     document);
              continue;
            }
            return document;
          }
        },
        profile_options, profile);
    progress.finish();
    if (job.is_root()) print_corpus_warnings(options->corpus, reader.stats());
    profile = gather_usage_profile(job, profile, corpus_documents);
    nlohmann::json source =
        corpus_source_json(options->corpus, chosen_tokenizer(options->corpus, options->model),
                           reader.shape(), reader.stats());
    if (job.size() > 1) source["ranks"] = job.size();
    profile.info["sources"] = nlohmann::json::array({source});
    model.checkpoint->check_unchanged();  // one version of the model throughout
    if (job.is_root()) write_usage_profile(options->out, profile, options->force);
    std::filesystem::remove(partial_path);
    int64_t tokens = 0;
    for (int64_t count : profile.tokens) tokens += count;
    if (job.is_root())
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
  CLI::App* command =
      app.add_subcommand("merge", "Concatenate the documents of usage profiles of the same model");
  command->add_option("--out", options->out, "Output usage file")->required();
  command->add_option("inputs", options->inputs, "Usage files, in document order")->required();
  command->add_flag("--force", options->force, "Replace an existing output file");
  command->callback([options] {
    CommandIo io;
    io.files(options->inputs, "usage file");
    io.output(options->out, options->force);
    std::vector<UsageProfile> profiles;
    for (const auto& input : options->inputs) profiles.push_back(read_usage_profile(input));
    const UsageProfile merged = merge_usage_profiles(profiles, options->inputs);
    write_usage_profile(options->out, merged, options->force);
    fmt::print("wrote {}: {} documents from {} profiles\n", options->out, merged.document_count(),
               profiles.size());
  });
}

}  // namespace moeslice::app
