// Staging entries: the hidden siblings (".NAME.tmp-PID-XXXXXXXX") that atomic outputs are written
// under before the rename into place. Two things keep them from piling up as debris:
//   - entries of this process are tracked; after handle_interrupt_signals() a SIGINT, SIGTERM or
//     SIGHUP removes them and then ends the process by the same signal (exit status 128+sig);
//   - every writer removes stale entries beside its output: names of exactly this pattern whose
//     PID is no longer a running process (kill -9, a power cut).
//
// Thread safety: every function may be called from any thread.
#pragma once

#include <filesystem>
#include <mutex>
#include <string>

namespace moeslice {

// A fresh staging path beside `final_path` (same directory, so the rename stays on one disk).
std::filesystem::path staging_path_for(const std::filesystem::path& final_path);

// True when `name` is a staging name of `final_name` (".final_name.tmp-<pid>-<8 hex>"); sets
// `pid` to the PID in it.
bool is_staging_name(const std::string& name, const std::string& final_name, long& pid);

// Removes the staging entries beside `final_path` whose process is gone; returns how many.
// Entries of running processes (this one included) are left alone.
size_t remove_stale_staging(const std::filesystem::path& final_path);

// Tracks a staging path of this process for removal on an interrupting signal.
void track_staging(const std::filesystem::path& path);
void untrack_staging(const std::filesystem::path& path);

// Held while an output is renamed into place, so that a signal's clean-up sees either the
// staging entry or the finished output, never a half-done swap.
std::unique_lock<std::recursive_mutex> lock_staging();

// Catches SIGINT, SIGTERM and SIGHUP with a handler that wakes a clean-up thread: it removes
// the tracked staging entries and ends the process by the same signal. Signals already ignored
// (nohup) stay ignored. SIGXFSZ is ignored, so that exceeding a file-size limit is a write error
// (EFBIG) with a message, not a kill. A SIGBUS from reading a mapped input that shrank (another
// process truncated it) prints "FILE changed while being read", removes the staging entries and
// exits with status 1. Call it first thing in main().
void handle_interrupt_signals();

}  // namespace moeslice
