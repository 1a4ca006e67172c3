// libFuzzer target: a family profile (profiles/*.json) through parse_family_profile. Profiles are
// compiled in, so their errors are std::logic_error "family profile ...: ..." (a programming
// error of the profile's author); any other exception is a finding.
#include <stdexcept>
#include <string_view>

#include "common/json_parse.h"
#include "fuzz_support.h"
#include "model/family_profile.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace moeslice;
  fuzz::expect_input_errors([&] {
    const auto document = parse_json(fuzz::as_text(data, size), "fuzz.json");
    try {
      (void)parse_family_profile(document, "fuzz.json");
    } catch (const std::logic_error& error) {
      if (!std::string_view(error.what()).starts_with("family profile fuzz.json: ")) throw;
    }
  });
  return 0;
}
