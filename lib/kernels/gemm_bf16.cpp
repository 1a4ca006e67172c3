// gemm_bf16_abt / gemm_bf16_ab on oneDNN's matmul primitive, with a process-wide primitive cache.
#include "kernels/gemm_bf16.h"

#include <algorithm>
#include <cassert>

#include <fmt/core.h>

#include "common/error.h"
#include "kernels/gemm.h"

#if MOESLICE_HAVE_ONEDNN
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <oneapi/dnnl/dnnl.hpp>
#include <tuple>
#endif

namespace moeslice::kernels {

#if MOESLICE_HAVE_ONEDNN
namespace {

using dim = dnnl::memory::dim;
using dt = dnnl::memory::data_type;

dim to_dim(size_t value) { return static_cast<dim>(value); }

struct Shape {
  size_t m, n, k, lda, ldb, ldc;
  bool b_transposed;  // B given as [n, k] rows (abt) rather than [k, n] (ab)
  auto tie() const { return std::tie(m, n, k, lda, ldb, ldc, b_transposed); }
  bool operator<(const Shape& other) const { return tie() < other.tie(); }
};

struct Entry {
  dnnl::memory::desc a, b, c, scratch;
  dnnl::matmul primitive;
  size_t scratch_bytes = 0;
};

const dnnl::engine& cpu_engine() {
  static const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

// Creating a primitive costs ~0.2-0.4 ms (JIT) and keeps ~85 KB; a forward pass sees a few hundred
// shapes (tokens per expert vary), each reused for every later document. The cache keeps the
// most recently used kCapacity of them (at most ~90 MB), so long windows, whose token counts per
// expert take thousands of values, cannot grow it without bound. Entries are shared_ptrs: one
// evicted while another thread runs it stays alive until that call ends.
class PrimitiveCache {
 public:
  static constexpr size_t kCapacity = 1024;

  std::shared_ptr<const Entry> get(const Shape& shape) {
    {
      std::lock_guard lock(mutex_);
      auto it = entries_.find(shape);
      if (it != entries_.end()) {
        recent_.splice(recent_.begin(), recent_, it->second.position);
        return it->second.entry;
      }
    }
    std::shared_ptr<const Entry> entry = create(shape);  // outside the lock: the slow part
    std::lock_guard lock(mutex_);
    auto [it, inserted] = entries_.try_emplace(shape);
    if (!inserted) return it->second.entry;  // another thread created it meanwhile
    recent_.push_front(shape);
    it->second = {entry, recent_.begin()};
    if (entries_.size() > kCapacity) {
      entries_.erase(recent_.back());
      recent_.pop_back();
    }
    return entry;
  }

 private:
  struct Slot {
    std::shared_ptr<const Entry> entry;
    std::list<Shape>::iterator position;  // in recent_
  };

  static std::shared_ptr<const Entry> create(const Shape& s) {
    auto entry = std::make_shared<Entry>();
    entry->a = dnnl::memory::desc({to_dim(s.m), to_dim(s.k)}, dt::bf16, {to_dim(s.lda), 1});
    // B is [k, n]; a [n, k] row-major weight is its transposed view: strides {1, ldb}.
    entry->b = s.b_transposed
                   ? dnnl::memory::desc({to_dim(s.k), to_dim(s.n)}, dt::bf16, {1, to_dim(s.ldb)})
                   : dnnl::memory::desc({to_dim(s.k), to_dim(s.n)}, dt::bf16, {to_dim(s.ldb), 1});
    entry->c = dnnl::memory::desc({to_dim(s.m), to_dim(s.n)}, dt::f32, {to_dim(s.ldc), 1});
    try {
      dnnl::primitive_attr attr;
      // Scratch owned per calling thread, so concurrent calls never share oneDNN's.
      attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
      const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(entry->a, entry->b, entry->c), attr,
                                            cpu_engine());
      // oneDNN falls back to its reference kernels where the CPU lacks AVX-512 (BF16 or at
      // least core); those are orders of magnitude slower than the fp32 mode, so refuse.
      const std::string impl = pd.impl_info_str();
      if (impl.rfind("ref", 0) == 0)
        throw UnsupportedError(fmt::format(
            "--compute bf16: oneDNN has only its reference bf16 matmul ({}) on this CPU (no "
            "AVX-512); use --compute fp32",
            impl));
      entry->scratch = pd.scratchpad_desc();
      entry->scratch_bytes = entry->scratch.get_size();
      entry->primitive = dnnl::matmul(pd);
    } catch (const dnnl::error& e) {
      throw UnsupportedError(
          fmt::format("oneDNN has no bf16 matmul for [{} x {}] x [{} x {}] on this CPU: {}", s.m,
                      s.k, s.k, s.n, e.what()));
    }
    return entry;
  }

  std::mutex mutex_;
  std::map<Shape, Slot> entries_;
  std::list<Shape> recent_;  // most recently used first
};

PrimitiveCache& cache() {
  static PrimitiveCache instance;
  return instance;
}

// Per-thread oneDNN state. oneDNN (Debian: OpenMP runtime) sizes its team by the calling thread's
// omp_get_max_threads(); the pool already runs one GEMM per core, so each thread asks for one
// (ensure_single_threaded_blas, as the fp32 sgemm does).
struct ThreadState {
  dnnl::stream stream;
  std::vector<std::byte> scratch;
  ThreadState() : stream(cpu_engine()) { ensure_single_threaded_blas(); }
};

ThreadState& thread_state() {
  thread_local ThreadState state;
  return state;
}

void zero(MatrixRef c) {
  for (size_t r = 0; r < c.rows; ++r) std::fill(c.row(r), c.row(r) + c.cols, 0.0f);
}

void run(const Shape& shape, const uint16_t* a, const uint16_t* b, float* c) {
  const std::shared_ptr<const Entry> cached = cache().get(shape);
  const Entry& entry = *cached;
  ThreadState& state = thread_state();
  if (state.scratch.size() < entry.scratch_bytes) state.scratch.resize(entry.scratch_bytes);
  const dnnl::engine& engine = cpu_engine();
  // oneDNN takes non-const handles; it only reads src and weights.
  dnnl::memory a_mem(entry.a, engine, const_cast<uint16_t*>(a));
  dnnl::memory b_mem(entry.b, engine, const_cast<uint16_t*>(b));
  dnnl::memory c_mem(entry.c, engine, c);
  dnnl::memory scratch(entry.scratch, engine, state.scratch.data());
  entry.primitive.execute(state.stream, {{DNNL_ARG_SRC, a_mem},
                                         {DNNL_ARG_WEIGHTS, b_mem},
                                         {DNNL_ARG_DST, c_mem},
                                         {DNNL_ARG_SCRATCHPAD, scratch}});
  state.stream.wait();
}

}  // namespace

bool bf16_gemm_available() { return true; }

std::string bf16_gemm_backend() {
  const dnnl_version_t* v = dnnl_version();
  return fmt::format("oneDNN {}.{}.{}", v->major, v->minor, v->patch);
}

// A small probe primitive: refuses a CPU where oneDNN would fall back to its reference kernels
// before any token is computed.
void require_bf16_gemm() { cache().get({16, 16, 16, 16, 16, 16, true}); }

void gemm_bf16_abt(ConstBf16Ref a, ConstBf16Ref b, MatrixRef c) {
  assert(a.cols == b.cols && c.rows == a.rows && c.cols == b.rows);
  if (c.rows == 0 || c.cols == 0) return;
  if (a.cols == 0) return zero(c);
  run({c.rows, c.cols, a.cols, a.stride, b.stride, c.stride, true}, a.data, b.data, c.data);
}

void gemm_bf16_ab(ConstBf16Ref a, ConstBf16Ref b, MatrixRef c) {
  assert(a.cols == b.rows && c.rows == a.rows && c.cols == b.cols);
  if (c.rows == 0 || c.cols == 0) return;
  if (a.cols == 0) return zero(c);
  run({c.rows, c.cols, a.cols, a.stride, b.stride, c.stride, false}, a.data, b.data, c.data);
}

#else  // no oneDNN

bool bf16_gemm_available() { return false; }
std::string bf16_gemm_backend() { return "none"; }

void require_bf16_gemm() {
  throw UnsupportedError(
      "--compute bf16 needs oneDNN (Debian: libdnnl-dev), and this moeslice was built without it "
      "(MOESLICE_ONEDNN=OFF or the library was not found); use --compute fp32 or rebuild");
}

void gemm_bf16_abt(ConstBf16Ref, ConstBf16Ref, MatrixRef) { require_bf16_gemm(); }
void gemm_bf16_ab(ConstBf16Ref, ConstBf16Ref, MatrixRef) { require_bf16_gemm(); }

#endif

}  // namespace moeslice::kernels
