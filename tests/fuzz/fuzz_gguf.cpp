// libFuzzer target: a whole .gguf file through the strict reader and the store (split keys of a
// single file included), then every metadata value as JSON, every tensor view (its size, first
// and last byte) and the inspect summary.
#include "common/json_parse.h"
#include "format/gguf/model.h"
#include "format/gguf/summary.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace moeslice;
  const auto path = fuzz::scratch_file("model.gguf", fuzz::as_text(data, size));
  fuzz::expect_input_errors([&] {
    const auto model = GgufModel::open(path);
    static uint64_t sum = 0;
    for (const auto& [key, value] : model->metadata().entries())
      sum += key.size() + dump_json(value.to_json()).size() + value.describe().size();
    for (const auto& [name, view] : model->tensors()) {
      sum += static_cast<uint64_t>(view->numel()) + view->shape_string().size();
      if (!view->bytes.empty())
        sum += static_cast<uint8_t>(view->bytes.front()) + static_cast<uint8_t>(view->bytes.back());
    }
    sum += gguf_summary_to_text(summarize_gguf(*model)).size();
    (void)sum;  // kept so the reads are not optimised away
  });
  return 0;
}
