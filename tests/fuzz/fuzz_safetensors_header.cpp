// libFuzzer target: a whole .safetensors file (length field, header JSON, data) through the
// strict reader, then every tensor view (its size, first and last byte) and the metadata.
#include "format/safetensors/file.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace moeslice;
  const auto path = fuzz::scratch_file("model.safetensors", fuzz::as_text(data, size));
  fuzz::expect_input_errors([&] {
    const auto file = SafetensorsFile::open(path);
    static uint64_t sum = 0;
    for (const auto& [name, view] : file->tensors()) {
      sum += static_cast<uint64_t>(view.numel()) + view.shape_string().size();
      if (!view.bytes.empty())
        sum += static_cast<uint8_t>(view.bytes.front()) + static_cast<uint8_t>(view.bytes.back());
    }
    for (const auto& [key, value] : file->metadata()) sum += key.size() + value.size();
    (void)sum;  // kept so the reads are not optimised away
  });
  return 0;
}
