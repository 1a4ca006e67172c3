// Dequantization of quantized weight matrices to fp32, a range of rows at a time into the caller's
// buffer (never a whole tensor): ggml's block types as GGUF stores them (scales inside each
// block), gpt-oss's MXFP4 experts (`*_blocks` / `*_scales` tensors) and FP8 E4M3 weights with
// 128x128 block scales (`weight_scale_inv`, DeepSeek-V3's layout). The formulas are gguf-py's
// (gguf/quants.py), operation by operation in fp32 (these files compile with -ffp-contract=off),
// so results equal its numpy dequantization bit for bit; tests/reference/check_dequantize.py
// checks that. One file per type family: legacy_quants.cpp, k_quants.cpp, iq4_quants.cpp,
// mxfp4.cpp, fp8_e4m3.cpp.
//
// Thread safety: pure functions over read-only storage.
#pragma once

#include <cstddef>
#include <cstdint>

#include "common/dtype.h"

namespace moeslice::kernels {

// True for the ggml block types dequantize_blocks reads: Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K,
// Q4_K, Q5_K, Q6_K, IQ4_NL, IQ4_XS and MXFP4 (what Q4_K_M, Q5_K_M, Q6_K, Q8_0, unsloth's dynamic
// quants and gpt-oss GGUFs contain). The other block types are not computed with.
bool can_dequantize_blocks(DType dtype);

// Dequantizes `blocks` consecutive blocks of `dtype` at `src` (any alignment) into
// blocks * dtype_block(dtype)->elements floats at `dst`. A dtype can_dequantize_blocks refuses is
// a programming error (std::logic_error): callers refuse such tensors by name first.
void dequantize_blocks(DType dtype, const std::byte* src, size_t blocks, float* dst);

// How a quantized weight matrix [rows, cols] (a Linear weight [out, in]) is stored.
enum class QuantEncoding : uint8_t {
  // A ggml block type (can_dequantize_blocks): each row is cols / block elements whole blocks.
  kGgmlBlocks,
  // gpt-oss MXFP4: `data` U8 [rows, cols / 32, 16] (two E2M1 codes a byte, the low nibble the
  // even element), `scales` U8 E8M0 exponents [rows, cols / 32] (value = FP4 * 2^(scale - 127)).
  kMxfp4Split,
  // FP8 E4M3 (e4m3fn) [rows, cols] times one scale per scale_block_rows x scale_block_cols
  // block, `scales` [ceil(rows / block rows), ceil(cols / block cols)] of F32 or BF16.
  kFp8BlockScaled,
};

// A view of a quantized matrix in mapped storage; nothing is copied or owned.
struct QuantizedMatrix {
  QuantEncoding encoding = QuantEncoding::kGgmlBlocks;
  DType dtype = DType::Q8_0;  // the block type; U8 for kMxfp4Split, F8_E4M3 for kFp8BlockScaled
  const std::byte* data = nullptr;
  size_t rows = 0;
  size_t cols = 0;
  const std::byte* scales = nullptr;  // kMxfp4Split and kFp8BlockScaled only
  DType scale_dtype = DType::F32;     // kFp8BlockScaled: F32 or BF16
  size_t scale_block_rows = 128;      // kFp8BlockScaled
  size_t scale_block_cols = 128;

  static QuantizedMatrix ggml_blocks(DType dtype, const std::byte* data, size_t rows, size_t cols);
  static QuantizedMatrix mxfp4_split(const std::byte* blocks, const std::byte* scales, size_t rows,
                                     size_t cols);
  static QuantizedMatrix fp8_block_scaled(const std::byte* data, const std::byte* scales,
                                          DType scale_dtype, size_t rows, size_t cols,
                                          size_t block_rows = 128, size_t block_cols = 128);

  // Bytes of one row of `data`.
  size_t row_bytes() const;
};

// Writes rows [begin, begin + count) of `matrix` as fp32 to dst (count * cols floats, dense).
void dequantize_rows(const QuantizedMatrix& matrix, size_t begin, size_t count, float* dst);

}  // namespace moeslice::kernels
