// Precision policies: everything the fp32 and bf16 compute modes do differently, so that each op
// (Linear, the expert MLP and batched MoE experts, causal attention, RoPE, the residual add, and
// lib/forward's attention and MoE sublayers) is written once as a template over a policy and
// explicitly instantiated for each one in its .cpp file.
//
// A policy is a stateless type with static members. It says
//  - what a GEMM operand is (`Operand`) and how activations become one (`operand`,
//    `to_operand`), and how a block of weight rows does (`weight_rows`: the WeightMatrix reads its
//    storage in place when it already is the operand, else converts the block; a quantized
//    weight format would dequantize its blocks there, leaving every op unchanged);
//  - its GEMMs (fp32 accumulation, unrounded fp32 results) and whether they want a dense output;
//  - where results are rounded to the activation precision (`round`: identity in fp32);
//  - the arithmetic that really differs: the expert gate/up products (fp32 fuses them into one
//    GEMM and takes dot products for a few tokens, bf16 runs two GEMMs), the attention scores
//    (fp32 scales inside the GEMM, bf16 rounds before and after scaling), the softmax summation,
//    the SiLU, the accumulation of weighted expert outputs, and how routing top-k breaks ties.
//
// Fp32Math: weights converted to fp32 block by block, all maths in fp32 (OpenBLAS sgemm).
// Bf16Math: transformers' bf16 run (tests/reference/README.md, "Numerics modes"): BF16 weights
// and activations, fp32 accumulation on oneDNN, every op's result rounded to BF16. Activations
// stay fp32 arrays holding BF16 values between ops.
//
// Thread safety: all members may be called concurrently; the helpers returning views into
// thread-local scratch say so, and those views are valid until the next such call on the thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

#include "common/dtype.h"
#include "kernels/bf16.h"
#include "kernels/elementwise.h"
#include "kernels/matrix.h"
#include "kernels/softmax.h"
#include "kernels/weight_matrix.h"

namespace moeslice::kernels {

// Every head of a [n, heads * head_dim] activation as a GEMM operand [n, head_dim]: head h starts
// head_offset elements after head h - 1, rows `stride` apart (a strided view of the activation
// itself, or dense per-head copies).
template <typename T>
struct HeadOperands {
  const T* data = nullptr;
  size_t rows = 0;
  size_t head_dim = 0;
  size_t stride = 0;
  size_t head_offset = 0;
  BasicMatrixRef<const T> head(size_t h) const {
    return {data + h * head_offset, rows, head_dim, stride};
  }
};

// An expert's gate and up products for a block of its intermediate columns: [m, count] each, fp32
// accumulations, not yet rounded.
struct GateUpProducts {
  ConstMatrixRef gate;
  ConstMatrixRef up;
};

struct Fp32Math {
  static constexpr const char* kName = "fp32";  // as --compute spells it
  using Operand = float;
  // Activations are rounded to this after every op (F32: never).
  static constexpr DType kActivation = DType::F32;
  static constexpr bool kRoundsResults = false;
  // sgemm writes strided outputs (a head's columns, a block's columns) at full speed.
  static constexpr bool kDenseGemmOutput = false;
  // Routing top-k breaks exact ties lower id first (ties between fp32 probabilities are rare).
  static constexpr bool kTorchTopkTies = false;

  // Throws UnsupportedError when this build or CPU cannot run the policy's GEMMs (never).
  static void require_available() {}

  static float round(float value) { return value; }
  static float to_operand(float value) { return value; }
  static void to_operand(const float* src, float* dst, size_t count) {
    if (src != dst) std::memcpy(dst, src, count * sizeof(float));
  }
  // The fp32 activations themselves: no copy.
  static ConstMatrixRef operand(ConstMatrixRef x, Matrix& /*scratch*/) { return x; }

  static float silu(float x) { return kernels::silu(x); }
  static void softmax(float* row, size_t n) { softmax_row(row, n); }
  // dst += src * weight: fp32 products summed in fp32, like index_add_(expert_out * w).
  static void add_weighted(float* dst, const float* src, float weight, size_t count) {
    for (size_t c = 0; c < count; ++c) dst[c] += src[c] * weight;
  }

