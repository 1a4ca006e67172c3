// Quantized weights in the forward pass (issue 17): dequantization throughput per type, and the
// Linear layer (matmul_xWt) and the batched MoE experts at OLMoE width with quantized weights
// (dequantized a block of rows at a time into the GEMM operand) next to the same with BF16
// weights, under each precision policy. Prints numbers; not a test.
// Usage: bench_quant [--quick]
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "bench_util.h"
#include "common/dtype.h"
#include "common/error.h"
#include "format/gguf/random_blocks.h"
#include "kernels/dequant/dequantize.h"
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

// A [rows, cols] weight stored as `kind`: BF16, a ggml block type, "FP8" (E4M3 with 128x128 F32
// scales) or "MXFP4-split" (gpt-oss's blocks and scales). Owns its bytes.
struct StoredWeight {
  std::string kind;
  std::vector<std::byte> data, scales;
  WeightMatrix matrix;

  StoredWeight(const std::string& name, size_t rows, size_t cols, uint64_t seed) : kind(name) {
    if (kind == "BF16") {
      std::vector<float> values(rows * cols);
      fill_random(values.data(), values.size(), static_cast<uint32_t>(seed), 0.03f);
      data.resize(rows * cols * 2);
      convert_from_f32(DType::BF16, values.data(), data.data(), values.size());
      matrix = WeightMatrix(DType::BF16, data.data(), rows, cols);
    } else if (kind == "FP8") {
      data.resize(rows * cols);
      fill_random_tensor_bytes(DType::U8, data, seed);
      for (auto& b : data) b &= std::byte{0xf7};  // no NaN codes
      std::vector<float> s(((rows + 127) / 128) * ((cols + 127) / 128), 1e-3f);
      scales.resize(s.size() * 4);
      std::memcpy(scales.data(), s.data(), scales.size());
      matrix = WeightMatrix(
          QuantizedMatrix::fp8_block_scaled(data.data(), scales.data(), DType::F32, rows, cols));
    } else if (kind == "MXFP4-split") {
      data.resize(rows * cols / 2);
      fill_random_tensor_bytes(DType::U8, data, seed);
      scales.assign(rows * cols / 32, std::byte{120});
      matrix = WeightMatrix(QuantizedMatrix::mxfp4_split(data.data(), scales.data(), rows, cols));
    } else {
      DType dtype = DType::Q8_0;
      for (DType t : {DType::Q8_0, DType::Q4_K, DType::Q6_K, DType::Q5_K, DType::MXFP4,
                      DType::IQ4_XS, DType::Q4_0})
        if (dtype_name(t) == kind) dtype = t;
      data.resize(rows * cols / dtype_block(dtype)->elements * dtype_block(dtype)->bytes);
      fill_random_tensor_bytes(dtype, data, seed);
      matrix = WeightMatrix(QuantizedMatrix::ggml_blocks(dtype, data.data(), rows, cols));
    }
  }
};

const char* const kKinds[] = {"BF16", "Q8_0",   "Q6_K",  "Q5_K",        "Q4_K",
                              "Q4_0", "IQ4_XS", "MXFP4", "MXFP4-split", "FP8"};

void bench_dequantize(bool quick) {
  std::printf("\n## dequantize to fp32 (rows of 2048, 1 thread)\n");
  std::printf("%-12s %12s %10s\n", "weights", "Melem/s", "GB/s out");
  const size_t rows = quick ? 256 : 1024, cols = 2048;
  std::vector<float> out(rows * cols);
  for (const char* kind : kKinds) {
    const StoredWeight w(kind, rows, cols, 1);
    const double seconds =
        time_best(quick ? 3 : 10, [&] { w.matrix.rows_to_f32(0, rows, out.data()); });
    const double elements = static_cast<double>(rows * cols);
    std::printf("%-12s %12.0f %10.2f\n", kind, elements / seconds / 1e6,
                elements * 4 / seconds / 1e9);
  }
}

