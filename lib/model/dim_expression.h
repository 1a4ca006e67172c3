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

}  // namespace moeslice
