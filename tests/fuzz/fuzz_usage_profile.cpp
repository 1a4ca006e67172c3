// libFuzzer target: a usage file (a safetensors file whose metadata describes the profile and
// whose tensors hold counts, mass, gate norms and tokens) through read_usage_profile, then merged
// with itself as `merge` would.
#include <string>
#include <vector>

#include "fuzz_support.h"
#include "profile/usage_profile.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace moeslice;
  const auto path = fuzz::scratch_file("fuzz.usage", fuzz::as_text(data, size));
  fuzz::expect_input_errors([&] {
    const UsageProfile profile = read_usage_profile(path);
    const std::vector<UsageProfile> both = {profile, profile};
    const std::vector<std::string> sources = {path.string(), path.string()};
    (void)merge_usage_profiles(both, sources);
  });
  return 0;
}
