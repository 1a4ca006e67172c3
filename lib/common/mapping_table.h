// A fixed-size table of this process's file mappings (address range and path) that a signal
// handler may read: a SIGBUS raised by reading a mapped file that shrank underneath us (another
// process truncated a shard) is turned into a message naming the file (staging.h installs the
// handler). Registration takes no lock and allocates nothing; lookups are async-signal-safe.
//
// Thread safety: every function may be called from any thread; mapped_path_at() also from a
// signal handler.
#pragma once

#include <cstddef>
#include <filesystem>

namespace moeslice {

// Mappings named at once; further ones are still mapped, only not named on SIGBUS.
inline constexpr size_t kMaxNamedMappings = 1024;
// Longer paths are kept by their last bytes (the file name matters most).
inline constexpr size_t kMaxNamedPathBytes = 512;

// Records [begin, begin + size) as a mapping of `path`; returns the slot to unregister, or -1
// when the table is full.
int register_mapping(const void* begin, size_t size, const std::filesystem::path& path) noexcept;
void unregister_mapping(int slot) noexcept;

// The path of the registered mapping that holds `address`, or nullptr. Async-signal-safe.
const char* mapped_path_at(const void* address) noexcept;

}  // namespace moeslice
