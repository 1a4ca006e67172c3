// FNV-1a, 64 bits, for fingerprints that tell two models apart (not a cryptographic hash).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include <fmt/core.h>

namespace moeslice {

class Fnv1a64 {
 public:
  void add(std::span<const std::byte> bytes) {
    for (const std::byte b : bytes) hash_ = (hash_ ^ static_cast<uint64_t>(b)) * 1099511628211ull;
  }
  void add(std::string_view text) { add(std::as_bytes(std::span(text.data(), text.size()))); }
  // "fnv1a64:" and 16 hex digits.
  std::string hex() const { return fmt::format("fnv1a64:{:016x}", hash_); }

 private:
  uint64_t hash_ = 14695981039346656037ull;
};

}  // namespace moeslice
