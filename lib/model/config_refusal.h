// Config values a family's CPU forward pass refuses, as profiles write them in
// `forward_refusals`, one rule per object:
//   {"key": "dense_mlp_bias", "refuse": "truthy", "why": "is set"}
// `key` is the config key the message names ("a.b" is key b of the object under key a), `refuse`
// the condition (below) and `why` the rest of the message, in which "{value}" stands for the
// config value and any other "{...}" for a size expression ("{hidden / heads}"). A refused model
// fails with "<config>: '<key>' <why> (the <family> forward pass does not implement it)".
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/model_vocabulary.h"

namespace moeslice {

struct ModelSpec;

enum class RefuseCondition {
  kSet,             // "set": the key is present and not null
  kTruthy,          // "truthy": present and true as Python's `if value:` reads it
  kNotObject,       // "not_object": present, not null and not a JSON object
  kNotOneOf,        // "not_one_of": not one of `values`; an absent key reads as `default` if
                    // given (then null is a value like any other), else passes, as null does
  kNotEachEqualTo,  // "not_each_equal_to": present and not a list of integers all equal to `dim`
  kFlagWithDim,     // "flag_with_dim": flag `flag` is true while size `dim` is positive
  kDimsDiffer,      // "dims_differ": the two size expressions of `dims` differ
};

struct ConfigRefusal {
  std::string key;
  RefuseCondition condition = RefuseCondition::kSet;
  std::vector<nlohmann::json> values;      // kNotOneOf
  std::optional<nlohmann::json> fallback;  // kNotOneOf: `default`
  std::optional<Dim> dim;                  // kNotEachEqualTo, kFlagWithDim
  std::optional<Flag> flag;                // kFlagWithDim
  std::vector<std::string> dims;           // kDimsDiffer: two size expressions
  std::string why;
};

// Parses a `forward_refusals` list. `is_dim` says whether a name in a size expression is a size
// the family declares, `declares` the same for a flag. Throws std::invalid_argument naming what
// is wrong (an unknown condition, key, size or flag).
std::vector<ConfigRefusal> parse_config_refusals(
    const nlohmann::json& list, const std::function<bool(std::string_view)>& is_dim,
    const std::function<bool(Flag)>& declares);

// "'<key>' <why>" for the first rule that refuses `spec`'s config, or nullopt.
std::optional<std::string> first_config_refusal(const std::vector<ConfigRefusal>& rules,
                                                const ModelSpec& spec);

}  // namespace moeslice
