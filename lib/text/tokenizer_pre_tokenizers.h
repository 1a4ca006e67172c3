// Pre-tokenizers of tokenizer.json (ByteLevel, Split, Metaspace, Digits and Sequence): they cut
// normalised text into the words that the model then encodes one by one. Each stage hands its
// pieces straight to the next stage through a callback, so no list of pieces is materialised.
//
// Thread safety: immutable after construction; run() may be called concurrently.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "text/tokenizer_json.h"
#include "text/tokenizer_regex.h"

namespace moeslice::text {

// A non-owning reference to a callable, cheaper than std::function on the per-word path.
template <typename Signature>
class FunctionRef;

template <typename R, typename... Args>
class FunctionRef<R(Args...)> {
 public:
  template <typename F>
  requires(!std::is_same_v<std::remove_cvref_t<F>, FunctionRef>)
      FunctionRef(F&& f)  // NOLINT(google-explicit-constructor): used like a function parameter.
      : object_(const_cast<void*>(static_cast<const void*>(&f))),
        call_([](void* object, Args... args) -> R {
          return (*static_cast<std::remove_reference_t<F>*>(object))(std::forward<Args>(args)...);
        }) {}
  R operator()(Args... args) const { return call_(object_, std::forward<Args>(args)...); }

 private:
  void* object_;
  R (*call_)(void*, Args...);
};

// Receives each non-empty piece and whether it starts at offset 0 of the original input.
using PieceSink = FunctionRef<void(std::string_view, bool)>;

// How Split keeps the delimiters it finds (the reference library's SplitDelimiterBehavior).
enum class SplitBehavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

class PreTokenizer {
 public:
  // No pre-tokenizer: the whole text is one word.
  PreTokenizer() = default;
  // `value` may be null. Unknown types raise UnsupportedError naming the file and the type.
  static PreTokenizer from_json(const Json& value, const JsonPlace& place);

  void run(std::string_view text, bool at_start, PieceSink sink) const {
    run_stage(0, text, at_start, sink);
  }
  // True when the last stage is ByteLevel: the model then sees raw bytes, one symbol per byte,
  // and the vocabulary's byte-level spelling is undone once at load time.
  bool byte_level() const { return byte_level_; }

 private:
  struct Stage {
    enum class Kind { kSplit, kByteLevel, kMetaspace };
    Kind kind = Kind::kSplit;
    std::shared_ptr<const Regex> regex;  // Split's pattern; ByteLevel's when use_regex
    SplitBehavior behavior = SplitBehavior::kIsolated;
    bool invert = false;
    bool add_prefix_space = false;  // ByteLevel
    std::string replacement;        // Metaspace
    enum class Prepend { kAlways, kFirst, kNever } prepend = Prepend::kAlways;
    bool split = true;  // Metaspace
  };

  void add_from_json(const Json& value, const JsonPlace& place);
  void run_stage(size_t index, std::string_view text, bool at_start, PieceSink sink) const;

  std::vector<Stage> stages_;
  bool byte_level_ = false;
};

// Splits `text` around the matches of `regex` and keeps the delimiters as `behavior` says,
// calling emit(begin, end) for each non-empty piece, in order. Exposed for the unit tests.
void split_by_regex(const Regex& regex, std::string_view text, SplitBehavior behavior, bool invert,
                    FunctionRef<void(size_t, size_t)> emit);

}  // namespace moeslice::text
