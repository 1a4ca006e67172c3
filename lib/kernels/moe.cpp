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

// The blocks of one expert MLP on m tokens: blocks of gate and up rows give act's columns through
// the policy's gate/up products and the GLU; then blocks of down rows give out's columns. Block
// sizes depend on the weight shapes only, so each output element comes from the same GEMM call
// whatever the thread count and whichever thread runs it.
template <class Math>
size_t gate_up_blocks(const ExpertMlp& mlp) {
  const size_t block = Math::gate_up_block_rows(mlp.gate.cols());
  return (mlp.gate.rows() + block - 1) / block;
}

template <class Math>
size_t down_blocks(const ExpertMlp& mlp) {
  const size_t block = Math::weight_block_rows(mlp.down.cols());
  return (mlp.down.rows() + block - 1) / block;
}

// act[:, block b's columns] = glu(gate(x), up(x)) for x [m, H]; act is already [m, I].
template <class Math>
void gate_up_block(ConstOperandRef<Math> x, const ExpertMlp& mlp, OperandMatrix<Math>& act,
                   size_t b) {
  const size_t width = mlp.gate.rows();
  const size_t up_block = Math::gate_up_block_rows(x.cols);
  const size_t begin = b * up_block;
  const size_t count = std::min(up_block, width - begin);
  const GateUpProducts products = Math::gate_up(x, mlp.gate, mlp.up, begin, count);
  for (size_t t = 0; t < x.rows; ++t) {
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
}

// out[:, block b's columns] = down(act) (+ bias).
template <class Math>
void down_block(ConstOperandRef<Math> act, const ExpertMlp& mlp, MatrixRef out, size_t b) {
  thread_local std::vector<float> product;
  const size_t hidden = mlp.down.rows();
  const size_t block = Math::weight_block_rows(mlp.down.cols());
  const size_t begin = b * block;
  const size_t count = std::min(block, hidden - begin);
  const MatrixRef dst = out.columns(begin, count);
  const MatrixRef tile = gemm_output<Math>(dst, product);
  Math::expert_product(act, mlp.down, begin, count, tile);
  store_results<Math>(tile, dst);
  // The bias after the product (`h @ down_proj[e] + bias`: in bf16 two roundings).
  if (!mlp.down_bias.empty()) store_results<Math>(dst, dst, mlp.down_bias.subspan(begin, count));
}

// out [m, H] = mlp(x) for x [m, H] (the policy's operand), `act` [m, I] the intermediate operand.
template <class Math>
void run_mlp(ConstOperandRef<Math> x, const ExpertMlp& mlp, OperandMatrix<Math>& act, MatrixRef out,
             ThreadPool* pool) {
  assert(mlp.gate.cols() == x.cols && mlp.up.rows() == mlp.gate.rows() && mlp.up.cols() == x.cols);
  assert(mlp.down.rows() == x.cols && mlp.down.cols() == mlp.gate.rows());
  assert(out.rows == x.rows && out.cols == x.cols);
  act.resize(x.rows, mlp.gate.rows());
  parallel_for(pool, gate_up_blocks<Math>(mlp),
               [&](size_t b, size_t) { gate_up_block<Math>(x, mlp, act, b); });
  const ConstOperandRef<Math> a = act.cref();
  parallel_for(pool, down_blocks<Math>(mlp),
               [&](size_t b, size_t) { down_block<Math>(a, mlp, out, b); });
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

// A run: rows of one expert's slot list multiplied together, slots rows[begin, begin + count).
struct ExpertRun {
  size_t expert = 0;
  size_t begin = 0;
  size_t count = 0;
};

// Appends the runs of one expert. Rows of a segment that sends the expert fewer than
// kBatchableRows tokens form a run of their own, so they meet exactly the GEMM (or few-token dot
// products) they would meet alone; rows of every other segment are pooled, in chunks of at most
// kMaxBatchRows (and at least kBatchableRows) rows.
void add_expert_runs(size_t expert, std::span<const size_t> mine, size_t k,
                     std::span<const size_t> segment_of_token, std::vector<size_t>& rows,
                     std::vector<ExpertRun>& runs, std::vector<size_t>& pooled) {
  const auto add_run = [&](std::span<const size_t> slots) {
    runs.push_back({expert, rows.size(), slots.size()});
    rows.insert(rows.end(), slots.begin(), slots.end());
  };
  pooled.clear();
  size_t i = 0;
  while (i < mine.size()) {
    const size_t segment = segment_of_token.empty() ? 0 : segment_of_token[mine[i] / k];
    size_t end = i + 1;
    while (end < mine.size() &&
           (segment_of_token.empty() || segment_of_token[mine[end] / k] == segment))
      ++end;
    if (end - i < kBatchableRows)
      add_run(mine.subspan(i, end - i));
    else
      pooled.insert(pooled.end(), mine.begin() + static_cast<std::ptrdiff_t>(i),
                    mine.begin() + static_cast<std::ptrdiff_t>(end));
    i = end;
  }
  const size_t chunks = (pooled.size() + kMaxBatchRows - 1) / kMaxBatchRows;
  for (size_t c = 0; c < chunks; ++c) {
    const size_t begin = pooled.size() * c / chunks;
    const size_t end = pooled.size() * (c + 1) / chunks;
    add_run(std::span<const size_t>(pooled).subspan(begin, end - begin));
  }
}

// One run in flight: its gathered tokens, intermediate and output.
template <class Math>
struct RunScratch {
  OperandMatrix<Math> inputs;
  OperandMatrix<Math> act;
  Matrix out;
};

// The index r with start[r] <= task < start[r + 1].
size_t owner_of(std::span<const size_t> start, size_t task) {
  return static_cast<size_t>(std::upper_bound(start.begin(), start.end(), task) - start.begin()) -
         1;
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
  thread_local std::vector<RunScratch<Math>> scratch_storage;
  thread_local std::vector<size_t> rows_storage, pooled_storage;
  thread_local std::vector<ExpertRun> runs_storage;
  std::vector<RunScratch<Math>>& scratch = scratch_storage;
  std::vector<size_t>& rows = rows_storage;
  std::vector<ExpertRun>& runs = runs_storage;
  rows.clear();
  runs.clear();
  for (size_t e = 0; e < experts.size(); ++e)
    add_expert_runs(e,
                    std::span<const size_t>(grouped.slots.data() + grouped.start[e],
                                            grouped.start[e + 1] - grouped.start[e]),
                    k, segment_of_token, rows, runs, pooled_storage);

  // Runs go in waves: the next runs (in expert order) until their gate/up blocks give every thread
  // a task, so that many cores are not left idle by an expert of few blocks; on 2 cores one run's
  // blocks usually suffice. A wave holds at most kMaxWaveRows tokens (its scratch).
  const size_t threads = pool == nullptr ? 1 : pool->size();
  std::vector<size_t> up_start, down_start;
  for (size_t first = 0; first < runs.size();) {
    size_t last = first, blocks = 0, wave_rows = 0;
    while (last < runs.size() &&
           (last == first || (blocks < threads && wave_rows + runs[last].count <= kMaxWaveRows))) {
      blocks += gate_up_blocks<Math>(experts[runs[last].expert]);
      wave_rows += runs[last].count;
      ++last;
    }
    const std::span<const ExpertRun> wave(runs.data() + first, last - first);
    if (scratch.size() < wave.size()) scratch.resize(wave.size());
    up_start.assign(1, 0);
    down_start.assign(1, 0);
    for (const ExpertRun& run : wave) {
      up_start.push_back(up_start.back() + gate_up_blocks<Math>(experts[run.expert]));
      down_start.push_back(down_start.back() + down_blocks<Math>(experts[run.expert]));
    }
    parallel_for(pool, wave.size(), [&](size_t r, size_t) {
      const ExpertRun& run = wave[r];
      RunScratch<Math>& mine = scratch[r];
      mine.inputs.resize(run.count, hidden);
      for (size_t i = 0; i < run.count; ++i)
        Math::to_operand(x.row(rows[run.begin + i] / k), mine.inputs.row(i), hidden);
      mine.act.resize(run.count, experts[run.expert].gate.rows());
      mine.out.resize(run.count, hidden);
    });
    parallel_for(pool, up_start.back(), [&](size_t task, size_t) {
      const size_t r = owner_of(up_start, task);
      gate_up_block<Math>(scratch[r].inputs.cref(), experts[wave[r].expert], scratch[r].act,
                          task - up_start[r]);
    });
    parallel_for(pool, down_start.back(), [&](size_t task, size_t) {
      const size_t r = owner_of(down_start, task);
      down_block<Math>(scratch[r].act.cref(), experts[wave[r].expert], scratch[r].out.ref(),
                       task - down_start[r]);
    });
    // Weighted adds run by run, so each token's outputs still add in ascending expert order (a
    // token is in one run per expert). Tokens are distinct within a run: rows never collide.
    for (size_t r = 0; r < wave.size(); ++r) {
      const ExpertRun& run = wave[r];
      const Matrix& out = scratch[r].out;
      parallel_rows(pool, run.count, [&](size_t begin, size_t count) {
        for (size_t i = begin; i < begin + count; ++i) {
          const size_t slot = rows[run.begin + i];
          const float* o = out.row(i);
          Math::add_weighted(y.row(slot / k), o, routing.weight[slot], hidden);
          if (!slot_norms.empty()) slot_norms[slot] = std::sqrt(sum_of_squares(o, hidden));
        }
      });
    }
    first = last;
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
