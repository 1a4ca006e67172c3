// The GGUF architecture names (`general.architecture`) of the MoE families moeslice has a profile
// for, so that a plan made on a Hugging Face checkpoint (which records its moeslice family) is
// checked against the GGUF of the same model.
#pragma once

#include <string_view>

namespace moeslice {

// The moeslice family of a llama.cpp architecture ("qwen3moe" -> "qwen3_moe", "llama" ->
// "mixtral"); "" for an architecture moeslice has no family for (a plan's family is then not
// checked).
std::string_view family_of_gguf_architecture(std::string_view architecture);

}  // namespace moeslice
