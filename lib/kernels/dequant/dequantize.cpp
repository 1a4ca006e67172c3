// The dispatch from a type or a QuantizedMatrix to the block dequantizers, and row ranges.
#include "kernels/dequant/dequantize.h"

#include <algorithm>
#include <stdexcept>
#include <string>

#include "kernels/dequant/block_dequantizers.h"

namespace moeslice::kernels {
namespace {

using BlockDequantizer = dequant::BlockDequantizerFn*;

BlockDequantizer block_dequantizer(DType dtype) {
  switch (dtype) {
    case DType::Q4_0:
      return dequant::q4_0;
    case DType::Q4_1:
      return dequant::q4_1;
    case DType::Q5_0:
      return dequant::q5_0;
    case DType::Q5_1:
      return dequant::q5_1;
    case DType::Q8_0:
      return dequant::q8_0;
    case DType::Q2_K:
      return dequant::q2_k;
    case DType::Q3_K:
      return dequant::q3_k;
    case DType::Q4_K:
      return dequant::q4_k;
    case DType::Q5_K:
      return dequant::q5_k;
    case DType::Q6_K:
      return dequant::q6_k;
    case DType::IQ4_NL:
      return dequant::iq4_nl;
    case DType::IQ4_XS:
      return dequant::iq4_xs;
    case DType::MXFP4:
      return dequant::mxfp4;
    default:
      return nullptr;
  }
}

[[noreturn]] void throw_logic(const std::string& what) {
  throw std::logic_error("dequantize: " + what);
}

float scale_at(const QuantizedMatrix& m, size_t index) {
  float scale;
  convert_to_f32(m.scale_dtype, m.scales + index * (dtype_bits(m.scale_dtype) / 8), &scale, 1);
  return scale;
}

void fp8_rows(const QuantizedMatrix& m, size_t begin, size_t count, float* dst) {
  const size_t scale_cols = (m.cols + m.scale_block_cols - 1) / m.scale_block_cols;
  for (size_t r = begin; r < begin + count; ++r, dst += m.cols) {
    const std::byte* row = m.data + r * m.cols;
    const size_t scale_row = r / m.scale_block_rows;
    for (size_t c = 0; c < m.cols; c += m.scale_block_cols) {
      const size_t width = std::min(m.scale_block_cols, m.cols - c);
      const float scale = scale_at(m, scale_row * scale_cols + c / m.scale_block_cols);
      dequant::fp8_e4m3_scaled(row + c, width, scale, dst + c);
    }
  }
}

}  // namespace

bool can_dequantize_blocks(DType dtype) { return block_dequantizer(dtype) != nullptr; }

void dequantize_blocks(DType dtype, const std::byte* src, size_t blocks, float* dst) {
  const BlockDequantizer dequantize = block_dequantizer(dtype);
  if (dequantize == nullptr)
    throw_logic(std::string(dtype_name(dtype)) + " is not a type moeslice dequantizes");
  dequantize(src, blocks, dst);
}

QuantizedMatrix QuantizedMatrix::ggml_blocks(DType dtype, const std::byte* data, size_t rows,
                                             size_t cols) {
  const auto block = dtype_block(dtype);
  if (!can_dequantize_blocks(dtype) || !block || cols % block->elements != 0)
    throw_logic(std::string(dtype_name(dtype)) + " rows of " + std::to_string(cols) +
                " elements are not whole blocks of a type moeslice dequantizes");
  return {QuantEncoding::kGgmlBlocks, dtype, data, rows, cols};
}

QuantizedMatrix QuantizedMatrix::mxfp4_split(const std::byte* blocks, const std::byte* scales,
                                             size_t rows, size_t cols) {
  if (cols % 32 != 0) throw_logic("MXFP4 rows of " + std::to_string(cols) + " elements");
  QuantizedMatrix m{QuantEncoding::kMxfp4Split, DType::U8, blocks, rows, cols};
  m.scales = scales;
  return m;
}

QuantizedMatrix QuantizedMatrix::fp8_block_scaled(const std::byte* data, const std::byte* scales,
                                                  DType scale_dtype, size_t rows, size_t cols,
                                                  size_t block_rows, size_t block_cols) {
  if (scale_dtype != DType::F32 && scale_dtype != DType::BF16)
    throw_logic("FP8 scales of " + std::string(dtype_name(scale_dtype)));
  if (block_rows == 0 || block_cols == 0) throw_logic("FP8 scale blocks of zero size");
  QuantizedMatrix m{QuantEncoding::kFp8BlockScaled, DType::F8_E4M3, data, rows, cols};
  m.scales = scales;
  m.scale_dtype = scale_dtype;
  m.scale_block_rows = block_rows;
  m.scale_block_cols = block_cols;
  return m;
}

size_t QuantizedMatrix::row_bytes() const {
  switch (encoding) {
    case QuantEncoding::kGgmlBlocks:
      return cols / dtype_block(dtype)->elements * dtype_block(dtype)->bytes;
    case QuantEncoding::kMxfp4Split:
      return cols / 2;
    case QuantEncoding::kFp8BlockScaled:
      return cols;
  }
  return 0;
}

void dequantize_rows(const QuantizedMatrix& m, size_t begin, size_t count, float* dst) {
  if (begin > m.rows || count > m.rows - begin)
    throw_logic("rows [" + std::to_string(begin) + ", +" + std::to_string(count) + ") of " +
                std::to_string(m.rows));
  const std::byte* start = m.data + begin * m.row_bytes();
  switch (m.encoding) {
    case QuantEncoding::kGgmlBlocks:
      // Rows of whole blocks are contiguous: one call for the range.
      dequantize_blocks(m.dtype, start, count * m.cols / dtype_block(m.dtype)->elements, dst);
      return;
    case QuantEncoding::kMxfp4Split:
      dequant::mxfp4_split(start, m.scales + begin * (m.cols / 32), count * m.cols / 32, dst);
      return;
    case QuantEncoding::kFp8BlockScaled:
      fp8_rows(m, begin, count, dst);
      return;
  }
}

}  // namespace moeslice::kernels
