// Throughput of the forward-pass compute kernels (lib/kernels): the GEMM through matmul_xWt,
// causal attention, and the batched MoE expert block at OLMoE width, under each precision policy
// (fp32, and bf16 where this build and CPU run it). Prints numbers; not a test.
// Usage: bench_kernels [--quick]
//        bench_kernels --peak THREADS   the best matmul_xWt rate of each compute mode at THREADS
//                                       threads, as JSON lines (what the forward bench divides by)
//        bench_kernels --moe            moe_experts alone (fp32 compute, BF16 and F32 weights)
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include "bench_util.h"
#include "common/dtype.h"
#include "common/error.h"
#include "kernels/attention.h"
#include "kernels/gemm.h"
#include "kernels/gemm_bf16.h"
#include "kernels/linear.h"
#include "kernels/matrix.h"
#include "kernels/moe.h"
#include "kernels/precision.h"
#include "kernels/routing.h"
#include "kernels/thread_pool.h"
#include "kernels/weight_matrix.h"

using namespace moeslice;
using namespace moeslice::kernels;
using moeslice::bench::fill_random;
using moeslice::bench::time_best;

namespace {

// Storage of `rows x cols` random weights in `dtype`.
std::vector<std::byte> random_weights(DType dtype, size_t rows, size_t cols, uint32_t seed) {
  std::vector<float> values(rows * cols);
  fill_random(values.data(), values.size(), seed, 0.03f);
  std::vector<std::byte> bytes(values.size() * (dtype_bits(dtype) / 8));
  convert_from_f32(dtype, values.data(), bytes.data(), values.size());
  return bytes;
}

template <class Math>
void bench_gemm(bool quick) {
  std::printf("\n## matmul_xWt (%s compute, backends %s / %s)\n", Math::kName,
              std::string(gemm_backend()).c_str(), bf16_gemm_backend().c_str());
  std::printf("%-28s %-6s %8s %10s\n", "shape [n x in] x [in x out]", "dtype", "threads",
              "GFLOP/s");
  struct Shape {
    size_t n, in, out;
  };
  for (const Shape s : {Shape{512, 2048, 2048}, Shape{2048, 2048, 2048}, Shape{128, 2048, 1024}}) {
    Matrix x(s.n, s.in);
    fill_random(x.data(), s.n * s.in, 1, 1.0f);
    Matrix y(s.n, s.out);
    for (DType dtype : {DType::F32, DType::BF16}) {
      const std::vector<std::byte> storage = random_weights(dtype, s.out, s.in, 2);
      const WeightMatrix w(dtype, storage.data(), s.out, s.in);
      for (size_t threads : {1u, 2u}) {
        ThreadPool pool(threads);
        const double seconds =
            time_best(quick ? 2 : 5, [&] { matmul_xWt<Math>(x.cref(), w, y.ref(), {}, &pool); });
        const double flops = 2.0 * static_cast<double>(s.n * s.in * s.out);
        std::printf("[%4zu x %4zu] x [%4zu x %4zu] %-6s %8zu %10.1f\n", s.n, s.in, s.in, s.out,
                    std::string(dtype_name(dtype)).c_str(), threads, flops / seconds / 1e9);
      }
    }
  }
}

template <class Math>
void bench_attention(bool quick) {
  std::printf("\n## causal_attention (%s compute, 16 heads x 128, kv 16)\n", Math::kName);
  std::printf("%8s %8s %10s %12s\n", "tokens", "threads", "ms", "GFLOP/s");
  const AttentionShape shape{16, 16, 128};
  for (size_t n : {512u, 2048u}) {
    Matrix q(n, 2048), k(n, 2048), v(n, 2048), out(n, 2048);
    fill_random(q.data(), n * 2048, 3, 1.0f);
    fill_random(k.data(), n * 2048, 4, 1.0f);
    fill_random(v.data(), n * 2048, 5, 1.0f);
    for (size_t threads : {1u, 2u}) {
      ThreadPool pool(threads);
      const double seconds = time_best(quick ? 2 : 5, [&] {
        causal_attention<Math>(q.cref(), k.cref(), v.cref(), shape, out.ref(), &pool);
      });
      // Useful work: QK^T and PV over the causal triangle.
      const double flops =
          2.0 * 2.0 * 16 * 128 * static_cast<double>(n) * static_cast<double>(n + 1) / 2;
      std::printf("%8zu %8zu %10.2f %12.1f\n", n, threads, seconds * 1e3, flops / seconds / 1e9);
    }
  }
}

template <class Math>
void bench_moe(bool quick) {
  const size_t hidden = 2048, width = 1024, experts = 64, k = 8;
  const size_t tokens = quick ? 512 : 2048;
  // BF16 weights are converted block by block on their way to the fp32 GEMM; F32 ones are not.
  for (const DType dtype : {DType::BF16, DType::F32}) {
    const std::string name(dtype_name(dtype));
    std::printf(
        "\n## moe_experts (%s compute, OLMoE width: H %zu, %zu experts x I %zu, top-%zu, %s "
        "weights, %zu tokens)\n",
        Math::kName, hidden, experts, width, k, name.c_str(), tokens);
    std::vector<std::vector<std::byte>> storage;
    std::vector<ExpertMlp> mlps;
    for (size_t e = 0; e < experts; ++e) {
      const auto seed = static_cast<uint32_t>(10 + 3 * e);
      storage.push_back(random_weights(dtype, width, hidden, seed));
      storage.push_back(random_weights(dtype, width, hidden, seed + 1));
      storage.push_back(random_weights(dtype, hidden, width, seed + 2));
    }
    for (size_t e = 0; e < experts; ++e)
      mlps.push_back({WeightMatrix(dtype, storage[3 * e].data(), width, hidden),
                      WeightMatrix(dtype, storage[3 * e + 1].data(), width, hidden),
                      WeightMatrix(dtype, storage[3 * e + 2].data(), hidden, width)});
    Matrix x(tokens, hidden);
    fill_random(x.data(), tokens * hidden, 6, 1.0f);
    Matrix logits(tokens, experts);
    fill_random(logits.data(), tokens * experts, 7, 2.0f);
    const Routing routing = route_softmax_topk(logits.ref(), k, false);
    Matrix y(tokens, hidden);
    std::vector<float> norms(tokens * k);
    std::printf("%8s %10s %12s %10s\n", "threads", "seconds", "tokens/s", "GFLOP/s");
    for (size_t threads : {1u, 2u}) {
      ThreadPool pool(threads);
      const double seconds = time_best(quick ? 1 : 3, [&] {
        moe_experts<Math>(x.cref(), routing, mlps, y.ref(), norms, &pool);
      });
      const double flops = 2.0 * 3.0 * static_cast<double>(tokens * k * hidden * width);
      std::printf("%8zu %10.3f %12.0f %10.1f\n", threads, seconds,
                  static_cast<double>(tokens) / seconds, flops / seconds / 1e9);
    }
  }
}

// The best of a few large square-ish products through matmul_xWt (the product's own fp32 GEMM, or
// its bf16 GEMM on BF16 weights) at `threads` threads, in GFLOP/s.
template <class Math>
double gemm_peak(size_t threads) {
  const DType dtype = std::is_same_v<Math, Fp32Math> ? DType::F32 : DType::BF16;
  double best = 0.0;
  for (const size_t n : {512u, 2048u}) {
    const size_t in = 2048, out = 2048;
    Matrix x(n, in), y(n, out);
    fill_random(x.data(), n * in, 1, 1.0f);
    const std::vector<std::byte> storage = random_weights(dtype, out, in, 2);
    const WeightMatrix w(dtype, storage.data(), out, in);
    ThreadPool pool(threads);
    const double seconds = time_best(5, [&] { matmul_xWt<Math>(x.cref(), w, y.ref(), {}, &pool); });
    best = std::max(best, 2.0 * static_cast<double>(n * in * out) / seconds / 1e9);
  }
  return best;
}

template <class Math>
void bench_all(bool quick) {
  bench_gemm<Math>(quick);
  bench_attention<Math>(quick);
  bench_moe<Math>(quick);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 3 && std::strcmp(argv[1], "--peak") == 0) {
    const auto threads = static_cast<size_t>(std::strtoul(argv[2], nullptr, 10));
    std::printf(
        "{\"what\": \"gemm_peak\", \"compute\": \"fp32\", \"threads\": %zu, "
        "\"gflops_per_s\": %.1f, \"gemm\": \"%s\"}\n",
        threads, gemm_peak<Fp32Math>(threads), std::string(gemm_backend()).c_str());
    if (moeslice::bench::bf16_runs_here())
      std::printf(
          "{\"what\": \"gemm_peak\", \"compute\": \"bf16\", \"threads\": %zu, "
          "\"gflops_per_s\": %.1f, \"gemm\": \"%s\"}\n",
          threads, gemm_peak<Bf16Math>(threads), bf16_gemm_backend().c_str());
    return 0;
  }
  if (argc == 2 && std::strcmp(argv[1], "--moe") == 0) {
    bench_moe<Fp32Math>(false);
    return 0;
  }
  const bool quick = argc > 1 && std::strcmp(argv[1], "--quick") == 0;
  std::printf("# bench_kernels%s\n", quick ? " (quick)" : "");
  bench_all<Fp32Math>(quick);
  if (!moeslice::bench::bf16_runs_here()) return 0;
  bench_all<Bf16Math>(quick);
  return 0;
}
