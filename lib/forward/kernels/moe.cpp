// Batched expert MLPs.
#include "forward/kernels/moe.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstdint>
#include <vector>

#include "forward/kernels/elementwise.h"
#include "forward/kernels/gemm.h"
#include "forward/kernels/thread_pool.h"

namespace moeslice::kernels {
namespace {

// out [m, H] = mlp(x) for x [m, H], using `act` [m, I] as the intermediate.
void run_mlp(ConstMatrixRef x, const ExpertMlp& mlp, MatrixRef act, MatrixRef out,
             ThreadPool* pool) {
  const size_t width = mlp.gate.rows();
  const size_t hidden = x.cols;
  assert(mlp.gate.cols() == hidden && mlp.up.rows() == width && mlp.up.cols() == hidden);
  assert(mlp.down.rows() == hidden && mlp.down.cols() == width);
  assert(act.rows == x.rows && act.cols == width && out.rows == x.rows && out.cols == hidden);
  const size_t m = x.rows;

  // gate and up: a block of `half` gate rows and the same up rows side by side in one scratch,
  // one GEMM gives [m, 2 * half] = [gate | up], then the GLU writes act's columns.
  const size_t half = std::max<size_t>(weight_block_rows(hidden) / 2, 8);
  const size_t up_blocks = (width + half - 1) / half;
  parallel_for(pool, up_blocks, [&](size_t b, size_t) {
    thread_local std::vector<float> weights;
    thread_local std::vector<float> gate_up;
    const size_t begin = b * half;
    const size_t count = std::min(half, width - begin);
    if (weights.size() < 2 * count * hidden) weights.resize(2 * count * hidden);
    if (gate_up.size() < m * 2 * count) gate_up.resize(m * 2 * count);
    mlp.gate.rows_to_f32(begin, count, weights.data());
    mlp.up.rows_to_f32(begin, count, weights.data() + count * hidden);
    MatrixRef gu(gate_up.data(), m, 2 * count);
    gemm_abt(x, ConstMatrixRef(weights.data(), 2 * count, hidden), gu);
    for (size_t t = 0; t < m; ++t) silu_glu(gu.row(t), gu.row(t) + count, act.row(t) + begin, count);
  });

  const size_t down_block = weight_block_rows(width);
  const size_t down_blocks = (hidden + down_block - 1) / down_block;
  parallel_for(pool, down_blocks, [&](size_t b, size_t) {
    thread_local std::vector<float> scratch;
    const size_t begin = b * down_block;
    const size_t count = std::min(down_block, hidden - begin);
    gemm_abt(act, mlp.down.rows_f32(begin, count, scratch), out.columns(begin, count));
  });
}

}  // namespace

void expert_mlp(ConstMatrixRef x, const ExpertMlp& mlp, MatrixRef y, ThreadPool* pool) {
  Matrix act(x.rows, mlp.gate.rows());
  run_mlp(x, mlp, act.ref(), y, pool);
}

void moe_experts(ConstMatrixRef x, const Routing& routing, std::span<const ExpertMlp> experts,
                 MatrixRef y, std::span<float> slot_norms, ThreadPool* pool) {
  const size_t n = x.rows;
  const size_t k = routing.k;
  const size_t hidden = x.cols;
  assert(routing.tokens == n && y.rows == n && y.cols == hidden);
  assert(slot_norms.empty() || slot_norms.size() == n * k);

  // Counting sort of (token, slot) pairs by expert; within an expert, tokens stay ascending.
  std::vector<size_t> start(experts.size() + 1, 0);
  for (int32_t e : routing.expert) {
    if (e < 0) continue;
    assert(static_cast<size_t>(e) < experts.size());
    ++start[static_cast<size_t>(e) + 1];
  }
  for (size_t e = 0; e < experts.size(); ++e) start[e + 1] += start[e];
  std::vector<size_t> slots(start.back());  // token * k + slot, grouped by expert
  {
    std::vector<size_t> fill(start.begin(), start.end() - 1);
    for (size_t i = 0; i < n * k; ++i)
      if (routing.expert[i] >= 0) slots[fill[static_cast<size_t>(routing.expert[i])]++] = i;
  }

  for (size_t t = 0; t < n; ++t) std::fill(y.row(t), y.row(t) + hidden, 0.0f);
  std::fill(slot_norms.begin(), slot_norms.end(), 0.0f);

  Matrix inputs;
  Matrix act;
  Matrix out;
  for (size_t e = 0; e < experts.size(); ++e) {
    const size_t m = start[e + 1] - start[e];
    if (m == 0) continue;
    const std::span<const size_t> mine(slots.data() + start[e], m);
    inputs.resize(m, hidden);
    for (size_t i = 0; i < m; ++i) {
      const float* src = x.row(mine[i] / k);
      std::copy(src, src + hidden, inputs.row(i));
    }
    act.resize(m, experts[e].gate.rows());
    out.resize(m, hidden);
    run_mlp(inputs.cref(), experts[e], act.ref(), out.ref(), pool);
    // Weighted add in ascending expert order per token: fp32 (w * out) then +=, like
    // index_add_(expert_out * w). Tokens are distinct within one expert, so rows never collide.
    parallel_for(pool, (m + 63) / 64, [&](size_t chunk, size_t) {
      const size_t end = std::min(m, chunk * 64 + 64);
      for (size_t i = chunk * 64; i < end; ++i) {
        const size_t slot = mine[i];
        const float w = routing.weight[slot];
        const float* o = out.row(i);
        float* dst = y.row(slot / k);
        for (size_t c = 0; c < hidden; ++c) dst[c] += o[c] * w;
        if (!slot_norms.empty()) slot_norms[slot] = std::sqrt(sum_of_squares(o, hidden));
      }
    });
  }
}

}  // namespace moeslice::kernels
