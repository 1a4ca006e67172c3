// How a family names the tensors of one expert: every tensor of expert e in layer l starts with
// the profile's `expert_prefix` template ("model.layers.{layer}.mlp.experts.{expert}."), the
// tensors the profile lists and their companions it does not (FP8 `weight_scale_inv`, biases).
// Reading a name back gives the layer, the expert and the rest, so a tensor can be renumbered.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace moeslice {

class ExpertNaming {
 public:
  ExpertNaming() = default;  // fused experts: no tensor is one expert's
  // Throws std::invalid_argument unless `prefix_template` holds {layer} and {expert} once each,
  // each followed by text that does not start with a digit.
  explicit ExpertNaming(std::string prefix_template);

  bool empty() const { return template_.empty(); }
  std::string prefix(int64_t layer, int64_t expert) const;

  struct Parsed {
    int64_t layer = 0;
    int64_t expert = 0;
    std::string_view suffix;  // the name after the prefix
  };
  // The layer and expert whose prefix `name` starts with (numbers as written by prefix(): no
  // leading zeros), or nullopt.
  std::optional<Parsed> parse(std::string_view name) const;

 private:
  std::string template_;
};

}  // namespace moeslice
