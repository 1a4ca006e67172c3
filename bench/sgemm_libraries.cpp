// The fp32 GEMM libraries side by side, single-threaded, on the shapes the forward pass runs
// (C = A B^T, row-major, as gemm_abt): OpenBLAS's cblas_sgemm (at whatever core type
// OPENBLAS_CORETYPE selects) against oneDNN's dnnl_sgemm, best of 7 interleaved runs each. How
// the product's fp32 GEMM was chosen (lib/kernels/gemm.h, docs/benchmarks.md). Prints numbers;
// not a test.
// Usage: OPENBLAS_CORETYPE=Haswell sgemm_libraries
#include <cblas.h>
#include <omp.h>
#include <oneapi/dnnl/dnnl.h>

#include <chrono>
#include <cstdio>
#include <random>
#include <vector>

extern "C" void openblas_set_num_threads(int);

int main() {
  openblas_set_num_threads(1);
  omp_set_num_threads(1);
  struct Shape {
    int m, k, n;
  };
  // Tokens x hidden -> expert width (an expert's gate/up), the same for a few tokens, the
  // down projection, attention-sized square products.
  const Shape shapes[] = {
      {512, 2048, 1024}, {64, 2048, 1024}, {16, 2048, 1024}, {512, 1024, 2048}, {2048, 2048, 2048}};
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> uniform(-1, 1);
  std::printf("%-22s %16s %16s %8s\n", "m x k x n", "OpenBLAS GFLOP/s", "oneDNN GFLOP/s", "ratio");
  for (const Shape& s : shapes) {
    std::vector<float> a(size_t(s.m) * s.k), b(size_t(s.n) * s.k), c(size_t(s.m) * s.n);
    for (float& x : a) x = uniform(rng);
    for (float& x : b) x = uniform(rng);
    double best[2] = {1e30, 1e30};
    for (int rep = 0; rep < 7; ++rep)
      for (int library = 0; library < 2; ++library) {
        const auto start = std::chrono::steady_clock::now();
        if (library == 0)
          cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, s.m, s.n, s.k, 1, a.data(), s.k,
                      b.data(), s.k, 0, c.data(), s.n);
        else
          dnnl_sgemm('N', 'T', s.m, s.n, s.k, 1, a.data(), s.k, b.data(), s.k, 0, c.data(), s.n);
        const double seconds =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        if (seconds < best[library]) best[library] = seconds;
      }
    const double flop = 2.0 * s.m * s.n * s.k;
    std::printf("%5d x %5d x %5d    %16.1f %16.1f %7.2fx\n", s.m, s.k, s.n, flop / best[0] / 1e9,
                flop / best[1] / 1e9, best[0] / best[1]);
  }
}
