// Batched expert MLPs.
#include "kernels/moe.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstdint>
#include <vector>

#include "kernels/elementwise.h"
#include "kernels/gemm.h"
#include "kernels/gemm_bf16.h"
#include "kernels/thread_pool.h"

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
    if (gate_up.size() < m * 2 * count) gate_up.resize(m * 2 * count);
    MatrixRef gu(gate_up.data(), m, 2 * count);
    if (m <= kFewTokens) {
      few_tokens_xWt(x, mlp.gate, begin, count, gu.columns(0, count));
      few_tokens_xWt(x, mlp.up, begin, count, gu.columns(count, count));
    } else {
      if (weights.size() < 2 * count * hidden) weights.resize(2 * count * hidden);
      mlp.gate.rows_to_f32(begin, count, weights.data());
      mlp.up.rows_to_f32(begin, count, weights.data() + count * hidden);
      gemm_abt(x, ConstMatrixRef(weights.data(), 2 * count, hidden), gu);
    }
    for (size_t t = 0; t < m; ++t)
      silu_glu(gu.row(t), gu.row(t) + count, act.row(t) + begin, count);
  });

  const size_t down_block = weight_block_rows(width);
  const size_t down_blocks = (hidden + down_block - 1) / down_block;
  parallel_for(pool, down_blocks, [&](size_t b, size_t) {
    thread_local std::vector<float> scratch;
    const size_t begin = b * down_block;
    const size_t count = std::min(down_block, hidden - begin);
    if (m <= kFewTokens)
      few_tokens_xWt(act, mlp.down, begin, count, out.columns(begin, count));
    else
      gemm_abt(act, mlp.down.rows_f32(begin, count, scratch), out.columns(begin, count));
  });
}

// (token, slot) pairs grouped by expert (counting sort); within an expert, tokens stay ascending.
struct SlotsByExpert {
  std::vector<size_t> start;  // [experts + 1]: expert e owns slots[start[e], start[e + 1])
  std::vector<size_t> slots;  // token * k + slot
};

SlotsByExpert group_by_expert(const Routing& routing, size_t experts) {
  SlotsByExpert grouped;
  std::vector<size_t>& start = grouped.start;
  start.assign(experts + 1, 0);
  for (int32_t e : routing.expert) {
    if (e < 0) continue;
    assert(static_cast<size_t>(e) < experts);
    ++start[static_cast<size_t>(e) + 1];
  }
  for (size_t e = 0; e < experts; ++e) start[e + 1] += start[e];
  grouped.slots.resize(start.back());
  std::vector<size_t> fill(start.begin(), start.end() - 1);
  for (size_t i = 0; i < routing.tokens * routing.k; ++i)
    if (routing.expert[i] >= 0) grouped.slots[fill[static_cast<size_t>(routing.expert[i])]++] = i;
  return grouped;
}

// SiLU of a BF16 value as PyTorch 1.13's BFloat16 kernel computes it: x / (1 + exp(-x)) with
// every operation rounded to BF16 (measured against torch: 100% equal; one rounding of the fp32
// silu differs in ~30% of values).
float silu_bf16(float x) {
  const float e = round_bf16(exp_vectorizable(-x));
  return round_bf16(x / round_bf16(1.0f + e));
}

