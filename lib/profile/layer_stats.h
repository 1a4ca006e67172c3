// One layer's expert statistics summed over a profile's documents: the input of every ranking
// metric and of the report's usage figures. Per-token weighting (the default) sums raw counts and
// sums, so long documents weigh more; per-document weighting divides each document's numbers by its
// token count first, so every document counts equally.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "profile/usage_profile.h"

namespace moeslice {

enum class Weighting { kToken, kDocument };

// "token" or "document".
const char* weighting_name(Weighting weighting);

// Indices of the documents to rank on: all, or those labelled `domain`. Throws InputError for a
// label no document carries, listing the labels the profile has.
std::vector<int64_t> select_documents(const UsageProfile& profile,
                                      const std::optional<std::string>& domain);

struct LayerStats {
  std::vector<double> counts;     // [E] top-k selections (per token, or per-document rates)
  std::vector<double> mass;       // [E] router probability mass
  std::vector<double> gate_norm;  // [E] gate weight x expert output norm
  std::vector<double> coverage;   // [E] share of the documents that routed to the expert at all
  int64_t documents = 0;
  int64_t tokens = 0;
};

// Sums layer `layer` over `documents` (documents with no tokens are skipped).
LayerStats layer_stats(const UsageProfile& profile, int64_t layer,
                       std::span<const int64_t> documents, Weighting weighting);

}  // namespace moeslice
