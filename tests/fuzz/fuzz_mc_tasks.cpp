// libFuzzer target: a multiple-choice task file (JSON Lines of context, choices and answer)
// tokenised with the example model's tokenizer, strictly and with bad records skipped.
#include "fuzz_support.h"
#include "text/mc_tasks.h"

namespace {

const moeslice::Tokenizer& example_tokenizer() {
  static const auto tokenizer =
      moeslice::Tokenizer::from_file(moeslice::fuzz::source_file("examples/models/tokenizer.json"));
  return tokenizer;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace moeslice;
  const auto path = fuzz::scratch_file("tasks.jsonl", fuzz::as_text(data, size));
  for (const bool skip_bad : {false, true}) {
    fuzz::expect_input_errors([&] {
      McTaskOptions options(example_tokenizer());
      options.skip_bad = skip_bad;
      McTaskReader reader(path, options);
      while (reader.next()) {
      }
    });
  }
  return 0;
}
