// libFuzzer target: a corpus file read as JSON Lines (text or token-id records, ids checked
// against the vocabulary) and as plain text, one document per line, with the example model's
// tokenizer.
#include "fuzz_support.h"
#include "text/corpus.h"

namespace {

const moeslice::Tokenizer& example_tokenizer() {
  static const auto tokenizer =
      moeslice::Tokenizer::from_file(moeslice::fuzz::source_file("examples/models/tokenizer.json"));
  return tokenizer;
}

void read_all(const std::filesystem::path& path, moeslice::CorpusOptions options) {
  moeslice::fuzz::expect_input_errors([&] {
    moeslice::CorpusReader reader(path, std::move(options));
    while (reader.next()) {
    }
  });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace moeslice;
  const auto path = fuzz::scratch_file("corpus.jsonl", fuzz::as_text(data, size));
  CorpusOptions jsonl;
  jsonl.format = CorpusFormat::jsonl;
  jsonl.tokenizer = example_tokenizer();
  jsonl.add_bos = example_tokenizer().bos_id().has_value();
  read_all(path, jsonl);
  jsonl.skip_bad = true;
  read_all(path, jsonl);
  CorpusOptions text;
  text.format = CorpusFormat::text;
  text.one_doc_per_line = true;
  text.tokenizer = example_tokenizer();
  read_all(path, text);
  return 0;
}