  // Rows of a weight one GEMM takes (kernels::weight_block_rows: 4 MB of fp32).
  static size_t weight_block_rows(size_t cols) { return kernels::weight_block_rows(cols); }
  // Gate (and as many up) rows per fused gate/up GEMM: half a weight block, at least 8.
  static size_t gate_up_block_rows(size_t hidden);
  // Rows [begin, begin + count) as fp32 (in place for aligned F32, else into `scratch`).
  static ConstMatrixRef weight_rows(const WeightMatrix& w, size_t begin, size_t count,
                                    std::vector<float>& scratch) {
    return w.rows_f32(begin, count, scratch);
  }

  static void gemm_abt(ConstMatrixRef a, ConstMatrixRef b, MatrixRef c);
  static void gemm_ab(ConstMatrixRef a, ConstMatrixRef b, MatrixRef c);

  // c = x W[begin, begin + count)^T for an expert's tokens: one dot per value when at most
  // kFewTokens tokens share the expert (few_tokens_xWt), else one GEMM.
  static void expert_product(ConstMatrixRef x, const WeightMatrix& w, size_t begin, size_t count,
                             MatrixRef c);
  // Gate and up rows [begin, begin + count) stacked into one GEMM (or dots for a few tokens).
  // The views live in thread-local scratch.
  static GateUpProducts gate_up(ConstMatrixRef x, const WeightMatrix& gate, const WeightMatrix& up,
                                size_t begin, size_t count);

  // scores = q k^T * scale, the scale (head_dim^-0.5 when `scale` is 0) applied by the GEMM.
  static void attention_scores(ConstMatrixRef q, ConstMatrixRef k, MatrixRef scores,
                               size_t head_dim, double scale);
  // Heads as strided views of x itself (`storage` unused).
  static HeadOperands<float> heads(ConstMatrixRef x, size_t heads, size_t head_dim,
                                   std::vector<float>& storage);
};

struct Bf16Math {
  static constexpr const char* kName = "bf16";
  using Operand = uint16_t;  // BF16 bits
  static constexpr DType kActivation = DType::BF16;
  static constexpr bool kRoundsResults = true;
  // oneDNN 2.6's matmul is markedly slower on a strided output: GEMMs write dense tiles.
  static constexpr bool kDenseGemmOutput = true;
  // BF16 router probabilities tie exactly far more often than fp32 ones; routing then replays
  // torch.topk's order among tied experts (forward/routing/torch_tie_order.h).
  static constexpr bool kTorchTopkTies = true;

  // Throws UnsupportedError naming oneDNN when this build or CPU has no fast BF16 GEMM.
  static void require_available();

  static float round(float value) { return round_bf16(value); }
  static uint16_t to_operand(float value) { return to_bf16_bits(value); }
  static void to_operand(const float* src, uint16_t* dst, size_t count) {
    f32_to_bf16(src, dst, count);
  }
  // x converted into `scratch`.
  static ConstBf16Ref operand(ConstMatrixRef x, Bf16Matrix& scratch);

  // SiLU of a BF16 value as PyTorch 1.13's BFloat16 kernel computes it: x / (1 + exp(-x)) with
  // every operation rounded to BF16 (measured against torch: 100% equal; one rounding of the fp32
  // silu differs in ~30% of values).
  static float silu(float x) {
    const float e = round_bf16(exp_vectorizable(-x));
    return round_bf16(x / round_bf16(1.0f + e));
  }
  static void softmax(float* row, size_t n) { softmax_row_lane_sums(row, n); }
  // out.index_add_(0, tok, (y * w.to(bf16)).to(bf16)) on a bf16 buffer: the weight, the weighted
  // output and every partial sum are rounded.
  static void add_weighted(float* dst, const float* src, float weight, size_t count) {
    const float w = round_bf16(weight);
    for (size_t c = 0; c < count; ++c) dst[c] = round_bf16(dst[c] + round_bf16(src[c] * w));
  }

  // Rows of a weight one GEMM takes (kernels::bf16_block_rows: about 1 MB of BF16).
  static size_t weight_block_rows(size_t cols) { return bf16_block_rows(cols); }
  static size_t gate_up_block_rows(size_t hidden) { return bf16_block_rows(hidden); }
  // Rows [begin, begin + count) as BF16 (in place for aligned BF16, else into `scratch`).
  static ConstBf16Ref weight_rows(const WeightMatrix& w, size_t begin, size_t count,
                                  std::vector<uint16_t>& scratch) {
    return w.rows_bf16(begin, count, scratch);
  }

