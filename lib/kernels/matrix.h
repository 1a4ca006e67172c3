// Non-owning row-major fp32 matrix views (with a row stride, so a head's columns inside a
// [tokens, heads * head_dim] activation can be addressed without copying) and a small owning
// matrix for scratch and activations. Every kernel in lib/kernels takes these.
#pragma once

#include <cassert>
#include <cstddef>
#include <vector>

namespace moeslice::kernels {

// Read-only view: element (r, c) lives at data[r * stride + c].
struct ConstMatrixRef {
  const float* data = nullptr;
  size_t rows = 0;
  size_t cols = 0;
  size_t stride = 0;

  ConstMatrixRef() = default;
  ConstMatrixRef(const float* d, size_t r, size_t c) : data(d), rows(r), cols(c), stride(c) {}
  ConstMatrixRef(const float* d, size_t r, size_t c, size_t s)
      : data(d), rows(r), cols(c), stride(s) {
    assert(s >= c);
  }

  const float* row(size_t r) const {
    assert(r < rows);
    return data + r * stride;
  }
  float operator()(size_t r, size_t c) const {
    assert(r < rows && c < cols);
    return data[r * stride + c];
  }
  bool empty() const { return rows == 0 || cols == 0; }
  // Columns [col, col + count) of every row: one head's slice of a multi-head activation.
  ConstMatrixRef columns(size_t col, size_t count) const {
    assert(col + count <= cols);
    return {data + col, rows, count, stride};
  }
  ConstMatrixRef row_range(size_t begin, size_t count) const {
    assert(begin + count <= rows);
    return {data + begin * stride, count, cols, stride};
  }
};

// Writable view with the same layout.
struct MatrixRef {
  float* data = nullptr;
  size_t rows = 0;
  size_t cols = 0;
  size_t stride = 0;

  MatrixRef() = default;
  MatrixRef(float* d, size_t r, size_t c) : data(d), rows(r), cols(c), stride(c) {}
  MatrixRef(float* d, size_t r, size_t c, size_t s) : data(d), rows(r), cols(c), stride(s) {
    assert(s >= c);
  }

  operator ConstMatrixRef() const {
    return {data, rows, cols, stride};
  }  // NOLINT: implicit on purpose

  float* row(size_t r) const {
    assert(r < rows);
    return data + r * stride;
  }
  float& operator()(size_t r, size_t c) const {
    assert(r < rows && c < cols);
    return data[r * stride + c];
  }
  bool empty() const { return rows == 0 || cols == 0; }
  MatrixRef columns(size_t col, size_t count) const {
    assert(col + count <= cols);
    return {data + col, rows, count, stride};
  }
  MatrixRef row_range(size_t begin, size_t count) const {
    assert(begin + count <= rows);
    return {data + begin * stride, count, cols, stride};
  }
};

// Owning dense row-major matrix (stride == cols), zero-initialised.
class Matrix {
 public:
  Matrix() = default;
  Matrix(size_t rows, size_t cols) : rows_(rows), cols_(cols), data_(rows * cols, 0.0f) {}

  // Reshapes, keeping the allocation when it is large enough; contents are unspecified.
  void resize(size_t rows, size_t cols) {
    rows_ = rows;
    cols_ = cols;
    if (data_.size() < rows * cols) data_.resize(rows * cols);
  }

  size_t rows() const { return rows_; }
  size_t cols() const { return cols_; }
  float* data() { return data_.data(); }
  const float* data() const { return data_.data(); }
  float* row(size_t r) { return data_.data() + r * cols_; }
  const float* row(size_t r) const { return data_.data() + r * cols_; }
  float& operator()(size_t r, size_t c) { return data_[r * cols_ + c]; }
  float operator()(size_t r, size_t c) const { return data_[r * cols_ + c]; }

  MatrixRef ref() { return {data_.data(), rows_, cols_}; }
  ConstMatrixRef ref() const { return {data_.data(), rows_, cols_}; }
  ConstMatrixRef cref() const { return {data_.data(), rows_, cols_}; }

 private:
  size_t rows_ = 0;
  size_t cols_ = 0;
  std::vector<float> data_;
};

}  // namespace moeslice::kernels
