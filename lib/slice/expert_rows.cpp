// Row-wise TensorSources along the expert axis: kept rows (slice) and merged rows (unslice).
#include "slice/expert_rows.h"

namespace moeslice {

TensorSource kept_rows(const TensorStore& store, const TensorView& view,
                       std::vector<int32_t> kept) {
  TensorSource source;
  source.name = view.name;
  source.dtype = view.dtype;
  source.shape = view.shape;
  source.shape[0] = static_cast<int64_t>(kept.size());
  const auto bytes = view.bytes;
  const size_t row_bytes = bytes.size() / static_cast<size_t>(view.shape[0]);
  source.produce = [&view, bytes, row_bytes, kept = std::move(kept), &store](const ByteSink& sink) {
    for (int32_t id : kept) sink(bytes.subspan(static_cast<size_t>(id) * row_bytes, row_bytes));
    store.release_pages(view);
  };
  return source;
}

TensorSource merged_rows(const TensorView& full, const TensorView& sliced,
                         const std::vector<int32_t>& kept) {
  TensorSource source;
  source.name = full.name;
  source.dtype = full.dtype;
  source.shape = full.shape;
  const size_t row_bytes = full.bytes.size() / static_cast<size_t>(full.shape[0]);
  std::vector<int64_t> from_sliced(static_cast<size_t>(full.shape[0]), -1);
  for (size_t i = 0; i < kept.size(); ++i)
    from_sliced[static_cast<size_t>(kept[i])] = static_cast<int64_t>(i);
  const auto full_bytes = full.bytes;
  const auto sliced_bytes = sliced.bytes;
  source.produce = [=](const ByteSink& sink) {
    for (size_t row = 0; row < from_sliced.size(); ++row)
      sink(
          from_sliced[row] < 0
              ? full_bytes.subspan(row * row_bytes, row_bytes)
              : sliced_bytes.subspan(static_cast<size_t>(from_sliced[row]) * row_bytes, row_bytes));
  };
  return source;
}

}  // namespace moeslice
