// libFuzzer target: a comparison file (what `compare --json` writes and `report` reads) through
// parse_comparison, then written back and read again.
#include <stdexcept>
#include <string>

#include "common/json_parse.h"
#include "eval/comparison_file.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace moeslice;
  fuzz::expect_input_errors([&] {
    const auto document = parse_json(fuzz::as_text(data, size), "comparison.json");
    const ComparisonDocument parsed = parse_comparison(document, "comparison.json");
    try {
      (void)parse_comparison(comparison_json(parsed), "written comparison");
    } catch (const InputError& error) {
      throw std::logic_error(std::string("a comparison written by comparison_json is refused: ") +
                             error.what());
    }
  });
  return 0;
}
