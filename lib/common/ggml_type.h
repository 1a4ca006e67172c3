// The tensor types of ggml (the types of GGUF tensors) by their numeric id: every type a GGUF file
// can hold today, the DType that stores it (F32, F16, BF16 and the integer types share the
// safetensors dtypes; the block-quantized types have their own, with block sizes in dtype.h), and
// whether moeslice can convert it to fp32. Ids are ggml's (ggml.h `enum ggml_type`), names
// gguf-py's (`GGMLQuantizationType`), as of the llama.cpp node-llama-cpp 3.21.1 bundles (up to
// Q2_0 = 42). Ids ggml retired (4, 5, 31-33, 36-38) are unknown here, as
// they are to llama.cpp.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "common/dtype.h"

namespace moeslice {

struct GgmlType {
  uint32_t id = 0;
  DType dtype = DType::F32;
};

// Every known ggml type, by increasing id.
std::span<const GgmlType> ggml_types();
// The type of a numeric id; nullopt for an id ggml does not define (or no longer does).
std::optional<GgmlType> ggml_type(uint32_t id);
// The ggml type that stores `dtype`; nullopt for a dtype GGUF cannot hold (BOOL, U8, F8_E4M3...).
std::optional<GgmlType> ggml_type_of(DType dtype);
// "F32", "Q4_K", ...
inline std::string_view ggml_type_name(const GgmlType& type) { return dtype_name(type.dtype); }
// Whether moeslice converts tensors of this type to fp32 (the forward pass computes with them).
inline bool ggml_converts_to_f32(const GgmlType& type) { return is_compute_float(type.dtype); }
// "F32 (0), F16 (1), Q4_0 (2), ...", for messages about an unknown type.
std::string all_ggml_type_names();

// Bytes of a row of `elements` elements (the innermost axis) of `dtype`: whole blocks for a block
// type, whole bytes otherwise. nullopt when `elements` is not a multiple of the block size, or the
// size is not a whole number of bytes or overflows 64 bits.
std::optional<uint64_t> row_byte_size(DType dtype, uint64_t elements);

}  // namespace moeslice
