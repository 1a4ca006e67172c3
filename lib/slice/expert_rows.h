// Tensors written row by row along the expert axis (axis 0: one row per expert), as TensorSources
// the writer streams through produce(): a slice keeps some rows of a router or fused expert
// tensor; an unslice puts a slice's rows back among the full tensor's.
#pragma once

#include <cstdint>
#include <vector>

#include "format/tensor_source.h"
#include "format/tensor_store.h"

namespace moeslice {

// The rows `kept` (ascending) of `view`, a tensor of `store`, under the same name; produce()
// releases the source's pages once copied.
TensorSource kept_rows(const TensorStore& store, const TensorView& view, std::vector<int32_t> kept);

// `full`'s rows, with row kept[i] taken from row i of `sliced` (same dtype and row shape).
TensorSource merged_rows(const TensorView& full, const TensorView& sliced,
                         const std::vector<int32_t>& kept);

}  // namespace moeslice
