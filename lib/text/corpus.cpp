// The corpus reader: shape detection, one record at a time from JSON Lines, plain text or a
// directory, limits, BOS, and skipping of bad records.
#include "text/corpus.h"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <system_error>

#include <fmt/core.h>

#include "common/error.h"
#include "common/json_parse.h"
#include "text/bad_records.h"
#include "text/corpus_input.h"

namespace moeslice {

namespace fs = std::filesystem;
using corpus::Place;

namespace {

enum class Shape { jsonl, text, text_lines, directory };

std::string lower_extension(const fs::path& path) {
  std::string extension = path.extension().string();
  std::transform(extension.begin(), extension.end(), extension.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return extension;
}

bool has_json_lines_extension(const fs::path& path) {
  const std::string extension = lower_extension(path);
  return extension == ".jsonl" || extension == ".ndjson" || extension == ".json";
}

bool has_text_extension(const fs::path& path) {
  const std::string extension = lower_extension(path);
  return extension == ".txt" || extension == ".text" || extension == ".md" ||
         extension == ".markdown" || extension == ".rst";
}

struct DirectoryEntry {
  std::string relative;  // generic form, '/' separated: the document id
  fs::path full;
  uint64_t size = 0;
};

// Every non-hidden regular file below `root` (symbolic links to files included, links to
// directories not followed), sorted by relative path.
std::vector<DirectoryEntry> list_directory(const fs::path& root) {
  std::vector<DirectoryEntry> entries;
  std::error_code error;
  fs::recursive_directory_iterator it(root, error), end;
  if (error)
    throw InputError(
        fmt::format("{}: cannot list the directory: {}", root.string(), error.message()));
  for (; it != end; it.increment(error)) {
    if (error) break;
    const fs::directory_entry& entry = *it;
    const std::string name = entry.path().filename().string();
    if (!name.empty() && name.front() == '.') {
      if (entry.is_directory(error)) it.disable_recursion_pending();
      continue;
    }
    if (!entry.is_regular_file(error)) continue;
    DirectoryEntry item;
    item.full = entry.path();
    item.relative = entry.path().lexically_relative(root).generic_string();
    item.size = static_cast<uint64_t>(entry.file_size(error));
    if (error) break;
    entries.push_back(std::move(item));
  }
  if (error)
    throw InputError(
        fmt::format("{}: cannot list the directory: {}", root.string(), error.message()));
  std::sort(entries.begin(), entries.end(), [](const DirectoryEntry& a, const DirectoryEntry& b) {
    return a.relative < b.relative;
  });
  return entries;
}

std::string read_whole_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(fmt::format("{}: cannot open the file", path.string()));
  std::string content{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  if (in.bad()) throw IoError(fmt::format("{}: read error", path.string()));
  return content;
}

}  // namespace

struct CorpusReader::Impl {
  CorpusOptions options;
  fs::path path;
  Shape shape = Shape::jsonl;
  std::optional<int32_t> bos;
  int64_t vocab = 0;
  CorpusStats stats;
  int64_t records = 0;  // records seen, good or bad: the default id of the next one
  bool finished = false;

  std::unique_ptr<corpus::LineSource> lines;  // jsonl, text, text_lines
  std::string line;
  bool whole_file_read = false;  // text

  std::vector<DirectoryEntry> files;  // directory
  size_t next_file = 0;
  uint64_t directory_bytes_read = 0, directory_bytes_total = 0;

  const Tokenizer* tokenizer() const { return options.tokenizer ? &*options.tokenizer : nullptr; }
  std::string source_name() const { return lines ? lines->name() : path.string(); }

  void check_empty(const std::vector<int32_t>& tokens, const Place& place,
                   std::string_view what) const {
    if (tokens.empty()) corpus::fail(place, fmt::format("empty document ({})", what));
  }

  // The next record as a document, nullopt at the end of the input; FormatError when bad.
  std::optional<CorpusDocument> read_record() {
    switch (shape) {
      case Shape::jsonl:
        return read_json_line();
      case Shape::text_lines:
        return read_text_line();
      case Shape::text:
        return read_text_file();
      case Shape::directory:
        return read_directory_file();
    }
    return std::nullopt;
  }

  std::optional<CorpusDocument> read_json_line() {
    const std::optional<corpus::JsonRecord> record =
        corpus::next_json_record(*lines, line, records);
    if (!record) return std::nullopt;
    const auto& [object, place, index] = *record;
    const std::string field = !options.field.empty()         ? options.field
                              : object.contains("input_ids") ? "input_ids"
                                                             : "text";
    const auto it = object.find(field);
    if (it == object.end())
      corpus::fail(place, options.field.empty() ? std::string("missing \"text\" (or \"input_ids\")")
                                                : fmt::format("missing \"{}\"", field));
    CorpusDocument document;
    if (it->is_string()) {
      const std::string& text = it->get_ref<const std::string&>();
      if (text.empty()) corpus::fail(place, fmt::format("empty document (\"{}\" is \"\")", field));
      document.tokens =
          corpus::tokenize(tokenizer(), text, vocab, place, options.no_tokenizer_hint);
    } else if (it->is_array()) {
      document.tokens = corpus::token_ids_from_json(*it, field, vocab, place);
    } else {
      corpus::fail(place, fmt::format("\"{}\" must be a string (text) or a list of token ids, "
                                      "found {}",
                                      field, it->type_name()));
    }
    if (document.tokens.empty())
      corpus::fail(place, fmt::format("empty document (\"{}\" is {})", field, json_excerpt(*it)));
    document.id = corpus::record_id(object, place).value_or(std::to_string(index));
    document.domain = corpus::record_domain(object, options.default_domain, place);
    document.source = place.file;
    document.line = place.line;
    return document;
  }

