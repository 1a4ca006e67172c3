// Helpers the kernel benchmarks share: best-of-N wall time, random fp32 fills, and whether the
// bf16 policy runs here.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <random>

#include "common/error.h"
#include "kernels/precision.h"

namespace moeslice::bench {

// Best-of-`reps` wall time of fn in seconds, after one warm-up run.
inline double time_best(int reps, const std::function<void()>& fn) {
  fn();
  double best = 1e300;
  for (int i = 0; i < reps; ++i) {
    const auto start = std::chrono::steady_clock::now();
    fn();
    best = std::min(
        best, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  return best;
}

// `count` values uniform in [-scale, scale) from `seed`.
inline void fill_random(float* data, size_t count, uint32_t seed, float scale) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-scale, scale);
  for (size_t i = 0; i < count; ++i) data[i] = dist(rng);
}

// True when --compute bf16 runs in this build and CPU; otherwise prints why and returns false.
inline bool bf16_runs_here() {
  try {
    kernels::Bf16Math::require_available();
    return true;
  } catch (const UnsupportedError& e) {
    std::printf("\n# bf16 skipped: %s\n", e.what());
    return false;
  }
}

}  // namespace moeslice::bench
