// The lookups every TensorStore shares.
#include "format/tensor_store.h"

#include <fmt/core.h>

#include "common/error.h"

namespace moeslice {

const TensorView* TensorStore::find(const std::string& name) const {
  const auto& all = tensors();
  const auto it = all.find(name);
  return it == all.end() ? nullptr : it->second;
}

const TensorView& TensorStore::tensor(const std::string& name) const {
  const TensorView* view = find(name);
  if (view == nullptr)
    throw ModelError(fmt::format("tensor '{}' is missing from {}", name, path().string()));
  return *view;
}

uint64_t TensorStore::total_tensor_bytes() const {
  uint64_t total = 0;
  for (const auto& [name, view] : tensors()) total += view->bytes.size();
  return total;
}

}  // namespace moeslice
