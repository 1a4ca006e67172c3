// A recursive-descent evaluator for profile shape expressions.
#include "model/dim_expression.h"

#include <cctype>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "common/excerpt.h"

namespace moeslice {
namespace {

class Parser {
 public:
  // `checking`: identifiers are looked up only to be validated (lookup_'s value is a stand-in)
  // and a division by zero yields 0.
  Parser(std::string_view text, const std::function<int64_t(std::string_view)>& lookup,
         bool checking = false)
      : text_(text), lookup_(lookup), checking_(checking) {}

  int64_t parse() {
    const int64_t value = sum();
    skip_space();
    if (pos_ != text_.size()) fail("unexpected character");
    return value;
  }

 private:
  int64_t sum() {
    int64_t value = product();
    for (char op = peek(); op == '+' || op == '-'; op = peek()) {
      ++pos_;
      const int64_t rhs = product();
      if (op == '+' ? __builtin_add_overflow(value, rhs, &value)
                    : __builtin_sub_overflow(value, rhs, &value))
        fail("the value overflows 64 bits");
    }
    return value;
  }

  int64_t product() {
    int64_t value = atom();
    for (char op = peek(); op == '*' || op == '/'; op = peek()) {
      ++pos_;
      const int64_t rhs = atom();
      if (op == '/' && rhs == 0) {
        if (!checking_) fail("division by zero");
        value = 0;
        continue;
      }
      bool overflow = false;
      if (op == '*') {
        overflow = __builtin_mul_overflow(value, rhs, &value);
      } else if (value == INT64_MIN && rhs == -1) {
        overflow = true;
      } else {
        value /= rhs;
      }
      if (overflow) fail("the value overflows 64 bits");
    }
    return value;
  }

  int64_t atom() {
    const char c = peek();
    if (c == '(') {
      if (++depth_ > kMaxParentheses) fail("parentheses nested too deep");
      ++pos_;
      const int64_t value = sum();
      if (peek() != ')') fail("missing ')'");
      ++pos_;
      --depth_;
      return value;
    }
    if (std::isdigit(static_cast<unsigned char>(c))) {
      int64_t value = 0;
      while (pos_ < text_.size() && std::isdigit(static_cast<unsigned char>(text_[pos_])))
        if (__builtin_mul_overflow(value, 10, &value) ||
            __builtin_add_overflow(value, text_[pos_++] - '0', &value))
          fail("the number overflows 64 bits");
      return value;
    }
    if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      const size_t start = pos_;
      while (pos_ < text_.size() &&
             (std::isalnum(static_cast<unsigned char>(text_[pos_])) || text_[pos_] == '_'))
        ++pos_;
      return lookup_(text_.substr(start, pos_ - start));
    }
    fail("expected a number, a name or '('");
  }

  char peek() {
    skip_space();
    return pos_ < text_.size() ? text_[pos_] : '\0';
  }

  void skip_space() {
    while (pos_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[pos_]))) ++pos_;
  }

  [[noreturn]] void fail(const char* what) const {
    throw std::invalid_argument("expression '" + excerpt(text_) + "': " + what + " at " +
                                std::to_string(pos_));
  }

  // Each '(' recurses; real shapes use one or two.
  static constexpr int kMaxParentheses = 32;

  std::string_view text_;
  const std::function<int64_t(std::string_view)>& lookup_;
  bool checking_ = false;
  size_t pos_ = 0;
  int depth_ = 0;
};

}  // namespace

int64_t evaluate_dim_expression(std::string_view expression,
                                const std::function<int64_t(std::string_view)>& lookup) {
  return Parser(expression, lookup).parse();
}

void check_dim_expression(std::string_view expression,
                          const std::function<bool(std::string_view)>& is_known) {
  const std::function<int64_t(std::string_view)> validate = [&](std::string_view name) {
    if (!is_known(name))
      throw std::invalid_argument("expression '" + std::string(expression) + "': unknown size '" +
                                  std::string(name) + "'");
    return int64_t{1};
  };
  Parser(expression, validate, true).parse();
}

}  // namespace moeslice
