// Building blocks shared by the corpus and multiple-choice readers: a buffered line reader over a
// file or standard input (bounded memory, byte counts for progress), UTF-8 validation, and the
// checks of one JSON Lines record whose errors name the file and line. Not a public interface of
// lib/text; corpus.h and mc_tasks.h are.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace moeslice {

class Tokenizer;

namespace corpus {

// Where a record is: "file:line" in messages.
struct Place {
  std::string file;
  size_t line = 0;
};

// Throws FormatError "file:line: what" (a bad record: skippable with --skip-bad).
[[noreturn]] void fail(const Place& place, std::string_view what);

// The longest line (or whole-file text document) a corpus may hold: a bound on memory when a
// corpus is not one (/dev/zero, a binary file without newlines).
inline constexpr size_t kMaxRecordBytes = size_t{256} << 20;

// Reads a file, or standard input for the path "-", through a buffer of 1 MiB (or the size of a
// smaller file). A UTF-8 byte order mark at the start is dropped. A line or rest longer than
// kMaxRecordBytes is an InputError. Not thread-safe.
class LineSource {
 public:
  // Throws InputError when the file cannot be opened or is a directory.
  explicit LineSource(const std::filesystem::path& path);
  ~LineSource();
  LineSource(const LineSource&) = delete;
  LineSource& operator=(const LineSource&) = delete;

  // The next line without its "\n" or "\r\n"; false at the end of the input.
  bool next_line(std::string& line);
  // Everything not read yet, as is.
  void read_rest(std::string& out);
  // The first byte that is not whitespace (or a byte order mark) within the first buffer of
  // input, without consuming anything; nullopt when there is none. Call before reading.
  std::optional<char> peek_first_non_blank();

  size_t line_number() const { return line_; }  // 1-based number of the last line returned
  uint64_t bytes_read() const { return consumed_; }
  uint64_t total_bytes() const { return total_; }    // 0 when unknown (a pipe)
  const std::string& name() const { return name_; }  // the path, or "<stdin>"

 private:
  bool fill();  // false at end of input
  void check_record_size(size_t bytes, size_t line) const;
  void drop_byte_order_mark(std::string& text);

  int fd_ = -1;
  bool owns_fd_ = false;
  bool eof_ = false;
  std::string name_;
  std::vector<char> buffer_;
  size_t begin_ = 0, end_ = 0;
  size_t line_ = 0;
  uint64_t consumed_ = 0, total_ = 0;
};

// Byte offset of the first byte that does not belong to a well-formed UTF-8 sequence (overlong
// forms, surrogates and code points above U+10FFFF are ill-formed), or nullopt.
std::optional<size_t> invalid_utf8_offset(std::string_view text);

// True for a line holding only spaces and tabs.
bool is_blank(std::string_view line);

// Parses one line as a JSON object; FormatError naming the place otherwise.
nlohmann::json parse_object(std::string_view text, const Place& place);

// One JSON Lines record: its object, where it is, and its 0-based number among the records read.
struct JsonRecord {
  nlohmann::json object;
  Place place;
  int64_t index = 0;
};

// The next non-blank line of `lines` (read into `line`) as a JSON object, nullopt at the end.
// The record is counted in `records` before it is parsed, so a bad record keeps its number (the
// default ids of the records after it do not depend on --skip-bad). FormatError naming the line.
std::optional<JsonRecord> next_json_record(LineSource& lines, std::string& line, int64_t& records);

// A JSON list of integer token ids, each in [0, vocab) (vocab 0: any non-negative int32).
std::vector<int32_t> token_ids_from_json(const nlohmann::json& ids, std::string_view field,
                                         int64_t vocab, const Place& place);

// `text` through the tokenizer: FormatError for invalid UTF-8 (with the line of the bad byte,
// counted from place.line) and for ids the tokenizer gives outside [0, vocab); InputError (not
// skippable) when there is no tokenizer.
// `no_tokenizer_hint` ends that message.
std::vector<int32_t> tokenize(const Tokenizer* tokenizer, std::string_view text, int64_t vocab,
                              const Place& place, std::string_view no_tokenizer_hint);

// The record's "id" as text (a string as is, anything else as JSON), or nullopt when absent/null.
std::optional<std::string> record_id(const nlohmann::json& object, const Place& place);
// The record's "domain" (a string), `fallback` when absent or null.
std::string record_domain(const nlohmann::json& object, const std::string& fallback,
                          const Place& place);

}  // namespace corpus
}  // namespace moeslice
