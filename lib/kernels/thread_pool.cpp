// ThreadPool: workers sleep on a condition variable between loops and take indices with one atomic
// increment each, so no lock is taken per task (the mutex only starts and ends a loop and records
// a task's exception).
#include "kernels/thread_pool.h"

#include <algorithm>
#include <cassert>

#include "kernels/gemm.h"

namespace moeslice::kernels {
namespace {

// The pool whose task the current thread is running and its worker id, so that a nested loop runs
// inline and keeps reporting the id whose scratch the thread owns.
thread_local const ThreadPool* tls_running_pool = nullptr;
thread_local size_t tls_worker = 0;

}  // namespace

ThreadPool::ThreadPool(size_t threads) {
  if (threads == 0) threads = std::thread::hardware_concurrency();
  if (threads == 0) threads = 1;
  workers_.reserve(threads - 1);
  for (size_t w = 1; w < threads; ++w) workers_.emplace_back([this, w] { worker_loop(w); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  for (auto& thread : workers_) thread.join();
}

void ThreadPool::run_tasks(size_t worker) {
  const ThreadPool* previous = tls_running_pool;
  const size_t previous_worker = tls_worker;
  tls_running_pool = this;
  tls_worker = worker;
  for (;;) {
    const size_t index = next_index_.fetch_add(1, std::memory_order_relaxed);
    if (index >= job_size_) break;
    try {
      (*job_)(index, worker);
    } catch (...) {
      std::lock_guard lock(mutex_);
      if (!error_) error_ = std::current_exception();
      next_index_.store(job_size_, std::memory_order_relaxed);  // skip the rest
    }
  }
  tls_running_pool = previous;
  tls_worker = previous_worker;
}

void ThreadPool::worker_loop(size_t worker) {
  ensure_single_threaded_blas();
  size_t seen_generation = 0;
  for (;;) {
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [&] { return stopping_ || generation_ != seen_generation; });
      if (stopping_) return;
      seen_generation = generation_;
    }
    run_tasks(worker);
    {
      std::lock_guard lock(mutex_);
      --active_workers_;
    }
    done_.notify_one();
  }
}

void ThreadPool::parallel_for(size_t n, const std::function<void(size_t, size_t)>& fn) {
  if (n == 0) return;
  // Nested call from one of our own tasks: run inline under the task's worker id.
  if (tls_running_pool == this) {
    for (size_t i = 0; i < n; ++i) fn(i, tls_worker);
    return;
  }
  std::lock_guard call_lock(call_mutex_);
  ensure_single_threaded_blas();
  const bool wake_workers = n > 1 && !workers_.empty();
  {
    std::lock_guard lock(mutex_);
    job_ = &fn;
    job_size_ = n;
    next_index_.store(0, std::memory_order_relaxed);
    error_ = nullptr;
    if (wake_workers) {
      active_workers_ = workers_.size();
      ++generation_;
    }
  }
  if (wake_workers) wake_.notify_all();
  run_tasks(0);
  std::exception_ptr error;
  {
    std::unique_lock lock(mutex_);
    done_.wait(lock, [&] { return active_workers_ == 0; });
    job_ = nullptr;
    error = error_;
    error_ = nullptr;
  }
  if (error) std::rethrow_exception(error);
}

void parallel_rows(ThreadPool* pool, size_t rows,
                   const std::function<void(size_t begin, size_t count)>& fn) {
  // A few chunks per thread for balance, each at least kMinRows rows so that the hand-out costs
  // little beside the work.
  constexpr size_t kMinRows = 16;
  const size_t threads = pool == nullptr ? 1 : pool->size();
  if (threads == 1 || rows <= kMinRows) {
    if (rows > 0) fn(0, rows);
    return;
  }
  const size_t chunk = std::max(kMinRows, (rows + 4 * threads - 1) / (4 * threads));
  const size_t chunks = (rows + chunk - 1) / chunk;
  pool->parallel_for(chunks, [&](size_t c, size_t) {
    const size_t begin = c * chunk;
    fn(begin, std::min(chunk, rows - begin));
  });
}

void parallel_for(ThreadPool* pool, size_t n,
                  const std::function<void(size_t index, size_t worker)>& fn) {
  if (pool != nullptr) {
    pool->parallel_for(n, fn);
    return;
  }
  ensure_single_threaded_blas();
  for (size_t i = 0; i < n; ++i) fn(i, 0);
}

}  // namespace moeslice::kernels
