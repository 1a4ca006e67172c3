// Multiple-choice task reader and the lm-eval context/continuation tokenisation.
#include "text/mc_tasks.h"

#include <algorithm>

#include <fmt/core.h>

#include "common/error.h"
#include "common/json_parse.h"
#include "text/bad_records.h"
#include "text/corpus_input.h"

namespace moeslice {

using corpus::Place;

namespace {

bool is_trailing_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

void check_vocab(const std::vector<int32_t>& tokens, int64_t vocab, const Place& place,
                 std::string_view what) {
  for (const int32_t id : tokens)
    if (id < 0 || id >= vocab)
      corpus::fail(place, fmt::format("{} has token id {}, outside the model's vocabulary [0, {}): "
                                      "tokenizer and model do not match",
                                      what, id, vocab));
}

}  // namespace

McEncoding encode_mc_task(const Tokenizer& tokenizer, std::string_view context,
                          std::span<const std::string> choices) {
  size_t kept = context.size();
  while (kept > 0 && is_trailing_space(context[kept - 1])) --kept;
  const std::string_view moved = context.substr(kept);
  const std::string head(context.substr(0, kept));

  McEncoding encoding;
  encoding.context = tokenizer.encode(head);
  for (const std::string& choice : choices) {
    const std::string continuation = std::string(moved) + choice;
    const std::vector<int32_t> whole = tokenizer.encode(head + continuation);
    const bool prefix_kept =
        whole.size() >= encoding.context.size() &&
        std::equal(encoding.context.begin(), encoding.context.end(), whole.begin());
    if (prefix_kept) {
      encoding.choices.emplace_back(
          whole.begin() + static_cast<std::ptrdiff_t>(encoding.context.size()), whole.end());
      encoding.fallback.push_back(false);
    } else {
      encoding.choices.push_back(tokenizer.encode(continuation));
      encoding.fallback.push_back(true);
    }
  }
  return encoding;
}

struct McTaskReader::Impl {
  McTaskOptions options;
  std::unique_ptr<corpus::LineSource> lines;
  std::optional<int32_t> bos;
  int64_t vocab = 0;
  int64_t records = 0;
  bool finished = false;
  McTaskStats stats;
  std::string line;

