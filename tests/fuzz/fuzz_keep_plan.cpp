// libFuzzer target: a plan file (experts kept per layer) checked against the example EMO model's
// spec (shared experts, dense layers none), then written back and read again.
#include "common/json_parse.h"
#include "format/json_file.h"
#include "fuzz_support.h"
#include "model/keep_plan.h"

namespace {

const moeslice::ModelSpec& example_spec() {
  static const moeslice::ModelSpec spec = [] {
    const auto path = moeslice::fuzz::source_file("examples/models/emo-style/config.json");
    return moeslice::resolve_model_spec(moeslice::read_json_file(path), path);
  }();
  return spec;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace moeslice;
  fuzz::expect_input_errors([&] {
    const auto document = parse_json(fuzz::as_text(data, size), "plan.json");
    const KeepPlan plan = parse_keep_plan(document, example_spec(), "plan.json");
    const std::string written = keep_plan_json(plan);
    // What the library writes it must read back: a failure here is not an input error.
    try {
      (void)parse_keep_plan(parse_json(written, "written plan"), example_spec(), "written plan");
    } catch (const InputError& error) {
      throw std::logic_error(std::string("a plan written by keep_plan_json is refused: ") +
                             error.what());
    }
  });
  return 0;
}
