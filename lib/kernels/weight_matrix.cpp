// WeightMatrix conversion, block sizes and the few-token product.
#include "kernels/weight_matrix.h"

#include <algorithm>
#include <cassert>
#include <cstdint>
#include <string>

#include "kernels/bf16.h"
#include "kernels/elementwise.h"

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace moeslice::kernels {
namespace {

size_t element_bytes(DType dtype) { return dtype_bits(dtype) / 8; }

// fp32 bytes of quantized rows dequantized at a time on their way to BF16.
constexpr size_t kDequantChunkBytes = size_t{64} << 10;

// Weight conversion runs once per block per GEMM, so it has to keep up with the GEMM: the
// scalar convert_to_f32 costs about a fifth of a 256-token expert GEMM. With AVX-512, 16 values
// per instruction; both conversions are exact, so results match the scalar path bit for bit.
void to_f32(DType dtype, const std::byte* src, float* dst, size_t count) {
#if defined(__AVX512F__)
  if (dtype == DType::BF16 || dtype == DType::F16) {
    size_t i = 0;
    // The maskz forms with an all-ones mask are the plain instructions; GCC 12 warns about the
    // unmasked intrinsics' internal _mm512_undefined (a false -Wmaybe-uninitialized).
    const __mmask16 all = 0xffff;
    for (; i + 16 <= count; i += 16) {
      const __m256i half = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + 2 * i));
      const __m512 wide = dtype == DType::BF16
                              ? _mm512_castsi512_ps(_mm512_maskz_slli_epi32(
                                    all, _mm512_maskz_cvtepu16_epi32(all, half), 16))
                              : _mm512_maskz_cvtph_ps(all, half);
      _mm512_storeu_ps(dst + i, wide);
    }
    convert_to_f32(dtype, src + 2 * i, dst + i, count - i);
    return;
  }
#endif
  convert_to_f32(dtype, src, dst, count);
}

}  // namespace

WeightMatrix::WeightMatrix(DType dtype, const std::byte* data, size_t rows, size_t cols)
    : dtype_(dtype), data_(data), rows_(rows), cols_(cols) {
  assert(is_compute_float(dtype));
  assert(data != nullptr || rows * cols == 0);
}

WeightMatrix::WeightMatrix(const QuantizedMatrix& quantized)
    : dtype_(quantized.dtype),
      data_(quantized.data),
      rows_(quantized.rows),
      cols_(quantized.cols),
      quantized_(true),
      quant_(quantized) {}

WeightMatrix WeightMatrix::stored_columns(DType dtype, const std::byte* data, size_t stored_rows,
                                          size_t stored_cols, size_t first, size_t step,
                                          size_t count) {
  assert(count == 0 || first + (count - 1) * step < stored_cols);
  WeightMatrix matrix(dtype, data, count, stored_rows);
  matrix.transposed_ = true;
  matrix.stored_cols_ = stored_cols;
  matrix.row_first_ = first;
  matrix.row_step_ = step;
  return matrix;
}

WeightMatrix WeightMatrix::row_subset(size_t first, size_t step, size_t count) const {
  assert(count == 0 || first + (count - 1) * step < rows_);
  WeightMatrix subset = *this;
  subset.rows_ = count;
  subset.row_first_ = row_first_ + first * row_step_;
  subset.row_step_ = row_step_ * step;
  return subset;
}

void WeightMatrix::gather_rows(size_t begin, size_t count, float* dst) const {
  if (!transposed_) {
    for (size_t r = 0; r < count; ++r) {
      const size_t stored = row_first_ + (begin + r) * row_step_;
      if (quantized_)
        dequantize_rows(quant_, stored, 1, dst + r * cols_);
      else
        to_f32(dtype_, data_ + stored * cols_ * element_bytes(dtype_), dst + r * cols_, cols_);
    }
    return;
  }
  // Stored [cols_, stored_cols_]: each stored row holds one input's weights for every output;
  // the span of it this block reads is converted once, then scattered to the block's rows.
  if (count == 0) return;
  const size_t first = row_first_ + begin * row_step_;
  const size_t span = (count - 1) * row_step_ + 1;
  thread_local std::vector<float> stored_row;
  if (stored_row.size() < span) stored_row.resize(span);
  const size_t bytes = element_bytes(dtype_);
  for (size_t c = 0; c < cols_; ++c) {
    to_f32(dtype_, data_ + (c * stored_cols_ + first) * bytes, stored_row.data(), span);
    for (size_t r = 0; r < count; ++r) dst[r * cols_ + c] = stored_row[r * row_step_];
  }
}

