// The forward pass's view of a model's forward settings.
#include "forward/forward_config.h"

#include <fmt/core.h>

#include "common/error.h"

namespace moeslice {

ForwardConfig resolve_forward_config(const ModelSpec& spec) {
  require_forward_support(spec);
  return spec.forward;
}

std::string_view compute_mode_name(ComputeMode mode) {
  return mode == ComputeMode::kBf16 ? "bf16" : "fp32";
}

kernels::NormWeightOrder norm_weight_order(const FamilyProfile& family) {
  return family.rms_norm_order == RmsNormOrder::kCastThenWeight
             ? kernels::NormWeightOrder::kCastThenScale
             : kernels::NormWeightOrder::kScaleThenCast;
}

void check_sequence_length(const ModelSpec& spec, const ForwardConfig& config, int64_t length) {
  if (config.sliding_window && *config.sliding_window < length)
    throw UnsupportedError(
        fmt::format("{}: '{}' is {} but a sequence has {} tokens; sliding-window attention is not "
                    "implemented (pass --max-seq {} to cut documents into windows that fit)",
                    spec.config_path.string(), "sliding_window", *config.sliding_window, length,
                    *config.sliding_window));
}

}  // namespace moeslice
