// The table of GGUF architectures and moeslice families.
#include "model/gguf_architecture.h"

#include <array>
#include <utility>

namespace moeslice {

std::string_view family_of_gguf_architecture(std::string_view architecture) {
  // llama.cpp converts Mixtral to "llama" with experts, DeepSeek V2/V3 to "deepseek2".
  static constexpr std::array<std::pair<std::string_view, std::string_view>, 7> kTable{{
      {"deepseek2", "deepseek_v3"},
      {"glm4moe", "glm4_moe"},
      {"gpt-oss", "gpt_oss"},
      {"llama", "mixtral"},
      {"olmoe", "olmoe"},
      {"qwen2moe", "qwen2_moe"},
      {"qwen3moe", "qwen3_moe"},
  }};
  for (const auto& [gguf, family] : kTable)
    if (gguf == architecture) return family;
  return {};
}

}  // namespace moeslice
