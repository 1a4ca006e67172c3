// Integer expressions over named model sizes, as written in profiles: "heads * head_dim",
// "hidden / 32", "kv_lora_rank + qk_rope_head_dim". Supports + - * / (integer division),
// parentheses, integer literals and identifiers.
#pragma once

#include <cstdint>
#include <functional>
#include <string_view>

namespace moeslice {

// Evaluates `expression`, asking `lookup` for each identifier. Throws std::invalid_argument on a
// malformed expression or division by zero; exceptions from `lookup` pass through.
int64_t evaluate_dim_expression(std::string_view expression,
                                const std::function<int64_t(std::string_view)>& lookup);

// Checks `expression`'s syntax and that `is_known` accepts each identifier, without values (a
// division by zero is not an error here). Throws std::invalid_argument naming what is wrong.
void check_dim_expression(std::string_view expression,
                          const std::function<bool(std::string_view)>& is_known);

}  // namespace moeslice
