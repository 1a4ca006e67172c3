// A minimal fork-join thread pool: parallel_for over an index range, the calling thread taking
// part. The kernels use it to spread heads, experts and weight blocks over cores.
//
// Thread safety: parallel_for may be called from any thread; calls from different threads are
// serialised (one loop runs at a time). A parallel_for issued from inside a task of the same pool
// runs inline on the calling worker, so nesting never deadlocks. The pool's workers keep Eigen and
// OpenBLAS single-threaded (see gemm.h): parallelism comes from the pool only, never both.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace moeslice::kernels {

class ThreadPool {
 public:
  // `threads` counts the calling thread; 0 means std::thread::hardware_concurrency().
  explicit ThreadPool(size_t threads = 0);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  // Number of threads that run tasks (workers + the caller), >= 1.
  size_t size() const { return workers_.size() + 1; }

  // Runs fn(index, worker) for every index in [0, n) and returns when all are done. `worker` is in
  // [0, size()) and identifies the executing thread, for per-thread scratch. Indices are handed
  // out dynamically in increasing order. The first exception thrown by a task is rethrown here
  // (remaining indices are skipped).
  void parallel_for(size_t n, const std::function<void(size_t index, size_t worker)>& fn);

  // Same, for tasks that need no worker id.
  void parallel_for(size_t n, const std::function<void(size_t index)>& fn) {
    parallel_for(n, [&fn](size_t index, size_t) { fn(index); });
  }

 private:
  void worker_loop(size_t worker);
  void run_tasks(size_t worker);

  std::vector<std::thread> workers_;
  std::mutex call_mutex_;  // one parallel_for at a time

  std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable done_;
  const std::function<void(size_t, size_t)>* job_ = nullptr;
  size_t job_size_ = 0;                 // set under mutex_ before workers wake
  std::atomic<size_t> next_index_ = 0;  // handed out lock-free: no lock per task on many cores
  size_t generation_ = 0;               // bumped per parallel_for; workers wait for a new one
  size_t active_workers_ = 0;           // workers still inside the current generation
  bool stopping_ = false;
  std::exception_ptr error_;
};

// Runs fn over [0, n) on `pool`, or inline (worker 0) when pool is null.
void parallel_for(ThreadPool* pool, size_t n,
                  const std::function<void(size_t index, size_t worker)>& fn);

// Runs fn(begin, count) over consecutive chunks covering rows [0, rows) on `pool` (inline when
// null): for row-wise work (norms, RoPE, residual adds, copies) whose results do not depend on
// how the rows are split, so that it does not stay serial beside GEMMs spread over many cores.
void parallel_rows(ThreadPool* pool, size_t rows,
                   const std::function<void(size_t begin, size_t count)>& fn);

}  // namespace moeslice::kernels