  std::optional<CorpusDocument> read_text_line() {
    do {
      if (!lines->next_line(line)) return std::nullopt;
    } while (corpus::is_blank(line));
    const Place place{lines->name(), lines->line_number()};
    const int64_t index = records++;
    CorpusDocument document;
    document.tokens = corpus::tokenize(tokenizer(), line, vocab, place, options.no_tokenizer_hint);
    check_empty(document.tokens, place, "the tokenizer gives no tokens");
    document.id = std::to_string(index);
    document.domain = options.default_domain;
    document.source = place.file;
    document.line = place.line;
    return document;
  }

  std::optional<CorpusDocument> read_text_file() {
    if (whole_file_read) return std::nullopt;
    whole_file_read = true;
    std::string text;
    lines->read_rest(text);
    const Place place{lines->name(), 1};
    ++records;
    if (text.empty()) corpus::fail(place, "empty document (the file is empty)");
    CorpusDocument document;
    document.tokens = corpus::tokenize(tokenizer(), text, vocab, place, options.no_tokenizer_hint);
    check_empty(document.tokens, place, "the tokenizer gives no tokens");
    document.id = path == "-" ? std::string("-") : path.filename().string();
    document.domain = options.default_domain;
    document.source = place.file;
    document.line = 1;
    return document;
  }

  std::optional<CorpusDocument> read_directory_file() {
    while (next_file < files.size()) {
      const DirectoryEntry& entry = files[next_file++];
      const std::string text = read_whole_file(entry.full);
      directory_bytes_read += entry.size;
      if (text.empty()) {
        ++stats.skipped_empty_files;
        continue;
      }
      if (text.find('\0') != std::string::npos || corpus::invalid_utf8_offset(text)) {
        ++stats.skipped_binary;
        continue;
      }
      const Place place{entry.full.string(), 1};
      ++records;
      CorpusDocument document;
      document.tokens =
          corpus::tokenize(tokenizer(), text, vocab, place, options.no_tokenizer_hint);
      check_empty(document.tokens, place, "the tokenizer gives no tokens");
      document.id = entry.relative;
      document.domain = options.default_domain;
      document.source = place.file;
      document.line = 1;
      return document;
    }
    return std::nullopt;
  }

