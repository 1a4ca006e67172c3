// libFuzzer target: config.json -> ModelSpec through the family profiles (family lookup, dims,
// flags, refusal rules, routing, tensor list), then the forward pass's settings.
#include "common/json_parse.h"
#include "forward/forward_config.h"
#include "fuzz_support.h"
#include "model/model_spec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace moeslice;
  fuzz::expect_input_errors([&] {
    const auto config = parse_json(fuzz::as_text(data, size), "config.json");
    const ModelSpec spec = resolve_model_spec(config, "config.json");
    (void)spec.expert_layers();
    (void)resolve_forward_config(spec);
  });
  return 0;
}
