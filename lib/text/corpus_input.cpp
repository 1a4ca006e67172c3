// Line reading, UTF-8 validation and JSON record checks for the corpus readers.
#include "text/corpus_input.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <limits>

#include <fmt/core.h>

#include "common/error.h"
#include "common/io_rules.h"
#include "common/json_parse.h"
#include "text/tokenizer.h"

namespace moeslice::corpus {

namespace {

constexpr size_t kBufferBytes = size_t{1} << 20;

// The line (1-based, counted from `first_line`) holding byte `offset` of `text`.
size_t line_of_offset(std::string_view text, size_t offset, size_t first_line) {
  size_t line = first_line;
  for (size_t i = 0; i < offset && i < text.size(); ++i)
    if (text[i] == '\n') ++line;
  return line;
}

}  // namespace

void fail(const Place& place, std::string_view what) {
  if (place.line == 0) throw FormatError(fmt::format("{}: {}", place.file, what));
  throw FormatError(fmt::format("{}:{}: {}", place.file, place.line, what));
}

LineSource::LineSource(const std::filesystem::path& path) {
  if (path == "-") {
    fd_ = STDIN_FILENO;
    name_ = "<stdin>";
  } else {
    name_ = path.string();
    // A regular file or a pipe such as <(...); a named FIFO (which could block forever) or a
    // device (/dev/zero, which never ends) is refused before reading.
    fd_ = open_input_file(path, {}, /*stream_ok=*/true);
    owns_fd_ = true;
  }
  struct stat info {};
  if (::fstat(fd_, &info) == 0 && S_ISREG(info.st_mode))
    total_ = static_cast<uint64_t>(info.st_size);
  // A small file needs a buffer of its size (and a byte more, to see its end in one read).
  buffer_.resize(total_ > 0 && total_ < kBufferBytes ? static_cast<size_t>(total_) + 1
                                                     : kBufferBytes);
}

LineSource::~LineSource() {
  if (owns_fd_) ::close(fd_);
}

bool LineSource::fill() {
  if (eof_) return false;
  // Callers copy everything out before asking for more, so the buffer starts over.
  begin_ = end_ = 0;
  for (;;) {
    const ssize_t got = ::read(fd_, buffer_.data() + end_, buffer_.size() - end_);
    if (got > 0) {
      end_ += static_cast<size_t>(got);
      return true;
    }
    if (got == 0) {
      eof_ = true;
      return false;
    }
    if (errno == EINTR) continue;
    throw IoError(fmt::format("{}: read error: {}", name_, std::strerror(errno)));
  }
}

void LineSource::drop_byte_order_mark(std::string& text) {
  if (line_ == 1 && text.rfind("\xEF\xBB\xBF", 0) == 0) text.erase(0, 3);
}

void LineSource::check_record_size(size_t bytes, size_t line) const {
  if (bytes > kMaxRecordBytes)
    throw InputError(
        fmt::format("{}:{}: more than {} MiB without a line break; expected a corpus "
                    "of text or JSON Lines",
                    name_, line, kMaxRecordBytes >> 20));
}

bool LineSource::next_line(std::string& line) {
  line.clear();
  bool any = false;
  for (;;) {
    if (begin_ == end_ && !fill()) break;
    any = true;
    const char* start = buffer_.data() + begin_;
    const void* newline = std::memchr(start, '\n', end_ - begin_);
    if (newline != nullptr) {
      const size_t length = static_cast<size_t>(static_cast<const char*>(newline) - start);
      line.append(start, length);
      begin_ += length + 1;
      consumed_ += length + 1;
      ++line_;
      if (!line.empty() && line.back() == '\r') line.pop_back();
      drop_byte_order_mark(line);
      return true;
    }
    line.append(start, end_ - begin_);
    consumed_ += end_ - begin_;
    begin_ = end_;
    check_record_size(line.size(), line_ + 1);
  }
  if (!any) return false;
  ++line_;  // a last line without "\n"
  if (!line.empty() && line.back() == '\r') line.pop_back();
  drop_byte_order_mark(line);
  return true;
}

void LineSource::read_rest(std::string& out) {
  out.clear();
  const bool at_start = consumed_ == 0;
  for (;;) {
    if (begin_ == end_ && !fill()) break;
    out.append(buffer_.data() + begin_, end_ - begin_);
    consumed_ += end_ - begin_;
    begin_ = end_;
    check_record_size(out.size(), line_ + 1);
  }
  if (at_start && out.rfind("\xEF\xBB\xBF", 0) == 0) out.erase(0, 3);
  line_ += 1;
}

std::optional<char> LineSource::peek_first_non_blank() {
  if (begin_ == end_ && !fill()) return std::nullopt;
  size_t i = begin_;
  if (consumed_ == 0 && end_ - i >= 3 && std::memcmp(buffer_.data() + i, "\xEF\xBB\xBF", 3) == 0)
    i += 3;
  for (; i < end_; ++i) {
    const char c = buffer_[i];
    if (c != ' ' && c != '\t' && c != '\r' && c != '\n') return c;
  }
  return std::nullopt;
}

std::optional<size_t> invalid_utf8_offset(std::string_view text) {
  const auto* bytes = reinterpret_cast<const unsigned char*>(text.data());
  const size_t size = text.size();
  size_t i = 0;
  while (i < size) {
    const unsigned char lead = bytes[i];
    if (lead < 0x80) {
      ++i;
      continue;
    }
    size_t length = 0;
    unsigned char low = 0x80, high = 0xBF;  // allowed range of the second byte
    if (lead >= 0xC2 && lead <= 0xDF) {
      length = 2;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
      length = 3;
      if (lead == 0xE0) low = 0xA0;   // overlong
      if (lead == 0xED) high = 0x9F;  // surrogates
    } else if (lead >= 0xF0 && lead <= 0xF4) {
      length = 4;
      if (lead == 0xF0) low = 0x90;   // overlong
      if (lead == 0xF4) high = 0x8F;  // above U+10FFFF
    } else {
      return i;
    }
    if (i + length > size) return i;
    if (bytes[i + 1] < low || bytes[i + 1] > high) return i;
    for (size_t k = 2; k < length; ++k)
      if (bytes[i + k] < 0x80 || bytes[i + k] > 0xBF) return i;
    i += length;
  }
  return std::nullopt;
}

bool is_blank(std::string_view line) {
  return line.find_first_not_of(" \t") == std::string_view::npos;
}

nlohmann::json parse_object(std::string_view text, const Place& place) {
  // Checked first so that the message names the byte instead of quoting it.
  if (const auto offset = invalid_utf8_offset(text))
    fail(place, fmt::format("invalid UTF-8 (byte 0x{:02X} at column {})",
                            static_cast<unsigned char>(text[*offset]), *offset + 1));
  nlohmann::json object;
  try {
    object = parse_json(text, fmt::format("{}:{}", place.file, place.line));
  } catch (const JsonSyntaxError& error) {
    // The detail says "parse error at line 1, column 28: ..."; the line is always 1 here, so keep
    // the column and what broke.
    const std::string& message = error.detail();
    const auto column = message.find("column ");
    fail(place, "invalid JSON (" +
                    (column != std::string::npos ? message.substr(column) : message) +
                    "); expected one JSON object per line");
  }
  if (!object.is_object())
    fail(place, fmt::format("expected a JSON object, found {}", object.type_name()));
  return object;
}

std::optional<JsonRecord> next_json_record(LineSource& lines, std::string& line, int64_t& records) {
  do {
    if (!lines.next_line(line)) return std::nullopt;
  } while (is_blank(line));
  const Place place{lines.name(), lines.line_number()};
  const int64_t index = records++;
  return JsonRecord{parse_object(line, place), place, index};
}

std::vector<int32_t> token_ids_from_json(const nlohmann::json& ids, std::string_view field,
                                         int64_t vocab, const Place& place) {
  if (!ids.is_array())
    fail(place,
         fmt::format("\"{}\" must be a list of token ids, found {}", field, ids.type_name()));
  const int64_t limit = vocab > 0 ? vocab : std::numeric_limits<int32_t>::max();
  std::vector<int32_t> tokens;
  tokens.reserve(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    const nlohmann::json& id = ids[i];
    if (!id.is_number_integer())
      fail(place,
           fmt::format("{}[{}] is {}, expected an integer token id", field, i, json_excerpt(id)));
    const int64_t value = id.is_number_unsigned()
                              ? static_cast<int64_t>(std::min<uint64_t>(
                                    id.get<uint64_t>(), std::numeric_limits<int64_t>::max()))
                              : id.get<int64_t>();
    if (value < 0 || value >= limit)
      fail(place, fmt::format("{}[{}] is {}, outside the model's vocabulary [0, {})", field, i,
                              json_excerpt(id), limit));
    tokens.push_back(static_cast<int32_t>(value));
  }
  return tokens;
}

std::vector<int32_t> tokenize(const Tokenizer* tokenizer, std::string_view text, int64_t vocab,
                              const Place& place, std::string_view no_tokenizer_hint) {
  if (tokenizer == nullptr)
    throw InputError(fmt::format(
        "{}:{}: the corpus holds text, which needs a tokenizer, and none was given ({})",
        place.file, place.line, no_tokenizer_hint));
  if (const auto offset = invalid_utf8_offset(text)) {
    const Place bad{place.file, line_of_offset(text, *offset, place.line)};
    fail(bad, fmt::format("invalid UTF-8 (byte 0x{:02X} at offset {} of the document)",
                          static_cast<unsigned char>(text[*offset]), *offset));
  }
  std::vector<int32_t> tokens;
  try {
    tokens = tokenizer->encode(text);
  } catch (const InputError& error) {
    fail(place, error.what());
  }
  if (vocab > 0) {
    for (const int32_t id : tokens)
      if (id < 0 || id >= vocab)
        fail(place, fmt::format("the tokenizer {} gives token id {}, outside the model's "
                                "vocabulary [0, {}): tokenizer and model do not match",
                                tokenizer->source(), id, vocab));
  }
  return tokens;
}

std::optional<std::string> record_id(const nlohmann::json& object, const Place& place) {
  const auto it = object.find("id");
  if (it == object.end() || it->is_null()) return std::nullopt;
  if (it->is_string()) return it->get<std::string>();
  if (it->is_number() || it->is_boolean()) return it->dump();
  fail(place, fmt::format("\"id\" must be a string or a number, found {}", it->type_name()));
}

std::string record_domain(const nlohmann::json& object, const std::string& fallback,
                          const Place& place) {
  const auto it = object.find("domain");
  if (it == object.end() || it->is_null()) return fallback;
  if (!it->is_string())
    fail(place, fmt::format("\"domain\" must be a string, found {}", it->type_name()));
  return it->get<std::string>();
}

}  // namespace moeslice::corpus
