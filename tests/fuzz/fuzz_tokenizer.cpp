// libFuzzer target: tokenizer.json loading (normalizers, pre-tokenizers, BPE model, added tokens,
// post-processor, decoder) and, when it loads, encoding and decoding a text. The input is the
// tokenizer JSON, then a NUL byte, then the text.
#include <algorithm>

#include "fuzz_support.h"
#include "text/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace moeslice;
  const std::string_view input = fuzz::as_text(data, size);
  const size_t nul = std::min(input.find('\0'), input.size());
  const std::string_view json = input.substr(0, nul);
  const std::string_view text = nul < input.size() ? input.substr(nul + 1) : std::string_view();
  fuzz::expect_input_errors([&] {
    const Tokenizer tokenizer = Tokenizer::from_json_text(json, "tokenizer.json");
    const auto ids = tokenizer.encode(text, /*add_special=*/true);
    (void)tokenizer.decode(ids);
    (void)tokenizer.decode(ids, /*skip_special=*/true);
  });
  return 0;
}