  static void gemm_abt(ConstBf16Ref a, ConstBf16Ref b, MatrixRef c);
  static void gemm_ab(ConstBf16Ref a, ConstBf16Ref b, MatrixRef c);

  // c = x W[begin, begin + count)^T: one GEMM whatever the token count.
  static void expert_product(ConstBf16Ref x, const WeightMatrix& w, size_t begin, size_t count,
                             MatrixRef c);
  // Gate and up as two GEMMs into dense thread-local tiles.
  static GateUpProducts gate_up(ConstBf16Ref x, const WeightMatrix& gate, const WeightMatrix& up,
                                size_t begin, size_t count);

  // transformers' eager bf16 attention: q k^T rounded to BF16, times the scale (head_dim^-0.5
  // when `scale` is 0; itself rounded to BF16, as PyTorch does with a Python float) and rounded
  // again.
  static void attention_scores(ConstBf16Ref q, ConstBf16Ref k, MatrixRef scores, size_t head_dim,
                               double scale);
  // Heads converted to BF16 as [heads][n][head_dim] in `storage`: each head dense, as oneDNN runs
  // fastest.
  static HeadOperands<uint16_t> heads(ConstMatrixRef x, size_t heads, size_t head_dim,
                                      std::vector<uint16_t>& storage);
};

template <class Math>
using ConstOperandRef = BasicMatrixRef<const typename Math::Operand>;
template <class Math>
using OperandMatrix = BasicMatrix<typename Math::Operand>;

// ---- helpers written once over any policy ----

// Where a GEMM whose result belongs in `out` writes it: `out` itself, or a dense tile in `scratch`
// when the policy's GEMM wants a dense output. store_results then puts it in place.
template <class Math>
MatrixRef gemm_output(MatrixRef out, std::vector<float>& scratch) {
  if (!Math::kDenseGemmOutput || out.stride == out.cols) return out;
  if (scratch.size() < out.rows * out.cols) scratch.resize(out.rows * out.cols);
  return {scratch.data(), out.rows, out.cols};
}

// out = round(product + bias) with bias empty or [out.cols]: a GEMM result as the op's output.
// product may be out itself (then nothing is done unless there is a bias or rounding).
template <class Math>
void store_results(ConstMatrixRef product, MatrixRef out, std::span<const float> bias = {}) {
  if (!Math::kRoundsResults && bias.empty() && product.data == out.data) return;
  for (size_t r = 0; r < out.rows; ++r) {
    const float* src = product.row(r);
    float* dst = out.row(r);
    if (bias.empty()) {
      for (size_t j = 0; j < out.cols; ++j) dst[j] = Math::round(src[j]);
    } else {
      for (size_t j = 0; j < out.cols; ++j) dst[j] = Math::round(src[j] + bias[j]);
    }
  }
}

// c = x W[begin, begin + count)^T as one GEMM on the policy's weight operand; not rounded.
template <class Math>
void weight_rows_product(ConstOperandRef<Math> x, const WeightMatrix& w, size_t begin, size_t count,
                         MatrixRef c) {
  thread_local std::vector<typename Math::Operand> scratch;
  Math::gemm_abt(x, Math::weight_rows(w, begin, count, scratch), c);
}

// One value of an expert's intermediate as the down GEMM's operand: silu(gate) * up with the
// policy's SiLU and rounding (bf16: gate, up, the SiLU's every step and the product rounded).
template <class Math>
typename Math::Operand glu(float gate, float up) {
  return Math::to_operand(Math::silu(Math::round(gate)) * Math::round(up));
}

// Rounds activations to the policy's precision in place (embeddings; nothing in fp32).
template <class Math>
void round_activations(MatrixRef x) {
  if constexpr (Math::kRoundsResults)
    for (size_t r = 0; r < x.rows; ++r) {
      float* row = x.row(r);
      for (size_t c = 0; c < x.cols; ++c) row[c] = Math::round(row[c]);
    }
}

// The residual add: dst = round(dst + src).
template <class Math>
void add_into(MatrixRef dst, ConstMatrixRef src) {
  for (size_t r = 0; r < dst.rows; ++r) {
    float* d = dst.row(r);
    const float* s = src.row(r);
    for (size_t c = 0; c < dst.cols; ++c) d[c] = Math::round(d[c] + s[c]);
  }
}

}  // namespace moeslice::kernels
