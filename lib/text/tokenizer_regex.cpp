// PCRE2 wrapper: compilation with UTF and Unicode properties, JIT when available, and a per-thread
// match scratch (match data and a JIT stack large enough for very long words).
#define PCRE2_CODE_UNIT_WIDTH 8
#include "text/tokenizer_regex.h"

#include <pcre2.h>

#include <fmt/core.h>

#include "common/error.h"
#include "text/tokenizer_unicode.h"

namespace moeslice::text {

namespace {

std::string pcre2_message(int code) {
  PCRE2_UCHAR buffer[256];
  if (pcre2_get_error_message(code, buffer, sizeof(buffer)) < 0)
    return fmt::format("code {}", code);
  return std::string(reinterpret_cast<const char*>(buffer));
}

// Per-thread scratch: PCRE2 match data must not be shared between threads, and the default JIT
// stack (32 KiB) overflows on long runs of one character class, so each thread gets one that can
// grow to 64 MiB (reserved, committed on use).
struct MatchScratch {
  pcre2_match_data* data = nullptr;
  pcre2_match_context* context = nullptr;
  pcre2_jit_stack* jit_stack = nullptr;

  MatchScratch() {
    data = pcre2_match_data_create(1, nullptr);
    context = pcre2_match_context_create(nullptr);
    jit_stack = pcre2_jit_stack_create(64 * 1024, 64 * 1024 * 1024, nullptr);
    if (data == nullptr || context == nullptr) throw std::bad_alloc();
    if (jit_stack != nullptr) pcre2_jit_stack_assign(context, nullptr, jit_stack);
  }
  ~MatchScratch() {
    pcre2_jit_stack_free(jit_stack);
    pcre2_match_context_free(context);
    pcre2_match_data_free(data);
  }
  MatchScratch(const MatchScratch&) = delete;
  MatchScratch& operator=(const MatchScratch&) = delete;
};

MatchScratch& scratch() {
  thread_local MatchScratch s;
  return s;
}

}  // namespace

struct Regex::Code {
  pcre2_code* code = nullptr;
  bool jit = false;
  ~Code() { pcre2_code_free(code); }
};

Regex::Regex(std::string_view pattern, Syntax syntax, std::string_view where) : pattern_(pattern) {
  // PCRE2 refuses UCP together with LITERAL; a literal needs no character classes anyway.
  const uint32_t options =
      syntax == Syntax::kLiteral ? PCRE2_UTF | PCRE2_LITERAL : PCRE2_UTF | PCRE2_UCP;
  int error = 0;
  PCRE2_SIZE offset = 0;
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                   options, &error, &offset, nullptr);
  if (code == nullptr) {
    throw FormatError(fmt::format("{}: the pattern \"{}\" does not compile (at offset {}): {}",
                                  where, pattern, offset, pcre2_message(error)));
  }
  auto owned = std::make_shared<Code>();
  owned->code = code;
  // JIT is an optimisation only: the interpreter gives the same matches when it is unavailable.
  owned->jit = pcre2_jit_compile(code, PCRE2_JIT_COMPLETE) == 0;
  code_ = std::move(owned);
}

bool Regex::find(std::string_view text, size_t start, size_t* match_start,
                 size_t* match_end) const {
  MatchScratch& s = scratch();
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  // The tokenizer validates UTF-8 once per input, so the per-call check is skipped.
  const int rc =
      code_->jit ? pcre2_jit_match(code_->code, subject, text.size(), start, 0, s.data, s.context)
                 : pcre2_match(code_->code, subject, text.size(), start, PCRE2_NO_UTF_CHECK, s.data,
                               s.context);
  if (rc == PCRE2_ERROR_NOMATCH) return false;
  if (rc < 0) {
    throw InputError(
        fmt::format("the pattern \"{}\" could not be matched on the input near byte {}: {}",
                    pattern_, start, pcre2_message(rc)));
  }
  const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(s.data);
  *match_start = ovector[0];
  *match_end = ovector[1];
  return true;
}

size_t Regex::next_char_length(std::string_view text, size_t at) {
  return utf8_char_length(static_cast<unsigned char>(text[at]));
}

}  // namespace moeslice::text
