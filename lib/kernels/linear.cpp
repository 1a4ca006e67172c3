// The blocked Linear layer over a precision policy.
#include "kernels/linear.h"

#include <algorithm>
#include <cassert>
#include <vector>

#include "kernels/thread_pool.h"

namespace moeslice::kernels {

template <class Math>
void matmul_xWt(ConstMatrixRef x, const WeightMatrix& w, MatrixRef y, std::span<const float> bias,
                ThreadPool* pool) {
  // Reused per calling thread: a fresh multi-megabyte buffer per call costs page faults.
  thread_local OperandMatrix<Math> scratch;
  matmul_operand_xWt<Math>(Math::operand(x, scratch), w, y, bias, pool);
}

template <class Math>
void matmul_operand_xWt(ConstOperandRef<Math> x, const WeightMatrix& w, MatrixRef y,
                        std::span<const float> bias, ThreadPool* pool) {
  assert(x.cols == w.cols() && y.rows == x.rows && y.cols == w.rows());
  assert(bias.empty() || bias.size() == w.rows());
  const size_t block = Math::weight_block_rows(w.cols());
  const size_t blocks = (w.rows() + block - 1) / block;
  parallel_for(pool, blocks, [&](size_t b, size_t) {
    thread_local std::vector<float> product;
    const size_t begin = b * block;
    const size_t count = std::min(block, w.rows() - begin);
    const MatrixRef out = y.columns(begin, count);
    const MatrixRef tile = gemm_output<Math>(out, product);
    weight_rows_product<Math>(x, w, begin, count, tile);
    store_results<Math>(tile, out, bias.empty() ? bias : bias.subspan(begin, count));
  });
}

template void matmul_xWt<Fp32Math>(ConstMatrixRef, const WeightMatrix&, MatrixRef,
                                   std::span<const float>, ThreadPool*);
template void matmul_xWt<Bf16Math>(ConstMatrixRef, const WeightMatrix&, MatrixRef,
                                   std::span<const float>, ThreadPool*);
template void matmul_operand_xWt<Fp32Math>(ConstMatrixRef, const WeightMatrix&, MatrixRef,
                                           std::span<const float>, ThreadPool*);
template void matmul_operand_xWt<Bf16Math>(ConstBf16Ref, const WeightMatrix&, MatrixRef,
                                           std::span<const float>, ThreadPool*);

}  // namespace moeslice::kernels
