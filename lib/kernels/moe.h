// The expert MLPs of a MoE layer, batched: tokens are grouped by chosen expert, each expert runs
// down(silu(gate(x)) * up(x)) on its tokens with gate and up as one fused GEMM, and outputs are
// added into Y weighted by the routing weight. Also the dense SiLU-GLU MLP (Qwen2-MoE's shared
// expert, dense layers) on the same code.
//
// Determinism: experts are visited in ascending id and each token's output starts at 0 and adds
// its experts' weighted outputs in that order -- the order of transformers' index_add_ loop --
// whatever the thread count. Threads split each expert's GEMMs into fixed blocks of weight rows
// (converted BF16/F16 -> fp32 per block, <= kWeightBlockBytes each), so no expert is a straggler
// and no per-slot output buffer is needed.
#pragma once

#include <span>

#include "kernels/matrix.h"
#include "kernels/routing.h"
#include "kernels/weight_matrix.h"

namespace moeslice::kernels {

class ThreadPool;

// One SiLU-GLU MLP: gate and up [I, H], down [H, I].
struct ExpertMlp {
  WeightMatrix gate;
  WeightMatrix up;
  WeightMatrix down;
};

// y [n, H] = down(silu(gate(x)) * up(x)) for x [n, H]. y must not overlap x.
void expert_mlp(ConstMatrixRef x, const ExpertMlp& mlp, MatrixRef y, ThreadPool* pool = nullptr);

// y [n, H] = sum over token t's non-empty slots s, in ascending expert id, of
// routing.weight(t, s) * experts[routing.expert(t, s)](x[t]). y is overwritten and must not
// overlap x. slot_norms, when non-empty ([n * k]), receives the L2 norm of each slot's expert
// output before weighting (0 for empty slots): what the profiler records.
void moe_experts(ConstMatrixRef x, const Routing& routing, std::span<const ExpertMlp> experts,
                 MatrixRef y, std::span<float> slot_norms = {}, ThreadPool* pool = nullptr);

// bf16 mode (--compute bf16): the same two computations with BF16 weights and activations (fp32
// accumulation) and the rounding points of transformers' bf16 run (tests/reference/README.md,
// "Numerics modes"): gate, up, silu, their product and down each rounded to BF16; the weight
// rounded to BF16, each weighted expert output rounded, and the sum kept in BF16 (every
// addition rounded), in ascending expert id. x must hold BF16 values; slot norms are fp32 norms of
// the rounded expert outputs. Weights stored as BF16 are used in place.
void expert_mlp_bf16(ConstMatrixRef x, const ExpertMlp& mlp, MatrixRef y,
                     ThreadPool* pool = nullptr);
void moe_experts_bf16(ConstMatrixRef x, const Routing& routing, std::span<const ExpertMlp> experts,
                      MatrixRef y, std::span<float> slot_norms = {}, ThreadPool* pool = nullptr);

}  // namespace moeslice::kernels
