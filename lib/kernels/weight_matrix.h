// Weights as the forward pass reads them: a view over a mapped [out, in] tensor (row-major, the
// layout of a HF Linear weight) in F32, BF16 or F16, or quantized (kernels/dequant: ggml blocks,
// gpt-oss MXFP4, block-scaled FP8), turned into a GEMM operand one block of rows at a time (fp32
// or BF16, read in place when the storage already is one; quantized rows dequantized into the
// block's scratch) so the whole model is never held converted. Also the block sizes and
// few_tokens_xWt, the product for an expert that only a few tokens reach. The Linear layer itself
// is kernels/linear.h.
//
// Thread safety: WeightMatrix is an immutable view; any number of threads may read it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "common/dtype.h"
#include "kernels/dequant/dequantize.h"
#include "kernels/matrix.h"

namespace moeslice::kernels {

class WeightMatrix {
 public:
  WeightMatrix() = default;
  // Raw storage of `rows * cols` elements of `dtype` (any alignment).
  WeightMatrix(DType dtype, const std::byte* data, size_t rows, size_t cols);
  // fp32 storage, e.g. a Matrix built in memory.
  static WeightMatrix from_f32(const float* data, size_t rows, size_t cols);
  static WeightMatrix from_f32(const Matrix& matrix) {
    return from_f32(matrix.data(), matrix.rows(), matrix.cols());
  }
  // Quantized storage, dequantized a block of rows at a time.
  explicit WeightMatrix(const QuantizedMatrix& quantized);
  // The columns first, first + step, ... (`count` of them) of a row-major [stored_rows,
  // stored_cols] tensor of F32, BF16 or F16 stored as x @ W ([in, out], gpt-oss's fused experts)
  // as the rows of an [out, in] weight: rows() == count, cols() == stored_rows. Nothing is
  // copied; a block of rows is gathered when converted.
  static WeightMatrix stored_columns(DType dtype, const std::byte* data, size_t stored_rows,
                                     size_t stored_cols, size_t first, size_t step, size_t count);
  // Rows first, first + step, ... (`count` of them) of this matrix, as a matrix of their own (the
  // gate and up rows interleaved in gpt-oss's fused gate_up_proj). A view, like this one.
  WeightMatrix row_subset(size_t first, size_t step, size_t count) const;

  size_t rows() const { return rows_; }
  size_t cols() const { return cols_; }
  // The storage type: F32, BF16 or F16, or the quantized matrix's dtype.
  DType dtype() const { return dtype_; }
  bool quantized() const { return quantized_; }
  // True for a stored_columns view: its rows are gathered from across the storage, so
  // converting them a block at a time is much cheaper than one row at a time.
  bool gathered() const { return transposed_; }
  bool empty() const { return rows_ == 0; }

  // Writes rows [begin, begin + count) as fp32 to dst (count * cols floats, dense).
  void rows_to_f32(size_t begin, size_t count, float* dst) const;
  // Rows [begin, begin + count) as fp32: a view of the storage itself when it is F32 and
  // float-aligned, else converted into `scratch` (resized as needed).
  ConstMatrixRef rows_f32(size_t begin, size_t count, std::vector<float>& scratch) const;
  // Rows [begin, begin + count) as BF16 (bf16 mode): a view of the mapped storage itself when it
  // is BF16 and 2-byte aligned, else rounded into `scratch` (resized as needed).
  ConstBf16Ref rows_bf16(size_t begin, size_t count, std::vector<uint16_t>& scratch) const;

 private:
  DType dtype_ = DType::F32;
  const std::byte* data_ = nullptr;
  size_t rows_ = 0;
  size_t cols_ = 0;
  bool quantized_ = false;
  QuantizedMatrix quant_;  // when quantized_
  // Row r of this matrix is stored row (or, when transposed_, stored column) row_first_ + r *
  // row_step_; a plain matrix has 0 and 1. Transposed storage is [cols_, stored_cols_].
  size_t row_first_ = 0;
  size_t row_step_ = 1;
  bool transposed_ = false;
  size_t stored_cols_ = 0;

  bool plain_rows() const { return row_step_ == 1 && !transposed_; }
  // rows_to_f32 for a matrix that is not plain_rows().
  void gather_rows(size_t begin, size_t count, float* dst) const;
};

// Rows of converted weights per block: keeps the fp32 scratch of one block at or below
// kWeightBlockBytes (and at least 16 rows). Fixed per weight shape, never per thread count.
inline constexpr size_t kWeightBlockBytes = size_t{4} << 20;
size_t weight_block_rows(size_t cols);

// When at most this many tokens share an expert's weights, few_tokens_xWt computes their product
// instead of a GEMM.
inline constexpr size_t kFewTokens = 8;

// out[t][j] = x[t] . W[begin + j] for every row t of x and j < count, one dot product
// (kernels/elementwise.h) per value: each weight row is converted once into a buffer that stays
// in L1 and dotted with every token (a gathered() view converts 64 rows at a time). For a few
// tokens that is cheaper than a GEMM, whose fp32 block and packing of the weights cost more than
// its arithmetic (measured on slice's check).
void few_tokens_xWt(ConstMatrixRef x, const WeightMatrix& w, size_t begin, size_t count,
                    MatrixRef out);

// bf16 mode (--compute bf16): rows of weights per block of the BF16 GEMMs, about 1 MB of BF16
// per block and at least 64 rows; fixed per weight shape, never per thread count. (oneDNN keeps its
// speed down to 64-column blocks when each block's output is dense.)
inline constexpr size_t kBf16WeightBlockBytes = size_t{1024} << 10;
size_t bf16_block_rows(size_t cols);

}  // namespace moeslice::kernels