WeightMatrix WeightMatrix::from_f32(const float* data, size_t rows, size_t cols) {
  return {DType::F32, reinterpret_cast<const std::byte*>(data), rows, cols};
}

void WeightMatrix::rows_to_f32(size_t begin, size_t count, float* dst) const {
  assert(begin + count <= rows_);
  if (!plain_rows()) return gather_rows(begin, count, dst);
  begin += row_first_;
  if (quantized_) return dequantize_rows(quant_, begin, count, dst);
  to_f32(dtype_, data_ + begin * cols_ * element_bytes(dtype_), dst, count * cols_);
}

ConstMatrixRef WeightMatrix::rows_f32(size_t begin, size_t count,
                                      std::vector<float>& scratch) const {
  assert(begin + count <= rows_);
  if (quantized_ || !plain_rows()) {
    if (scratch.size() < count * cols_) scratch.resize(count * cols_);
    rows_to_f32(begin, count, scratch.data());
    return {scratch.data(), count, cols_};
  }
  begin += row_first_;
  const std::byte* start = data_ + begin * cols_ * element_bytes(dtype_);
  if (dtype_ == DType::F32 && reinterpret_cast<uintptr_t>(start) % alignof(float) == 0)
    return {reinterpret_cast<const float*>(start), count, cols_};
  if (scratch.size() < count * cols_) scratch.resize(count * cols_);
  to_f32(dtype_, start, scratch.data(), count * cols_);
  return {scratch.data(), count, cols_};
}

ConstBf16Ref WeightMatrix::rows_bf16(size_t begin, size_t count,
                                     std::vector<uint16_t>& scratch) const {
  assert(begin + count <= rows_);
  if (quantized_ || !plain_rows()) {
    if (scratch.size() < count * cols_) scratch.resize(count * cols_);
    // Dequantized (or gathered) to fp32 in chunks of rows small enough to stay in L2 (about 64 KB),
    // each rounded to BF16 before the next is written.
    thread_local std::vector<float> values;
    const size_t chunk = std::min(count, std::max<size_t>(1, kDequantChunkBytes / (cols_ * 4)));
    if (values.size() < chunk * cols_) values.resize(chunk * cols_);
    for (size_t done = 0; done < count; done += chunk) {
      const size_t rows = std::min(chunk, count - done);
      rows_to_f32(begin + done, rows, values.data());
      f32_to_bf16(values.data(), scratch.data() + done * cols_, rows * cols_);
    }
    return {scratch.data(), count, cols_};
  }
  begin += row_first_;
  const std::byte* start = data_ + begin * cols_ * element_bytes(dtype_);
  if (dtype_ == DType::BF16 && reinterpret_cast<uintptr_t>(start) % alignof(uint16_t) == 0)
    return {reinterpret_cast<const uint16_t*>(start), count, cols_};
  if (scratch.size() < count * cols_) scratch.resize(count * cols_);
  storage_to_bf16(dtype_, start, scratch.data(), count * cols_);
  return {scratch.data(), count, cols_};
}

void few_tokens_xWt(ConstMatrixRef x, const WeightMatrix& w, size_t begin, size_t count,
                    MatrixRef out) {
  assert(x.cols == w.cols() && out.rows == x.rows && out.cols == count);
  assert(begin + count <= w.rows());
  thread_local std::vector<float> rows;
  const size_t chunk = w.gathered() ? 64 : 1;
  for (size_t first = 0; first < count; first += chunk) {
    const size_t n = std::min(chunk, count - first);
    const ConstMatrixRef block = w.rows_f32(begin + first, n, rows);
    for (size_t j = 0; j < n; ++j)
      for (size_t t = 0; t < x.rows; ++t)
        out.row(t)[first + j] = dot(x.row(t), block.row(j), x.cols);
  }
}

size_t weight_block_rows(size_t cols) {
  const size_t rows = kWeightBlockBytes / (std::max<size_t>(cols, 1) * sizeof(float));
  return std::max<size_t>(rows, 16);
}

size_t bf16_block_rows(size_t cols) {
  const size_t rows = kBf16WeightBlockBytes / (std::max<size_t>(cols, 1) * sizeof(uint16_t));
  return std::max<size_t>(rows, 64);
}

}  // namespace moeslice::kernels
