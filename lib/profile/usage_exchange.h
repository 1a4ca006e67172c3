// Usage profiles across the ranks of one job (common/cluster.h). Each rank profiles the
// documents it owns (document i belongs to rank i % size); these put every document's rows where
// a single process would have them, so the file written, and every ranking made from it, is bit
// for bit the single process's.
#pragma once

#include <cstdint>

#include "common/cluster.h"
#include "profile/usage_profile.h"

namespace moeslice {

// `mine` holds, in order, the documents this rank owns out of `documents` in the corpus; the
// result holds all of them in corpus order (on every rank), with `mine`'s layers, experts and
// info.
UsageProfile gather_usage_profile(const Cluster& cluster, const UsageProfile& mine,
                                  int64_t documents);

// `usage` holds every document of the corpus, but only the rows of `layer` of the documents this
// rank owns are measured; afterwards every rank holds every document's row of that layer.
void share_layer_rows(const Cluster& cluster, UsageProfile& usage, int64_t layer);

}  // namespace moeslice