// bf16 mode: out [m, H] = mlp(x) for x [m, H] in BF16 (rounded values), `act` [m, I] the BF16
// intermediate. Gate and up blocks of the same rows run as two GEMMs into dense fp32 scratch,
// then the rounded GLU writes act's columns; down blocks likewise into out's columns.
void run_mlp_bf16(ConstBf16Ref x, const ExpertMlp& mlp, Bf16Matrix& act, MatrixRef out,
                  ThreadPool* pool) {
  const size_t width = mlp.gate.rows();
  const size_t hidden = x.cols;
  assert(mlp.gate.cols() == hidden && mlp.up.rows() == width && mlp.up.cols() == hidden);
  assert(mlp.down.rows() == hidden && mlp.down.cols() == width);
  assert(out.rows == x.rows && out.cols == hidden);
  const size_t m = x.rows;
  act.resize(m, width);

  const size_t up_block = bf16_block_rows(hidden);
  parallel_for(pool, (width + up_block - 1) / up_block, [&](size_t b, size_t) {
    thread_local std::vector<uint16_t> gate_weights;
    thread_local std::vector<uint16_t> up_weights;
    thread_local std::vector<float> gate_up;
    const size_t begin = b * up_block;
    const size_t count = std::min(up_block, width - begin);
    if (gate_up.size() < 2 * m * count) gate_up.resize(2 * m * count);
    const MatrixRef g(gate_up.data(), m, count);
    const MatrixRef u(gate_up.data() + m * count, m, count);
    gemm_bf16_abt(x, mlp.gate.rows_bf16(begin, count, gate_weights), g);
    gemm_bf16_abt(x, mlp.up.rows_bf16(begin, count, up_weights), u);
    for (size_t t = 0; t < m; ++t) {
      const float* gt = g.row(t);
      const float* ut = u.row(t);
      uint16_t* dst = act.row(t) + begin;
      for (size_t j = 0; j < count; ++j) {
        const float activated = silu_bf16(round_bf16(gt[j]));
        dst[j] = to_bf16_bits(activated * round_bf16(ut[j]));
      }
    }
  });

  const ConstBf16Ref a = act.cref();
  const size_t down_block = bf16_block_rows(width);
  parallel_for(pool, (hidden + down_block - 1) / down_block, [&](size_t b, size_t) {
    thread_local std::vector<uint16_t> weights;
    thread_local std::vector<float> product;
    const size_t begin = b * down_block;
    const size_t count = std::min(down_block, hidden - begin);
    if (product.size() < m * count) product.resize(m * count);
    gemm_bf16_abt(a, mlp.down.rows_bf16(begin, count, weights),
                  MatrixRef(product.data(), m, count));
    for (size_t t = 0; t < m; ++t) {
      const float* src = product.data() + t * count;
      float* dst = out.row(t) + begin;
      for (size_t j = 0; j < count; ++j) dst[j] = round_bf16(src[j]);
    }
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

  const SlotsByExpert grouped = group_by_expert(routing, experts.size());
  const std::vector<size_t>& start = grouped.start;
  const std::vector<size_t>& slots = grouped.slots;

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

void expert_mlp_bf16(ConstMatrixRef x, const ExpertMlp& mlp, MatrixRef y, ThreadPool* pool) {
  // Scratch reused per calling thread, as in moe_experts_bf16.
  thread_local Bf16Matrix xb;
  thread_local Bf16Matrix act;
  xb.resize(x.rows, x.cols);
  f32_to_bf16(x, xb.data());
  run_mlp_bf16(xb.cref(), mlp, act, y, pool);
}

void moe_experts_bf16(ConstMatrixRef x, const Routing& routing, std::span<const ExpertMlp> experts,
                      MatrixRef y, std::span<float> slot_norms, ThreadPool* pool) {
  const size_t n = x.rows;
  const size_t k = routing.k;
  const size_t hidden = x.cols;
  assert(routing.tokens == n && y.rows == n && y.cols == hidden);
  assert(slot_norms.empty() || slot_norms.size() == n * k);
  const SlotsByExpert grouped = group_by_expert(routing, experts.size());

  for (size_t t = 0; t < n; ++t) std::fill(y.row(t), y.row(t) + hidden, 0.0f);
  std::fill(slot_norms.begin(), slot_norms.end(), 0.0f);

  // Scratch reused per calling thread: fresh multi-megabyte buffers per layer cost page faults.
  // Pool tasks run on other threads, so they must reach it through these references, never
  // through the thread_local names.
  thread_local Bf16Matrix input_storage;
  thread_local Bf16Matrix act_storage;
  thread_local Matrix out_storage;
  Bf16Matrix& inputs = input_storage;
  Bf16Matrix& act = act_storage;
  Matrix& out = out_storage;
  for (size_t e = 0; e < experts.size(); ++e) {
    const size_t m = grouped.start[e + 1] - grouped.start[e];
    if (m == 0) continue;
    const std::span<const size_t> mine(grouped.slots.data() + grouped.start[e], m);
    inputs.resize(m, hidden);
    for (size_t i = 0; i < m; ++i) f32_to_bf16(x.row(mine[i] / k), inputs.row(i), hidden);
    out.resize(m, hidden);
    run_mlp_bf16(inputs.cref(), experts[e], act, out.ref(), pool);
    // out.index_add_(0, tok, (y * w.to(bf16)).to(bf16)) on a bf16 buffer: the weighted output
    // and every partial sum are rounded.
    parallel_for(pool, (m + 63) / 64, [&](size_t chunk, size_t) {
      const size_t end = std::min(m, chunk * 64 + 64);
      for (size_t i = chunk * 64; i < end; ++i) {
        const size_t slot = mine[i];
        const float w = round_bf16(routing.weight[slot]);
        const float* o = out.row(i);
        float* dst = y.row(slot / k);
        for (size_t c = 0; c < hidden; ++c) dst[c] = round_bf16(dst[c] + round_bf16(o[c] * w));
        if (!slot_norms.empty()) slot_norms[slot] = std::sqrt(sum_of_squares(o, hidden));
      }
    });
  }
}

}  // namespace moeslice::kernels
