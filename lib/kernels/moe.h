// The expert MLPs of a MoE layer, batched: tokens are grouped by chosen expert, each expert runs
// down(silu(gate(x)) * up(x)) on its tokens, and outputs are added into Y weighted by the routing
// weight. Also the dense SiLU-GLU MLP (Qwen2-MoE's shared expert, dense layers) on the same code.
// Written once over a precision policy (precision.h), instantiated for Fp32Math and Bf16Math; the
// policy decides how gate and up are multiplied (fp32: one fused GEMM, or dot products when at
// most kFewTokens tokens reach the expert; bf16: two GEMMs), the SiLU, and how weighted outputs
// accumulate.
//
// Determinism: experts are visited in ascending id and each token's output starts at 0 and adds
// its experts' weighted outputs in that order -- the order of transformers' index_add_ loop --
// whatever the thread count. Threads split each expert's GEMMs into fixed blocks of weight rows
// (converted per block), so no expert is a straggler; when one expert's blocks are fewer than the
// threads, the next experts' blocks run at the same time (a wave), and their weighted outputs are
// added afterwards in expert order.
#pragma once

#include <cstddef>
#include <span>

#include "kernels/matrix.h"
#include "kernels/routing.h"
#include "kernels/weight_matrix.h"

namespace moeslice::kernels {

class ThreadPool;

// How an expert turns its gate and up products into the down projection's input.
enum class GluKind {
  kSilu,  // silu(gate) * up
  // gpt-oss: gate clamped from above and up to [-limit, limit], then
  // (up + 1) * gate * sigmoid(alpha * gate)
  kClampedSwiglu,
};

struct GluParams {
  GluKind kind = GluKind::kSilu;
  float alpha = 1.702f;  // kClampedSwiglu
  float limit = 7.0f;    // kClampedSwiglu
};

// One gated MLP: gate and up [I, H], down [H, I], optional biases ([I], [I], [H]; empty: none,
// owned elsewhere and outliving the MLP) and the GLU of its kind.
struct ExpertMlp {
  WeightMatrix gate;
  WeightMatrix up;
  WeightMatrix down;
  std::span<const float> gate_bias{};
  std::span<const float> up_bias{};
  std::span<const float> down_bias{};
  GluParams glu{};
};

// y [n, H] = down(glu(gate(x) + gate_bias, up(x) + up_bias)) + down_bias for x [n, H], with the
// policy's rounding (bf16: gate, up, silu, their product and down each rounded). y must not
// overlap x.
template <class Math>
void expert_mlp(ConstMatrixRef x, const ExpertMlp& mlp, MatrixRef y, ThreadPool* pool = nullptr);

// An expert's GEMM gives each token's row the same bits whatever other rows it multiplies with,
// once it has at least this many rows (oneDNN's sgemm and bf16 matmul on every shape measured;
// tests/unit/test_kernels.cpp checks it): below, the row count changes the kernel.
inline constexpr size_t kBatchableRows = 16;
// Rows per expert GEMM at most when segments are pooled (bounds the scratch of one call).
inline constexpr size_t kMaxBatchRows = 2048;
// Tokens of the expert runs computed at once when several experts are in flight (bounds their
// scratch: inputs, intermediate and output per token).
inline constexpr size_t kMaxWaveRows = 8192;

// y [n, H] = sum over token t's non-empty slots s, in ascending expert id, of
// routing.weight(t, s) * experts[routing.expert(t, s)](x[t]), accumulated as the policy does
// (bf16: the weight, each weighted output and every partial sum rounded). y is overwritten and
// must not overlap x. slot_norms, when non-empty ([n * k]), receives the fp32 L2 norm of each
// slot's expert output before weighting (0 for empty slots): what the profiler records.
//
// segment_lengths (summing to n; empty: one segment) splits x into independent sequences, such as
// the windows of a layer-major block, computed in one call: the result equals, bit for bit, one
// call per segment. An expert multiplies the tokens of all segments that send it at least
// kBatchableRows tokens in one GEMM (fewer dequantized weight blocks, larger GEMMs), and the tokens
// of each other segment alone.
template <class Math>
void moe_experts(ConstMatrixRef x, const Routing& routing, std::span<const ExpertMlp> experts,
                 MatrixRef y, std::span<float> slot_norms = {}, ThreadPool* pool = nullptr,
                 std::span<const size_t> segment_lengths = {});

// Qwen2-MoE's gated shared expert: y = round(y + round(g_t * mlp(x))) per token t, with
// g_t = round(sigmoid(round(x[t] . gate_weight))); gate_weight [H].
template <class Math>
void add_sigmoid_gated_expert(ConstMatrixRef x, const ExpertMlp& mlp,
                              std::span<const float> gate_weight, MatrixRef y,
                              ThreadPool* pool = nullptr);

}  // namespace moeslice::kernels
