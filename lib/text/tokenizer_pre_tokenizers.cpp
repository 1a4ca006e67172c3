// The pre-tokenizer stages and the delimiter behaviours of Split, as streaming folds over the
// alternating (gap, match) spans that a pattern produces.
#include "text/tokenizer_pre_tokenizers.h"

#include <fmt/core.h>

#include "common/error.h"
#include "text/tokenizer_normalizers.h"

namespace moeslice::text {

namespace {

constexpr std::string_view kSupported = "ByteLevel, Split, Metaspace, Digits, Sequence";

// Folds the covering list of spans (each flagged as a delimiter match or not) into pieces,
// exactly like the reference library's fold over its list, but keeping only the last element.
class BehaviorFold {
 public:
  BehaviorFold(SplitBehavior behavior, FunctionRef<void(size_t, size_t)> emit)
      : behavior_(behavior), emit_(emit) {}

  void push(size_t begin, size_t end, bool is_match) {
    switch (behavior_) {
      case SplitBehavior::kIsolated:
        out(begin, end);
        break;
      case SplitBehavior::kRemoved:
        if (!is_match) out(begin, end);
        break;
      case SplitBehavior::kContiguous:
        if (has_pending_ && is_match == previous_match_) {
          pending_end_ = end;
        } else {
          replace_pending(begin, end);
        }
        break;
      case SplitBehavior::kMergedWithPrevious:
        if (has_pending_ && is_match && !previous_match_) {
          pending_end_ = end;
        } else {
          replace_pending(begin, end);
        }
        break;
      case SplitBehavior::kMergedWithNext:
        // A delimiter joins the piece right after it unless that piece is a delimiter too.
        if (has_pending_) {
          if (!is_match) {
            out(pending_begin_, end);
            has_pending_ = false;
          } else {
            out(pending_begin_, pending_end_);
            pending_begin_ = begin;
            pending_end_ = end;
          }
        } else if (is_match) {
          has_pending_ = true;
          pending_begin_ = begin;
          pending_end_ = end;
        } else {
          out(begin, end);
        }
        break;
    }
    previous_match_ = is_match;
  }

  void finish() {
    if (has_pending_) out(pending_begin_, pending_end_);
    has_pending_ = false;
  }

 private:
  void replace_pending(size_t begin, size_t end) {
    if (has_pending_) out(pending_begin_, pending_end_);
    has_pending_ = true;
    pending_begin_ = begin;
    pending_end_ = end;
  }
  void out(size_t begin, size_t end) {
    if (end > begin) emit_(begin, end);
  }

