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

FileRange mapped_file_range(const MappedFile& file, const TensorView& tensor) {
  return FileRange{file.path(), static_cast<uint64_t>(tensor.bytes.data() - file.bytes().data()),
                   tensor.bytes.size()};
}

void release_mapped_pages(const MappedFile& file, const TensorView& tensor, uint64_t offset,
                          uint64_t length) {
  file.dont_need(static_cast<size_t>(tensor.bytes.data() - file.bytes().data() + offset),
                 static_cast<size_t>(length));
}

}  // namespace moeslice