template <class Math>
void bench_linear(bool quick) {
  std::printf("\n## matmul_xWt (%s compute) by weight storage; ratio = time of BF16 / time\n",
              Math::kName);
  std::printf("%-26s %-12s %8s %10s %8s\n", "shape [n x in] x [in x out]", "weights", "threads",
              "GFLOP/s", "ratio");
  struct Shape {
    size_t n, in, out;
  };
  for (const Shape s : {Shape{512, 2048, 2048}, Shape{64, 2048, 1024}}) {
    Matrix x(s.n, s.in), y(s.n, s.out);
    fill_random(x.data(), s.n * s.in, 1, 1.0f);
    for (size_t threads : {1u, 2u}) {
      ThreadPool pool(threads);
      double bf16_seconds = 0;
      for (const char* kind : kKinds) {
        const StoredWeight w(kind, s.out, s.in, 2);
        const double seconds = time_best(
            quick ? 2 : 5, [&] { matmul_xWt<Math>(x.cref(), w.matrix, y.ref(), {}, &pool); });
        if (std::string(kind) == "BF16") bf16_seconds = seconds;
        const double flops = 2.0 * static_cast<double>(s.n * s.in * s.out);
        std::printf("[%4zu x %4zu] x [%4zu x %4zu] %-12s %8zu %10.1f %8.2f\n", s.n, s.in, s.in,
                    s.out, kind, threads, flops / seconds / 1e9, bf16_seconds / seconds);
      }
    }
  }
}

// The batched experts at OLMoE width (as bench_kernels' moe_experts) by weight storage.
template <class Math>
void bench_quantized_experts(bool quick) {
  const size_t hidden = 2048, width = 1024, experts = 64, k = 8, tokens = quick ? 256 : 1024;
  std::printf(
      "\n## moe_experts (%s compute, OLMoE width: H %zu, %zu experts x I %zu, top-%zu, "
      "%zu tokens, 2 threads)\n",
      Math::kName, hidden, experts, width, k, tokens);
  std::printf("%-12s %10s %12s %8s\n", "weights", "seconds", "tokens/s", "ratio");
  Matrix x(tokens, hidden), logits(tokens, experts), y(tokens, hidden);
  fill_random(x.data(), tokens * hidden, 6, 1.0f);
  fill_random(logits.data(), tokens * experts, 7, 2.0f);
  const Routing routing = route_softmax_topk(logits.ref(), k, false);
  std::vector<float> norms(tokens * k);
  ThreadPool pool(2);
  double bf16_seconds = 0;
  for (const char* kind : {"BF16", "Q8_0", "Q4_K", "MXFP4"}) {
    std::vector<StoredWeight> stored;
    stored.reserve(3 * experts);
    std::vector<ExpertMlp> mlps;
    for (size_t e = 0; e < experts; ++e) {
      stored.emplace_back(kind, width, hidden, 10 + 3 * e);
      stored.emplace_back(kind, width, hidden, 11 + 3 * e);
      stored.emplace_back(kind, hidden, width, 12 + 3 * e);
      mlps.push_back({stored[3 * e].matrix, stored[3 * e + 1].matrix, stored[3 * e + 2].matrix});
    }
    const double seconds = time_best(
        quick ? 1 : 2, [&] { moe_experts<Math>(x.cref(), routing, mlps, y.ref(), norms, &pool); });
    if (std::string(kind) == "BF16") bf16_seconds = seconds;
    std::printf("%-12s %10.3f %12.0f %8.2f\n", kind, seconds, static_cast<double>(tokens) / seconds,
                bf16_seconds / seconds);
  }
}

}  // namespace

int main(int argc, char** argv) {
  const bool quick = argc > 1 && std::strcmp(argv[1], "--quick") == 0;
  std::printf("# bench_quant%s\n", quick ? " (quick)" : "");
  bench_dequantize(quick);
  bench_linear<Fp32Math>(quick);
  bench_quantized_experts<Fp32Math>(quick);
  if (moeslice::bench::bf16_runs_here()) {
    bench_linear<Bf16Math>(quick);
    bench_quantized_experts<Bf16Math>(quick);
  }
  return 0;
}
