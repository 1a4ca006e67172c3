// The family profiles (profiles/*.json) compiled into the binary; see cmake/embed_profiles.cmake.
#pragma once

#include <string_view>
#include <vector>

namespace moeslice {

struct EmbeddedProfile {
  std::string_view family;  // file name without .json, e.g. "olmoe"
  std::string_view json;    // the file's text
};

const std::vector<EmbeddedProfile>& embedded_profiles();

}  // namespace moeslice
