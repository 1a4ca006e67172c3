// The table of named mappings (see mapping_table.h): slots claimed with a compare-and-swap.
#include "common/mapping_table.h"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <string>

namespace moeslice {
namespace {

enum SlotState : int { kFree = 0, kWriting = 1, kReady = 2 };

struct Slot {
  std::atomic<int> state{kFree};
  std::atomic<uintptr_t> begin{0};
  std::atomic<size_t> size{0};
  char path[kMaxNamedPathBytes] = {};
};

static_assert(std::atomic<int>::is_always_lock_free && std::atomic<uintptr_t>::is_always_lock_free,
              "the signal handler reads the table without locks");

Slot slots[kMaxNamedMappings];

}  // namespace

int register_mapping(const void* begin, size_t size, const std::filesystem::path& path) noexcept {
  if (begin == nullptr || size == 0) return -1;
  for (size_t i = 0; i < kMaxNamedMappings; ++i) {
    int expected = kFree;
    if (!slots[i].state.compare_exchange_strong(expected, kWriting)) continue;
    Slot& slot = slots[i];
    const std::string& text = path.native();
    const size_t keep = std::min(text.size(), kMaxNamedPathBytes - 1);
    std::memcpy(slot.path, text.data() + (text.size() - keep), keep);
    slot.path[keep] = '\0';
    slot.begin.store(reinterpret_cast<uintptr_t>(begin), std::memory_order_relaxed);
    slot.size.store(size, std::memory_order_relaxed);
    slot.state.store(kReady, std::memory_order_release);
    return static_cast<int>(i);
  }
  return -1;
}

void unregister_mapping(int slot) noexcept {
  if (slot < 0 || static_cast<size_t>(slot) >= kMaxNamedMappings) return;
  slots[slot].state.store(kWriting, std::memory_order_release);
  slots[slot].size.store(0, std::memory_order_relaxed);
  slots[slot].state.store(kFree, std::memory_order_release);
}

const char* mapped_path_at(const void* address) noexcept {
  const uintptr_t at = reinterpret_cast<uintptr_t>(address);
  for (Slot& slot : slots) {
    if (slot.state.load(std::memory_order_acquire) != kReady) continue;
    const uintptr_t begin = slot.begin.load(std::memory_order_relaxed);
    if (at >= begin && at - begin < slot.size.load(std::memory_order_relaxed)) return slot.path;
  }
  return nullptr;
}

}  // namespace moeslice
