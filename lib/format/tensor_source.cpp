// TensorSource: sizes, the checked producer, and the common ways to make one.
#include "format/tensor_source.h"

#include <algorithm>
#include <memory>
#include <stdexcept>

#include <fmt/core.h>

#include "common/error.h"
#include "format/tensor_store.h"

namespace moeslice {
namespace {

constexpr size_t kCopyChunkBytes = 64u << 20;  // produce() chunks of a mapped tensor

}  // namespace

uint64_t TensorSource::byte_size() const {
  const auto size = tensor_byte_size(dtype, shape);
  const auto block = dtype_block(dtype);
  if (!size && block && (shape.empty() || shape.back() % block->elements != 0))
    throw InputError(
        fmt::format("tensor '{}': shape {} of {} does not hold whole blocks of {} "
                    "elements along its last axis",
                    name, format_shape(shape), dtype_name(dtype), block->elements));
  if (!size)
    throw InputError(fmt::format("tensor '{}': shape {} of {} is too large", name,
                                 format_shape(shape), dtype_name(dtype)));
  return *size;
}

void TensorSource::produce_checked(const ByteSink& sink) const {
  const uint64_t expected = byte_size();
  uint64_t written = 0;
  produce([&](std::span<const std::byte> bytes) {
    written += bytes.size();
    if (written <= expected) sink(bytes);
  });
  if (written != expected)
    throw std::logic_error(
        fmt::format("tensor '{}' produced {} bytes, expected {}", name, written, expected));
}

TensorSource TensorSource::copy_of(const TensorView& view, std::string new_name) {
  TensorSource source;
  source.name = new_name.empty() ? view.name : std::move(new_name);
  source.dtype = view.dtype;
  source.shape = view.shape;
  source.produce = [bytes = view.bytes](const ByteSink& sink) {
    for (size_t done = 0; done < bytes.size(); done += kCopyChunkBytes)
      sink(bytes.subspan(done, std::min(kCopyChunkBytes, bytes.size() - done)));
  };
  return source;
}

TensorSource TensorSource::copy_of(const TensorStore& store, const TensorView& view,
                                   std::string new_name) {
  TensorSource source = copy_of(view, std::move(new_name));
  source.file_range = store.file_range(view);
  source.produce = [&store, &view](const ByteSink& sink) {
    const auto bytes = view.bytes;
    for (size_t done = 0; done < bytes.size(); done += kCopyChunkBytes) {
      const size_t length = std::min(kCopyChunkBytes, bytes.size() - done);
      sink(bytes.subspan(done, length));
      store.release_pages(view, done, length);
    }
  };
  return source;
}

TensorSource TensorSource::from_bytes(std::string name, DType dtype, std::vector<int64_t> shape,
                                      std::vector<std::byte> bytes) {
  TensorSource source{std::move(name), dtype, std::move(shape), {}, std::nullopt};
  auto shared = std::make_shared<std::vector<std::byte>>(std::move(bytes));
  source.produce = [shared](const ByteSink& sink) { sink(*shared); };
  return source;
}

TensorSource TensorSource::from_floats(std::string name, DType dtype, std::vector<int64_t> shape,
                                       std::vector<float> values) {
  std::vector<std::byte> bytes(values.size() * dtype_bits(dtype) / 8);
  convert_from_f32(dtype, values.data(), bytes.data(), values.size());
  return from_bytes(std::move(name), dtype, std::move(shape), std::move(bytes));
}

}  // namespace moeslice