  SplitBehavior behavior_;
  FunctionRef<void(size_t, size_t)> emit_;
  bool has_pending_ = false;
  bool previous_match_ = false;
  size_t pending_begin_ = 0;
  size_t pending_end_ = 0;
};

// Calls fold.push for the gaps and delimiter occurrences of a literal string.
void split_by_literal(std::string_view delimiter, std::string_view text, SplitBehavior behavior,
                      FunctionRef<void(size_t, size_t)> emit) {
  BehaviorFold fold(behavior, emit);
  size_t previous = 0;
  size_t at = text.find(delimiter);
  while (at != std::string_view::npos) {
    if (at != previous) fold.push(previous, at, false);
    fold.push(at, at + delimiter.size(), true);
    previous = at + delimiter.size();
    at = text.find(delimiter, previous);
  }
  if (previous != text.size()) fold.push(previous, text.size(), false);
  fold.finish();
}

SplitBehavior behavior_from_json(const Json& obj, const JsonPlace& place) {
  const std::string name = json_string(obj, "behavior", place);
  if (name == "Removed") return SplitBehavior::kRemoved;
  if (name == "Isolated") return SplitBehavior::kIsolated;
  if (name == "MergedWithPrevious") return SplitBehavior::kMergedWithPrevious;
  if (name == "MergedWithNext") return SplitBehavior::kMergedWithNext;
  if (name == "Contiguous") return SplitBehavior::kContiguous;
  throw UnsupportedError(fmt::format(
      "{}: {}: unsupported split behavior '{}' (supported: Removed, Isolated, MergedWithPrevious, "
      "MergedWithNext, Contiguous)",
      *place.file, place.child("behavior").path, name));
}

std::string where(const JsonPlace& place) { return fmt::format("{}: {}", *place.file, place.path); }

}  // namespace

void split_by_regex(const Regex& regex, std::string_view text, SplitBehavior behavior, bool invert,
                    FunctionRef<void(size_t, size_t)> emit) {
  BehaviorFold fold(behavior, emit);
  size_t previous = 0;
  regex.for_each_match(text, [&](size_t begin, size_t end) {
    if (begin != previous) fold.push(previous, begin, invert);
    fold.push(begin, end, !invert);
    previous = end;
  });
  if (previous != text.size()) fold.push(previous, text.size(), invert);
  fold.finish();
}

PreTokenizer PreTokenizer::from_json(const Json& value, const JsonPlace& place) {
  PreTokenizer p;
  if (value.is_null()) return p;
  p.add_from_json(value, place);
  for (size_t i = 0; i < p.stages_.size(); ++i) {
    if (p.stages_[i].kind == Stage::Kind::kByteLevel && i + 1 != p.stages_.size()) {
      // Later stages would see byte-level characters instead of text (a space becomes 'Ġ', a
      // letter), which the byte-space model used here cannot reproduce.
      throw UnsupportedError(
          fmt::format("{}: {}: a ByteLevel pre-tokenizer must be the last one of the sequence",
                      *place.file, place.path));
    }
  }
  p.byte_level_ = !p.stages_.empty() && p.stages_.back().kind == Stage::Kind::kByteLevel;
  return p;
}

void PreTokenizer::add_from_json(const Json& value, const JsonPlace& place) {
  const std::string type = json_type(value, place);
  Stage stage;
  if (type == "Sequence") {
    const Json& list = json_required(value, "pretokenizers", place);
    if (!list.is_array()) throw_format(place.child("pretokenizers"), "expected a list");
    for (size_t i = 0; i < list.size(); ++i) {
      add_from_json(list[i], place.sequence_item("pretokenizers", i));
    }
    return;
  }
  if (type == "ByteLevel") {
    stage.kind = Stage::Kind::kByteLevel;
    stage.add_prefix_space = json_bool_or(value, "add_prefix_space", true, place);
    if (json_bool_or(value, "use_regex", true, place)) {
      stage.regex =
          std::make_shared<const Regex>(kGpt2SplitPattern, Regex::Syntax::kRegex, where(place));
    }
  } else if (type == "Split") {
    stage.kind = Stage::Kind::kSplit;
    stage.regex = pattern_from_json(value, place);
    stage.behavior = behavior_from_json(value, place);
    stage.invert = json_bool_or(value, "invert", false, place);
  } else if (type == "Digits") {
    stage.kind = Stage::Kind::kSplit;
    const bool individual = json_bool_or(value, "individual_digits", false, place);
    // Rust's char::is_numeric is the N category (Nd, Nl, No), which is PCRE2's \p{N}.
    stage.regex = std::make_shared<const Regex>(R"(\p{N})", Regex::Syntax::kRegex, where(place));
    stage.behavior = individual ? SplitBehavior::kIsolated : SplitBehavior::kContiguous;
  } else if (type == "Metaspace") {
    stage.kind = Stage::Kind::kMetaspace;
    stage.replacement = json_single_char(value, "replacement", place);
    const std::string scheme = json_string_or(value, "prepend_scheme", "", place);
    const bool add_prefix_space = json_bool_or(value, "add_prefix_space", true, place);
    if (scheme == "always" || (scheme.empty() && add_prefix_space)) {
      stage.prepend = Stage::Prepend::kAlways;
    } else if (scheme == "first") {
      stage.prepend = Stage::Prepend::kFirst;
    } else if (scheme == "never" || scheme.empty()) {
      stage.prepend = Stage::Prepend::kNever;
    } else {
      throw_format(
          place.child("prepend_scheme"),
          fmt::format("expected \"always\", \"first\" or \"never\", found \"{}\"", scheme));
    }
    stage.split = json_bool_or(value, "split", true, place);
  } else {
    throw_unsupported_type(place, "pre-tokenizer", type, kSupported);
  }
  stages_.push_back(std::move(stage));
}

void PreTokenizer::run_stage(size_t index, std::string_view text, bool at_start,
                             PieceSink sink) const {
  if (text.empty()) return;
  if (index == stages_.size()) {
    sink(text, at_start);
    return;
  }
  const Stage& stage = stages_[index];
  auto next = [&](std::string_view piece, size_t begin, size_t end) {
    run_stage(index + 1, piece.substr(begin, end - begin), at_start && begin == 0, sink);
  };
  switch (stage.kind) {
    case Stage::Kind::kSplit:
      split_by_regex(*stage.regex, text, stage.behavior, stage.invert,
                     [&](size_t begin, size_t end) { next(text, begin, end); });
      return;
    case Stage::Kind::kByteLevel: {
      std::string prefixed;
      std::string_view piece = text;
      if (stage.add_prefix_space && piece.front() != ' ') {
        prefixed.reserve(piece.size() + 1);
        prefixed += ' ';
        prefixed.append(piece);
        piece = prefixed;
      }
      if (stage.regex == nullptr) {
        run_stage(index + 1, piece, at_start, sink);
      } else {
        split_by_regex(*stage.regex, piece, SplitBehavior::kIsolated, false,
                       [&](size_t begin, size_t end) { next(piece, begin, end); });
      }
      return;
    }
    case Stage::Kind::kMetaspace: {
      std::string replaced;
      replaced.reserve(text.size() + stage.replacement.size());
      const bool starts_with_replacement =
          text.starts_with(' ') || text.starts_with(stage.replacement);
      if (!starts_with_replacement && (stage.prepend == Stage::Prepend::kAlways ||
                                       (stage.prepend == Stage::Prepend::kFirst && at_start))) {
        replaced += stage.replacement;
      }
      for (char ch : text) {
        if (ch == ' ') {
          replaced += stage.replacement;
        } else {
          replaced += ch;
        }
      }
      const std::string_view piece = replaced;
      if (stage.split) {
        split_by_literal(stage.replacement, piece, SplitBehavior::kMergedWithNext,
                         [&](size_t begin, size_t end) { next(piece, begin, end); });
      } else {
        run_stage(index + 1, piece, at_start, sink);
      }
      return;
    }
  }
}

}  // namespace moeslice::text
