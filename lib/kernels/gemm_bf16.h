// BF16 GEMM for `--compute bf16`: BF16 operands, fp32 accumulation, fp32 output, on oneDNN's
// matmul primitive (brgemm with AVX-512 BF16 where the CPU has it) when the build found oneDNN
// (MOESLICE_HAVE_ONEDNN). A Linear weight [out, in] stored as BF16 in the mapped checkpoint is
// used in place: oneDNN reads it as the transposed [in, out] operand through strides, no copy.
//
// Threading: every call runs single-threaded on the calling thread (oneDNN's OpenMP team is cut
// to one thread per calling thread); parallelism comes from ThreadPool splitting work into
// independent GEMMs of fixed shapes, as for the fp32 GEMM (gemm.h). Results therefore do not
// depend on the thread count.
//
// Primitives are created once per shape (m, n, k, strides) and cached for the process (the 1024
// most recently used); oneDNN picks a kernel per exact shape, which measured faster than one
// runtime-M primitive (its runtime-dimension matmul is the slower gemm:jit, not brgemm).
//
// Also the BF16 storage helpers the bf16 forward pass uses: round-to-nearest-even conversion
// (as PyTorch), an owning BF16 matrix for scratch operands.
//
// Thread safety: all functions may be called concurrently from any threads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "common/dtype.h"
#include "kernels/matrix.h"

namespace moeslice::kernels {

// Read-only row-major view of BF16 values (raw bits): element (r, c) at data[r * stride + c].
struct ConstBf16Ref {
  const uint16_t* data = nullptr;
  size_t rows = 0;
  size_t cols = 0;
  size_t stride = 0;

  ConstBf16Ref() = default;
  ConstBf16Ref(const uint16_t* d, size_t r, size_t c) : data(d), rows(r), cols(c), stride(c) {}
  ConstBf16Ref(const uint16_t* d, size_t r, size_t c, size_t s)
      : data(d), rows(r), cols(c), stride(s) {}
  const uint16_t* row(size_t r) const { return data + r * stride; }
};

// Owning dense BF16 matrix for scratch; resize keeps the allocation.
class Bf16Matrix {
 public:
  void resize(size_t rows, size_t cols) {
    rows_ = rows;
    cols_ = cols;
    if (data_.size() < rows * cols) data_.resize(rows * cols);
  }
  size_t rows() const { return rows_; }
  size_t cols() const { return cols_; }
  uint16_t* data() { return data_.data(); }
  uint16_t* row(size_t r) { return data_.data() + r * cols_; }
  ConstBf16Ref cref() const { return {data_.data(), rows_, cols_}; }

 private:
  size_t rows_ = 0;
  size_t cols_ = 0;
  std::vector<uint16_t> data_;
};

// True when the build has a BF16 GEMM (oneDNN).
bool bf16_gemm_available();
// "oneDNN 2.6.3" or "none".
std::string bf16_gemm_backend();
// Throws UnsupportedError naming the missing library when bf16_gemm_available() is false, or
// when oneDNN has only its (very slow) reference bf16 kernels on this CPU.
void require_bf16_gemm();

// C [m, n] = A [m, k] * B^T with B [n, k] (a Linear weight [out, in], read in place). A dense C
// (stride == n) is markedly faster in oneDNN 2.6 than a strided one.
void gemm_bf16_abt(ConstBf16Ref a, ConstBf16Ref b, MatrixRef c);
// C [m, n] = A [m, k] * B with B [k, n].
void gemm_bf16_ab(ConstBf16Ref a, ConstBf16Ref b, MatrixRef c);

// fp32 -> BF16 bits, round to nearest even, NaN kept (PyTorch's conversion); vectorisable.
inline uint16_t to_bf16_bits(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  const bool nan = (bits & 0x7fffffffu) > 0x7f800000u;
  const uint32_t rounded = (bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16;
  return static_cast<uint16_t>(nan ? (bits >> 16) | 0x40u : rounded);
}
inline float bf16_bits_to_f32(uint16_t bits) {
  const uint32_t widened = static_cast<uint32_t>(bits) << 16;
  float value;
  std::memcpy(&value, &widened, sizeof value);
  return value;
}
// The nearest BF16 value, as fp32.
inline float round_bf16(float value) { return bf16_bits_to_f32(to_bf16_bits(value)); }

void f32_to_bf16(const float* src, uint16_t* dst, size_t count);
void bf16_to_f32(const uint16_t* src, float* dst, size_t count);
// Rows of an fp32 matrix into dense BF16 rows (dst: rows * cols).
void f32_to_bf16(ConstMatrixRef src, uint16_t* dst);
// Any compute-float storage (F32, F16, BF16) to BF16 bits: F32 rounds, F16 rounds, BF16 copies.
void storage_to_bf16(DType dtype, const std::byte* src, uint16_t* dst, size_t count);
// Rounds every element of `values` to BF16 in place.
void round_bf16(MatrixRef values);

}  // namespace moeslice::kernels
