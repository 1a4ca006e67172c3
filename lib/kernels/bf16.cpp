// Bulk BF16 conversions.
#include "kernels/bf16.h"

#include <algorithm>

namespace moeslice::kernels {

void f32_to_bf16(const float* src, uint16_t* dst, size_t count) {
  for (size_t i = 0; i < count; ++i) dst[i] = to_bf16_bits(src[i]);
}

void f32_to_bf16(ConstMatrixRef src, uint16_t* dst) {
  for (size_t r = 0; r < src.rows; ++r) f32_to_bf16(src.row(r), dst + r * src.cols, src.cols);
}

void storage_to_bf16(DType dtype, const std::byte* src, uint16_t* dst, size_t count) {
  if (dtype == DType::BF16) {
    std::memcpy(dst, src, count * sizeof(uint16_t));
    return;
  }
  // Through fp32 (exact for F16), in chunks that stay in L1.
  float buffer[1024];
  for (size_t done = 0; done < count;) {
    const size_t chunk = std::min<size_t>(1024, count - done);
    const size_t bytes = dtype_bits(dtype) / 8;
    convert_to_f32(dtype, src + done * bytes, buffer, chunk);
    f32_to_bf16(buffer, dst + done, chunk);
    done += chunk;
  }
}

}  // namespace moeslice::kernels
