// Bounds of the forward-pass settings (RunSettings): forward_options() refuses more, and
// apps/run_flags.cpp states them in its flag checks.
#pragma once

#include <cstddef>

namespace moeslice {

// Most threads a run may ask for: more is never faster on any machine this runs on, and a
// mistyped count (4294967295) must not try to start them.
inline constexpr size_t kMaxThreads = 1024;
// Longest window (--max-seq) a run may ask for, in tokens: far above any model's context, low
// enough that its buffers are never sized from a mistyped number.
inline constexpr size_t kMaxSequenceTokens = size_t{1} << 24;

}  // namespace moeslice
