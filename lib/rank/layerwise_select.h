// EMO's greedy layer-wise selection (`moeslice select`): layer l's expert statistics are measured
// with every earlier MoE layer already restricted to its chosen experts, then layer l is ranked
// exactly as `rank` ranks a profile, and its choice applies from then on. One pass over the
// layers: every calibration window's hidden state is carried from layer to layer, so each layer's
// weights are read once per step instead of one full forward pass per layer. The result equals
// profiling the corpus with the plan so far (`profile --keep`) and ranking layer l, for l = 0..L-1.
//
// Memory: the hidden states of the whole calibration corpus (tokens x hidden floats) are held at
// once; in a job of several ranks (common/cluster.h) each rank holds and computes those of the
// documents it owns, and every layer's statistics are exchanged before the choice, so every rank
// chooses the same experts, bit for bit those of one process.
#pragma once

#include <cstdint>
#include <functional>
#include <span>

#include "common/cluster.h"
#include "forward/run_settings.h"
#include "model/model_spec.h"
#include "profile/usage_profile.h"
#include "rank/expert_ranking.h"
#include "text/corpus.h"

namespace moeslice {

struct SelectOptions {
  RankOptions rank;  // `domain` and `nonuniform` are refused: the corpus is the calibration set
  RunSettings run;
  // Whether SelectResult::usage records the gate-weighted expert output norms (gate_norm). The
  // metric `reap` needs them and measures them anyway; every other metric is computed from the
  // router alone, so without them each layer's unrestricted measurement runs no expert: select
  // then costs about one profile pass (the restricted pass runs the experts once).
  bool usage_output_norms = true;
  // Called after each MoE layer is chosen with (MoE layers done, MoE layers).
  std::function<void(int64_t, int64_t)> progress;
  const Cluster* cluster = &single_process();
};

struct SelectResult {
  RankedPlan plan;
  // Layer l's statistics as measured during the selection (earlier layers restricted, layer l
  // not); the metadata's "layerwise_select" holds the plan. gate_norm is all zeros when the
  // norms were not measured (SelectOptions::usage_output_norms), and info["gate_norm"] says so.
  UsageProfile usage;
};

// Throws InputError for bad options or tokens outside the vocabulary, UnsupportedError for a
// family the forward pass does not run.
SelectResult select_experts(const Model& model, std::span<const TokenDocument> documents,
                            const SelectOptions& options);

}  // namespace moeslice
