// Batched expert MLPs over a precision policy.
#include "kernels/moe.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstdint>
#include <vector>

#include "kernels/elementwise.h"
#include "kernels/precision.h"
#include "kernels/thread_pool.h"

namespace moeslice::kernels {
namespace {

// gpt-oss's GLU of one value (GluKind::kClampedSwiglu) as the down GEMM's operand, each step
// rounded by the policy: gate and up (their products plus biases) rounded, clamped, then
// (up + 1) * gate * sigmoid(alpha * gate). In bf16 the constants are rounded too, as PyTorch
// rounds a Python float it multiplies a BF16 tensor by (1.702 -> 1.703125).
template <class Math>
typename Math::Operand clamped_swiglu(float gate_sum, float up_sum, const GluParams& params) {
  const float limit = Math::round(params.limit);
  const float gate = std::min(Math::round(gate_sum), limit);
  const float up = std::clamp(Math::round(up_sum), -limit, limit);
  const float sig = Math::round(sigmoid(Math::round(gate * Math::round(params.alpha))));
  const float glu = Math::round(gate * sig);
  return Math::to_operand(Math::round(up + 1.0f) * glu);
}

// out [m, H] = mlp(x) for x [m, H] (the policy's operand), `act` [m, I] the intermediate
// operand. Blocks of gate and up rows give act's columns through the policy's gate/up products
// and the GLU; then blocks of down rows give out's columns.
template <class Math>
void run_mlp(ConstOperandRef<Math> x, const ExpertMlp& mlp, OperandMatrix<Math>& act, MatrixRef out,
             ThreadPool* pool) {
  const size_t width = mlp.gate.rows();
  const size_t hidden = x.cols;
  assert(mlp.gate.cols() == hidden && mlp.up.rows() == width && mlp.up.cols() == hidden);
  assert(mlp.down.rows() == hidden && mlp.down.cols() == width);
  assert(out.rows == x.rows && out.cols == hidden);
  const size_t m = x.rows;
  act.resize(m, width);

  const size_t up_block = Math::gate_up_block_rows(hidden);
  parallel_for(pool, (width + up_block - 1) / up_block, [&](size_t b, size_t) {
    const size_t begin = b * up_block;
    const size_t count = std::min(up_block, width - begin);
    const GateUpProducts products = Math::gate_up(x, mlp.gate, mlp.up, begin, count);
    for (size_t t = 0; t < m; ++t) {
      const float* gate = products.gate.row(t);
      const float* up = products.up.row(t);
      typename Math::Operand* dst = act.row(t) + begin;
      if (mlp.glu.kind == GluKind::kSilu && mlp.gate_bias.empty() && mlp.up_bias.empty()) {
        for (size_t j = 0; j < count; ++j) dst[j] = glu<Math>(gate[j], up[j]);
        continue;
      }
      for (size_t j = 0; j < count; ++j) {
        const float g =
            Math::round(gate[j]) + (mlp.gate_bias.empty() ? 0.0f : mlp.gate_bias[begin + j]);
        const float u = Math::round(up[j]) + (mlp.up_bias.empty() ? 0.0f : mlp.up_bias[begin + j]);
        dst[j] =
            mlp.glu.kind == GluKind::kSilu ? glu<Math>(g, u) : clamped_swiglu<Math>(g, u, mlp.glu);
      }
    }
  });

  const ConstOperandRef<Math> a = act.cref();
  const size_t down_block = Math::weight_block_rows(width);
  parallel_for(pool, (hidden + down_block - 1) / down_block, [&](size_t b, size_t) {
    thread_local std::vector<float> product;
    const size_t begin = b * down_block;
    const size_t count = std::min(down_block, hidden - begin);
    const MatrixRef dst = out.columns(begin, count);
    const MatrixRef tile = gemm_output<Math>(dst, product);
    Math::expert_product(a, mlp.down, begin, count, tile);
    store_results<Math>(tile, dst);
    // The bias after the product (`h @ down_proj[e] + bias`: in bf16 two roundings).
    if (!mlp.down_bias.empty()) store_results<Math>(dst, dst, mlp.down_bias.subspan(begin, count));
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

// The runs of one expert's rows (positions in its slot list) that are multiplied together. Rows
// of a segment that sends the expert fewer than kBatchableRows tokens form a run of their own, so
// they meet exactly the GEMM (or few-token dot products) they would meet alone; rows of every other
// segment are pooled, in chunks of at most kMaxBatchRows (and at least kBatchableRows) rows.
std::vector<std::span<const size_t>> expert_runs(std::span<const size_t> mine, size_t k,
                                                 std::span<const size_t> segment_of_token,
                                                 std::vector<size_t>& pooled) {
  std::vector<std::span<const size_t>> runs;
  pooled.clear();
  size_t i = 0;
  while (i < mine.size()) {
    const size_t segment = segment_of_token.empty() ? 0 : segment_of_token[mine[i] / k];
    size_t end = i + 1;
    while (end < mine.size() &&
           (segment_of_token.empty() || segment_of_token[mine[end] / k] == segment))
      ++end;
    if (end - i < kBatchableRows)
      runs.push_back(mine.subspan(i, end - i));
    else
      pooled.insert(pooled.end(), mine.begin() + static_cast<std::ptrdiff_t>(i),
                    mine.begin() + static_cast<std::ptrdiff_t>(end));
    i = end;
  }
  const size_t chunks = (pooled.size() + kMaxBatchRows - 1) / kMaxBatchRows;
  for (size_t c = 0; c < chunks; ++c) {
    const size_t begin = pooled.size() * c / chunks;
    const size_t end = pooled.size() * (c + 1) / chunks;
    runs.push_back(std::span<const size_t>(pooled).subspan(begin, end - begin));
  }
  return runs;
}

}  // namespace

template <class Math>
void expert_mlp(ConstMatrixRef x, const ExpertMlp& mlp, MatrixRef y, ThreadPool* pool) {
  // Scratch reused per calling thread, as in moe_experts.
  thread_local OperandMatrix<Math> input;
  thread_local OperandMatrix<Math> act;
  run_mlp<Math>(Math::operand(x, input), mlp, act, y, pool);
}

template <class Math>
void moe_experts(ConstMatrixRef x, const Routing& routing, std::span<const ExpertMlp> experts,
                 MatrixRef y, std::span<float> slot_norms, ThreadPool* pool,
                 std::span<const size_t> segment_lengths) {
  const size_t n = x.rows;
  const size_t k = routing.k;
  const size_t hidden = x.cols;
  assert(routing.tokens == n && y.rows == n && y.cols == hidden);
  assert(slot_norms.empty() || slot_norms.size() == n * k);
  const SlotsByExpert grouped = group_by_expert(routing, experts.size());
  std::vector<size_t> segment_of_token;
  if (segment_lengths.size() > 1) {
    segment_of_token.reserve(n);
    for (size_t s = 0; s < segment_lengths.size(); ++s)
      segment_of_token.insert(segment_of_token.end(), segment_lengths[s], s);
  }
  assert(segment_of_token.empty() || segment_of_token.size() == n);

  for (size_t t = 0; t < n; ++t) std::fill(y.row(t), y.row(t) + hidden, 0.0f);
  std::fill(slot_norms.begin(), slot_norms.end(), 0.0f);

  // Scratch reused per calling thread: fresh multi-megabyte buffers per layer cost page faults.
  // Pool tasks run on other threads, so they must reach it through these references, never
  // through the thread_local names.
  thread_local OperandMatrix<Math> input_storage;
  thread_local OperandMatrix<Math> act_storage;
  thread_local Matrix out_storage;
  thread_local std::vector<size_t> pooled_storage;
  OperandMatrix<Math>& inputs = input_storage;
  OperandMatrix<Math>& act = act_storage;
  Matrix& out = out_storage;
  for (size_t e = 0; e < experts.size(); ++e) {
    const std::span<const size_t> mine(grouped.slots.data() + grouped.start[e],
                                       grouped.start[e + 1] - grouped.start[e]);
    // Each token is in one run of the expert, so its weighted outputs still add in ascending
    // expert order.
    for (const std::span<const size_t> run :
         expert_runs(mine, k, segment_of_token, pooled_storage)) {
      const size_t m = run.size();
      inputs.resize(m, hidden);
      for (size_t i = 0; i < m; ++i) Math::to_operand(x.row(run[i] / k), inputs.row(i), hidden);
      out.resize(m, hidden);
      run_mlp<Math>(inputs.cref(), experts[e], act, out.ref(), pool);
      // Weighted add. Tokens are distinct within one expert, so rows never collide.
      parallel_for(pool, (m + 63) / 64, [&](size_t chunk, size_t) {
        const size_t end = std::min(m, chunk * 64 + 64);
        for (size_t i = chunk * 64; i < end; ++i) {
          const size_t slot = run[i];
          const float* o = out.row(i);
          Math::add_weighted(y.row(slot / k), o, routing.weight[slot], hidden);
          if (!slot_norms.empty()) slot_norms[slot] = std::sqrt(sum_of_squares(o, hidden));
        }
      });
    }
  }
}

template <class Math>
void add_sigmoid_gated_expert(ConstMatrixRef x, const ExpertMlp& mlp,
                              std::span<const float> gate_weight, MatrixRef y, ThreadPool* pool) {
  assert(gate_weight.size() == x.cols && y.rows == x.rows && y.cols == x.cols);
  thread_local Matrix shared;
  shared.resize(x.rows, x.cols);
  expert_mlp<Math>(x, mlp, shared.ref(), pool);
  for (size_t t = 0; t < x.rows; ++t) {
    const float logit = Math::round(dot(x.row(t), gate_weight.data(), x.cols));
    const float gate = Math::round(sigmoid(logit));
    float* row = shared.row(t);
    for (size_t c = 0; c < x.cols; ++c) row[c] = Math::round(gate * row[c]);
  }
  add_into<Math>(y, shared.cref());
}

#define MOESLICE_INSTANTIATE_MOE(Math)                                                        \
  template void expert_mlp<Math>(ConstMatrixRef, const ExpertMlp&, MatrixRef, ThreadPool*);   \
  template void moe_experts<Math>(ConstMatrixRef, const Routing&, std::span<const ExpertMlp>, \
                                  MatrixRef, std::span<float>, ThreadPool*,                   \
                                  std::span<const size_t>);                                   \
  template void add_sigmoid_gated_expert<Math>(ConstMatrixRef, const ExpertMlp&,              \
                                               std::span<const float>, MatrixRef, ThreadPool*);
MOESLICE_INSTANTIATE_MOE(Fp32Math)
MOESLICE_INSTANTIATE_MOE(Bf16Math)
#undef MOESLICE_INSTANTIATE_MOE

}  // namespace moeslice::kernels