  std::optional<McTask> read_record() {
    const std::optional<corpus::JsonRecord> record =
        corpus::next_json_record(*lines, line, records);
    if (!record) return std::nullopt;
    const auto& [object, place, index] = *record;

    const auto context = object.find("context");
    if (context == object.end()) corpus::fail(place, "missing \"context\"");
    if (!context->is_string())
      corpus::fail(place,
                   fmt::format("\"context\" must be a string, found {}", context->type_name()));
    const auto choices = object.find("choices");
    if (choices == object.end()) corpus::fail(place, "missing \"choices\"");
    if (!choices->is_array())
      corpus::fail(place, fmt::format("\"choices\" must be a list of strings, found {}",
                                      choices->type_name()));
    if (choices->size() < 2)
      corpus::fail(place, fmt::format("\"choices\" has {} entr{}, expected at least 2",
                                      choices->size(), choices->size() == 1 ? "y" : "ies"));
    std::vector<std::string> texts;
    for (size_t i = 0; i < choices->size(); ++i) {
      const nlohmann::json& choice = (*choices)[i];
      if (!choice.is_string())
        corpus::fail(place,
                     fmt::format("choices[{}] must be a string, found {}", i, choice.type_name()));
      texts.push_back(choice.get<std::string>());
    }
    const auto answer = object.find("answer");
    if (answer == object.end()) corpus::fail(place, "missing \"answer\"");
    if (!answer->is_number_integer())
      corpus::fail(place, fmt::format("\"answer\" is {}, expected the index of the right choice",
                                      json_excerpt(*answer)));
    const int64_t answer_index =
        answer->is_number_unsigned()
            ? static_cast<int64_t>(std::min<uint64_t>(answer->get<uint64_t>(), uint64_t{1} << 62))
            : answer->get<int64_t>();
    if (answer_index < 0 || answer_index >= static_cast<int64_t>(texts.size()))
      corpus::fail(place, fmt::format("\"answer\" is {}, but there are {} choices (0..{})",
                                      answer_index, texts.size(), texts.size() - 1));

    // Invalid UTF-8 cannot survive the JSON parser, but the tokenizer is asked anyway.
    McEncoding encoding;
    try {
      encoding = encode_mc_task(options.tokenizer, context->get_ref<const std::string&>(), texts);
    } catch (const InputError& error) {
      corpus::fail(place, error.what());
    }
    McTask task;
    task.context = std::move(encoding.context);
    if (bos) task.context.insert(task.context.begin(), *bos);
    if (task.context.empty())
      corpus::fail(place,
                   "empty \"context\": nothing would predict the first token of a choice "
                   "(give a context, or add a BOS token)");
    check_vocab(task.context, vocab, place, "\"context\"");
    for (size_t i = 0; i < encoding.choices.size(); ++i) {
      if (encoding.choices[i].empty())
        corpus::fail(place, fmt::format("choices[{}] is empty (no tokens to score)", i));
      check_vocab(encoding.choices[i], vocab, place, fmt::format("choices[{}]", i));
      if (encoding.fallback[i]) ++stats.boundary_fallbacks;
      task.choice_bytes.push_back(texts[i].size());
    }
    task.choices = std::move(encoding.choices);
    task.answer = static_cast<size_t>(answer_index);
    task.id = corpus::record_id(object, place).value_or(std::to_string(index));
    task.domain = corpus::record_domain(object, options.default_domain, place);
    task.source = place.file;
    task.line = place.line;
    return task;
  }
};

McTaskReader::McTaskReader(const std::filesystem::path& path, McTaskOptions options)
    : impl_(std::make_unique<Impl>(Impl{std::move(options), nullptr, {}, 0, 0, false, {}, {}})) {
  Impl& impl = *impl_;
  const Tokenizer& tokenizer = impl.options.tokenizer;
  impl.vocab = impl.options.vocab > 0 ? impl.options.vocab : tokenizer.vocab_size();
  if (impl.options.add_bos) {
    impl.bos = tokenizer.bos_id();
    if (!impl.bos)
      throw InputError(fmt::format(
          "{}: the tokenizer has no BOS token (its post-processor puts no special token before "
          "a sequence), so none can be added",
          tokenizer.source()));
  }
  std::error_code error;
  if (path != "-" && !std::filesystem::exists(path, error))
    throw InputError(fmt::format("{}: no such task file", path.string()));
  impl.lines = std::make_unique<corpus::LineSource>(path);
}

McTaskReader::~McTaskReader() = default;
McTaskReader::McTaskReader(McTaskReader&&) noexcept = default;
McTaskReader& McTaskReader::operator=(McTaskReader&&) noexcept = default;

std::optional<McTask> McTaskReader::next() {
  Impl& impl = *impl_;
  if (impl.finished) return std::nullopt;
  if (impl.options.max_tasks > 0 && impl.stats.tasks >= impl.options.max_tasks) {
    impl.finished = true;
    return std::nullopt;
  }
  for (;;) {
    std::optional<McTask> task =
        read_skipping_bad([&impl] { return impl.read_record(); }, impl.options.skip_bad,
                          impl.stats.skipped_bad, impl.stats.skipped_examples);
    if (!task) {
      impl.finished = true;
      if (impl.stats.tasks == 0) {
        std::string why =
            "expected one JSON object {\"context\", \"choices\", \"answer\"} per line";
        if (impl.stats.skipped_bad > 0)
          why += fmt::format("; {} bad record{} skipped, the first: {}", impl.stats.skipped_bad,
                             impl.stats.skipped_bad == 1 ? "" : "s",
                             impl.stats.skipped_examples.front());
        throw InputError(fmt::format("{}: no tasks ({})", impl.lines->name(), why));
      }
      return std::nullopt;
    }
    ++impl.stats.tasks;
    return task;
  }
}

const McTaskStats& McTaskReader::stats() const { return impl_->stats; }

std::vector<McTask> read_mc_tasks(const std::filesystem::path& path, McTaskOptions options,
                                  McTaskStats* stats) {
  McTaskReader reader(path, std::move(options));
  std::vector<McTask> tasks;
  while (auto task = reader.next()) tasks.push_back(std::move(*task));
  if (stats != nullptr) *stats = reader.stats();
  return tasks;
}

}  // namespace moeslice
