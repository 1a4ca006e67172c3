// Staging entries: naming, stale clean-up, and removal on interrupting signals (see staging.h).
#include "common/staging.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <random>
#include <set>
#include <thread>
#include <vector>

#include <fmt/core.h>

#include "common/mapping_table.h"

namespace moeslice {
namespace fs = std::filesystem;
namespace {

// Recursive: an output renamed into place under lock_staging() tracks and untracks entries.
std::recursive_mutex& staging_mutex() {
  static std::recursive_mutex mutex;
  return mutex;
}

// Guarded by staging_mutex().
std::set<fs::path>& tracked() {
  static std::set<fs::path> paths;
  return paths;
}

bool process_is_running(long pid) {
  if (pid <= 0) return false;
  if (pid == static_cast<long>(::getpid())) return true;
  // kill(pid, 0) says whether the PID exists (EPERM: it does, but is another user's).
  if (::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM) return true;
  std::error_code error;
  return fs::exists(fmt::format("/proc/{}", pid), error);
}

constexpr int kInterruptSignals[] = {SIGINT, SIGTERM, SIGHUP};
constexpr int kRemovePasses = 8;

// Write end of the pipe through which the signal handler wakes the clean-up thread.
int signal_pipe = -1;

// Exit status after a SIGBUS on a mapped input: an input problem reported with a message.
constexpr int kBusErrorExitStatus = 1;

void write_all(const char* text) noexcept {
  size_t left = std::strlen(text);
  while (left > 0) {
    const ssize_t written = ::write(STDERR_FILENO, text, left);
    if (written <= 0) {
      if (written < 0 && errno == EINTR) continue;
      return;
    }
    text += written;
    left -= static_cast<size_t>(written);
  }
}

// SIGBUS: reading a mapped file that shrank (truncated by another process) faults. Only
// async-signal-safe calls here: the message goes out with write(2), the clean-up thread removes
// the staging entries and exits; the faulting thread waits for it, as returning would fault again.
void on_bus_error(int, siginfo_t* info, void*) {
  const char* path = mapped_path_at(info->si_addr);
  if (path == nullptr) {
    // Not a mapped input: the default action, at once for a signal sent by kill() (raised
    // again, pending until this handler returns), else by the faulting access run again.
    ::signal(SIGBUS, SIG_DFL);
    if (info->si_code <= 0) ::raise(SIGBUS);
    return;
  }
  static std::atomic<bool> reported{false};
  if (!reported.exchange(true)) {
    write_all("moeslice: error: ");
    write_all(path);
    write_all(" changed while being read (truncated or unreadable: SIGBUS); nothing was written\n");
    const unsigned char byte = SIGBUS;
    if (signal_pipe < 0 || ::write(signal_pipe, &byte, 1) != 1) ::_exit(kBusErrorExitStatus);
  }
  for (;;) ::pause();
}

}  // namespace

fs::path staging_path_for(const fs::path& final_path) {
  std::random_device device;
  return final_path.parent_path() /
         fmt::format(".{}.tmp-{}-{:08x}", final_path.filename().string(), ::getpid(), device());
}

bool is_staging_name(const std::string& name, const std::string& final_name, long& pid) {
  const std::string prefix = fmt::format(".{}.tmp-", final_name);
  if (!name.starts_with(prefix)) return false;
  const std::string rest = name.substr(prefix.size());  // "<pid>-<8 hex>"
  const size_t dash = rest.find('-');
  if (dash == 0 || dash == std::string::npos || dash > 10 || rest.size() != dash + 1 + 8)
    return false;
  const auto is_digit = [](char c) { return c >= '0' && c <= '9'; };
  const auto is_hex = [&](char c) { return is_digit(c) || (c >= 'a' && c <= 'f'); };
  if (!std::all_of(rest.begin(), rest.begin() + static_cast<long>(dash), is_digit)) return false;
  if (!std::all_of(rest.begin() + static_cast<long>(dash) + 1, rest.end(), is_hex)) return false;
  pid = std::stol(rest.substr(0, dash));
  return true;
}

size_t remove_stale_staging(const fs::path& final_path) {
  const std::string final_name = final_path.filename().string();
  fs::path dir = final_path.parent_path();
  if (dir.empty()) dir = ".";
  std::error_code error;
  std::vector<fs::path> stale;
  for (fs::directory_iterator it(dir, error), end; !error && it != end; it.increment(error)) {
    long pid = 0;
    if (is_staging_name(it->path().filename().string(), final_name, pid) &&
        !process_is_running(pid))
      stale.push_back(it->path());
  }
  size_t removed = 0;
  for (const fs::path& path : stale) {
    std::error_code ignored;
    if (fs::remove_all(path, ignored) > 0) ++removed;
  }
  return removed;
}

void track_staging(const fs::path& path) {
  const std::lock_guard lock(staging_mutex());
  tracked().insert(path);
}

void untrack_staging(const fs::path& path) {
  const std::lock_guard lock(staging_mutex());
  tracked().erase(path);
}

std::unique_lock<std::recursive_mutex> lock_staging() { return std::unique_lock(staging_mutex()); }

void handle_interrupt_signals() {
  // A full disk through a file-size limit (ulimit -f) is then a write error with a message
  // (EFBIG), not a kill.
  ::signal(SIGXFSZ, SIG_IGN);
  int ends[2];
  if (::pipe2(ends, O_CLOEXEC) != 0) return;  // no clean-up then, as before
  signal_pipe = ends[1];
  // A handler, not sigwait() in a thread with the signals blocked everywhere: libraries start
  // threads before main() (OpenBLAS), whose signal masks this cannot change.
  struct sigaction action {};
  action.sa_handler = [](int number) {
    const unsigned char byte = static_cast<unsigned char>(number);
    [[maybe_unused]] const ssize_t ignored = ::write(signal_pipe, &byte, 1);
  };
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  for (const int number : kInterruptSignals) {
    // An ignored signal stays ignored (nohup, a shell's background job without job control).
    struct sigaction current {};
    if (::sigaction(number, nullptr, &current) == 0 && current.sa_handler == SIG_IGN) continue;
    ::sigaction(number, &action, nullptr);
  }
  struct sigaction bus_action {};
  bus_action.sa_sigaction = on_bus_error;
  sigemptyset(&bus_action.sa_mask);
  bus_action.sa_flags = SA_SIGINFO;
  ::sigaction(SIGBUS, &bus_action, nullptr);
  std::thread([read_end = ends[0]] {
    unsigned char caught = 0;
    while (::read(read_end, &caught, 1) != 1) {
    }
    // Taken for good: no output is renamed into place and no staging entry created from here on.
    staging_mutex().lock();
    for (const fs::path& path : tracked()) {
      // Writer threads may still be creating files in a staging directory: a few passes.
      std::error_code error;
      for (int pass = 0; pass < kRemovePasses; ++pass)
        if (fs::remove_all(path, error); !error && !fs::exists(path, error)) break;
    }
    if (caught == SIGBUS) ::_exit(kBusErrorExitStatus);  // the message is out already
    // Ends the process by the same signal, as if it had not been caught.
    ::signal(caught, SIG_DFL);
    ::kill(::getpid(), caught);
    ::pause();
    ::_exit(128 + caught);
  }).detach();
}

}  // namespace moeslice
