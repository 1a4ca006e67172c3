// How many experts a plan keeps per layer: the `--keep` value ("25%", "12.5%" or a count K) and
// its resolution against a layer's expert count. Shared experts count in K, as EMO counts them:
// EMO's 12.5% of 128 experts is 16 = 15 routed + 1 shared.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace moeslice {

struct KeepAmount {
  std::string text;      // as given, for messages and the plan file
  bool percent = false;  // true: `value` is a percentage of the experts; false: a count
  double value = 0;
};

// Parses "P%" (0 < P <= 100, decimals allowed) or a positive integer count. Throws InputError
// quoting the text for anything else ("abc", "0%", "150%", "-3", "2.5").
KeepAmount parse_keep_amount(std::string_view text);

// K for a layer of `experts` experts of which `shared` are always-on: round(P x E / 100), halves
// away from zero, or the count itself. Throws InputError when K < shared + 1 (a layer must keep
// its shared experts and at least one routed one) or K > experts.
int64_t resolve_keep_count(const KeepAmount& keep, int64_t experts, int64_t shared);

}  // namespace moeslice