  [[noreturn]] void throw_no_documents() const {
    std::string why;
    switch (shape) {
      case Shape::jsonl:
        why = "expected one JSON object per line";
        break;
      case Shape::text_lines:
        why = "every line is blank";
        break;
      case Shape::text:
        why = "the file is empty";
        break;
      case Shape::directory:
        why = fmt::format("no text file; {} binary and {} empty files skipped",
                          stats.skipped_binary, stats.skipped_empty_files);
        break;
    }
    if (stats.skipped_bad > 0)
      why += fmt::format("; {} bad record{} skipped, the first: {}", stats.skipped_bad,
                         stats.skipped_bad == 1 ? "" : "s", stats.skipped_examples.front());
    throw InputError(fmt::format("{}: no documents ({})", source_name(), why));
  }
};

CorpusReader::CorpusReader(const fs::path& path, CorpusOptions options)
    : impl_(std::make_unique<Impl>()) {
  Impl& impl = *impl_;
  impl.path = path;
  impl.options = std::move(options);
  const CorpusOptions& o = impl.options;
  const bool is_stdin = path == "-";
  std::error_code error;
  const bool is_directory = !is_stdin && fs::is_directory(path, error);
  if (!is_stdin && !is_directory && !fs::exists(path, error))
    throw InputError(fmt::format("{}: no such corpus file or directory", path.string()));

  if (is_directory) {
    if (o.format == CorpusFormat::jsonl)
      throw InputError(fmt::format(
          "{}: is a directory, but JSON Lines was asked for (a directory's files are read as "
          "text, one document each)",
          path.string()));
    if (o.one_doc_per_line)
      throw InputError(fmt::format(
          "{}: is a directory, whose files are one document each; one document per line "
          "applies to a single text file",
          path.string()));
    impl.shape = Shape::directory;
  } else {
    impl.lines = std::make_unique<corpus::LineSource>(path);
    // Without a telling extension the content decides: JSON Lines starts with '{' (an empty
    // input counts as JSON Lines, which then reports that it holds no documents).
    bool json_lines = o.format == CorpusFormat::jsonl;
    if (o.format == CorpusFormat::automatic) {
      if (has_json_lines_extension(path)) {
        json_lines = true;  // one_doc_per_line is refused below: most likely a mistake
      } else if (o.one_doc_per_line) {
        json_lines = false;  // asking for lines is asking for plain text
      } else if (is_stdin) {
        json_lines = true;
      } else if (!has_text_extension(path)) {
        const std::optional<char> first = impl.lines->peek_first_non_blank();
        json_lines = !first || *first == '{';
      }
    }
    if (json_lines && o.one_doc_per_line)
      throw InputError(fmt::format(
          "{}: is JSON Lines, which already holds one document per line; one document per line "
          "applies to plain text (choose the text format to read the lines as text)",
          impl.lines->name()));
    impl.shape = json_lines ? Shape::jsonl : o.one_doc_per_line ? Shape::text_lines : Shape::text;
  }

  if (impl.shape != Shape::jsonl && !o.tokenizer)
    throw InputError(
        fmt::format("{}: is {}, which needs a tokenizer, and none was given ({})",
                    is_stdin ? "<stdin>" : path.string(),
                    impl.shape == Shape::directory ? "a directory of text files" : "plain text",
                    o.no_tokenizer_hint));
  if (o.add_bos) {
    if (!o.tokenizer)
      throw InputError(fmt::format("adding a BOS token needs a tokenizer, and none was given ({})",
                                   o.no_tokenizer_hint));
    impl.bos = o.tokenizer->bos_id();
    if (!impl.bos)
      throw InputError(fmt::format(
          "{}: the tokenizer has no BOS token (its post-processor puts no special token before "
          "a sequence), so none can be added",
          o.tokenizer->source()));
  }
  impl.vocab = o.vocab > 0 ? o.vocab : o.tokenizer ? o.tokenizer->vocab_size() : 0;
  if (impl.bos && impl.vocab > 0 && *impl.bos >= impl.vocab)
    throw InputError(fmt::format("{}: the BOS id {} is outside the model's vocabulary [0, {})",
                                 o.tokenizer->source(), *impl.bos, impl.vocab));

  if (impl.shape == Shape::directory) {
    impl.files = list_directory(path);
    for (const DirectoryEntry& entry : impl.files) impl.directory_bytes_total += entry.size;
  }
}

CorpusReader::~CorpusReader() = default;
CorpusReader::CorpusReader(CorpusReader&&) noexcept = default;
CorpusReader& CorpusReader::operator=(CorpusReader&&) noexcept = default;

std::optional<CorpusDocument> CorpusReader::next() {
  Impl& impl = *impl_;
  if (impl.finished) return std::nullopt;
  const CorpusOptions& o = impl.options;
  if ((o.max_docs > 0 && impl.stats.documents >= o.max_docs) ||
      (o.max_tokens > 0 && impl.stats.tokens >= o.max_tokens)) {
    impl.stats.limited = true;
    impl.finished = true;
    return std::nullopt;
  }
  for (;;) {
    std::optional<CorpusDocument> document =
        read_skipping_bad([&impl] { return impl.read_record(); }, o.skip_bad,
                          impl.stats.skipped_bad, impl.stats.skipped_examples);
    if (!document) {
      impl.finished = true;
      if (impl.stats.documents == 0) impl.throw_no_documents();
      return std::nullopt;
    }
    if (impl.bos) document->tokens.insert(document->tokens.begin(), *impl.bos);
    ++impl.stats.documents;
    impl.stats.tokens += static_cast<int64_t>(document->tokens.size());
    return document;
  }
}

const CorpusStats& CorpusReader::stats() const { return impl_->stats; }

const char* CorpusReader::shape() const {
  switch (impl_->shape) {
    case Shape::jsonl:
      return "jsonl";
    case Shape::text:
      return "text";
    case Shape::text_lines:
      return "text-lines";
    case Shape::directory:
      return "directory";
  }
  return "";
}

uint64_t CorpusReader::bytes_read() const {
  return impl_->lines ? impl_->lines->bytes_read() : impl_->directory_bytes_read;
}

uint64_t CorpusReader::total_bytes() const {
  return impl_->lines ? impl_->lines->total_bytes() : impl_->directory_bytes_total;
}

std::vector<CorpusDocument> read_corpus(const fs::path& path, CorpusOptions options,
                                        CorpusStats* stats) {
  CorpusReader reader(path, std::move(options));
  std::vector<CorpusDocument> documents;
  while (auto document = reader.next()) documents.push_back(std::move(*document));
  if (stats != nullptr) *stats = reader.stats();
  return documents;
}

std::vector<TokenDocument> read_token_corpus(const fs::path& path, int64_t vocab) {
  CorpusOptions options;
  options.format = CorpusFormat::jsonl;
  options.vocab = vocab;
  return read_corpus(path, std::move(options));
}

}  // namespace moeslice
