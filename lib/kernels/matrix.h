// Row-major matrix views and a small owning matrix, one family over any element type: fp32
// activations (`MatrixRef`, `ConstMatrixRef`, `Matrix`) and GEMM operands in BF16 bits
// (`Bf16Ref`, `ConstBf16Ref`, `Bf16Matrix`) share the same layout and methods. Views carry a row
// stride, so a head's columns inside a [tokens, heads * head_dim] activation are addressed without
// copying. Every kernel in lib/kernels takes these.
#pragma once

#include <cassert>
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <vector>

namespace moeslice::kernels {

// Non-owning view: element (r, c) lives at data[r * stride + c]. T is const for read-only views;
// a writable view converts to the read-only one implicitly.
template <typename T>
struct BasicMatrixRef {
  T* data = nullptr;
  size_t rows = 0;
  size_t cols = 0;
  size_t stride = 0;

  BasicMatrixRef() = default;
  BasicMatrixRef(T* d, size_t r, size_t c) : data(d), rows(r), cols(c), stride(c) {}
  BasicMatrixRef(T* d, size_t r, size_t c, size_t s) : data(d), rows(r), cols(c), stride(s) {
    assert(s >= c);
  }
  template <typename U>
  requires std::is_same_v<T, const U> BasicMatrixRef(
      BasicMatrixRef<U> writable)  // NOLINT: implicit on purpose
      : data(writable.data), rows(writable.rows), cols(writable.cols), stride(writable.stride) {}

  T* row(size_t r) const {
    assert(r < rows);
    return data + r * stride;
  }
  T& operator()(size_t r, size_t c) const {
    assert(r < rows && c < cols);
    return data[r * stride + c];
  }
  bool empty() const { return rows == 0 || cols == 0; }
  // Columns [col, col + count) of every row: one head's slice of a multi-head activation.
  BasicMatrixRef columns(size_t col, size_t count) const {
    assert(col + count <= cols);
    return {data + col, rows, count, stride};
  }
  BasicMatrixRef row_range(size_t begin, size_t count) const {
    assert(begin + count <= rows);
    return {data + begin * stride, count, cols, stride};
  }
};

// Owning dense row-major matrix (stride == cols), zero-initialised.
template <typename T>
class BasicMatrix {
 public:
  BasicMatrix() = default;
  BasicMatrix(size_t rows, size_t cols) : rows_(rows), cols_(cols), data_(rows * cols, T{}) {}

  // Reshapes, keeping the allocation when it is large enough; contents are unspecified.
  void resize(size_t rows, size_t cols) {
    rows_ = rows;
    cols_ = cols;
    if (data_.size() < rows * cols) data_.resize(rows * cols);
  }

  size_t rows() const { return rows_; }
  size_t cols() const { return cols_; }
  T* data() { return data_.data(); }
  const T* data() const { return data_.data(); }
  T* row(size_t r) { return data_.data() + r * cols_; }
  const T* row(size_t r) const { return data_.data() + r * cols_; }
  T& operator()(size_t r, size_t c) { return data_[r * cols_ + c]; }
  T operator()(size_t r, size_t c) const { return data_[r * cols_ + c]; }

  BasicMatrixRef<T> ref() { return {data_.data(), rows_, cols_}; }
  BasicMatrixRef<const T> ref() const { return {data_.data(), rows_, cols_}; }
  BasicMatrixRef<const T> cref() const { return {data_.data(), rows_, cols_}; }

 private:
  size_t rows_ = 0;
  size_t cols_ = 0;
  std::vector<T> data_;
};

using MatrixRef = BasicMatrixRef<float>;
using ConstMatrixRef = BasicMatrixRef<const float>;
using Matrix = BasicMatrix<float>;

// BF16 values as raw bits (the upper half of the fp32 pattern), as oneDNN and checkpoints store
// them; kernels/bf16.h converts.
using Bf16Ref = BasicMatrixRef<uint16_t>;
using ConstBf16Ref = BasicMatrixRef<const uint16_t>;
using Bf16Matrix = BasicMatrix<uint16_t>;

}  // namespace moeslice::kernels
