// Whole forward-pass throughput (lib/forward) on a real checkpoint and token corpus, in fp32 or
// bf16 compute: tokens/s, achieved GFLOP/s and peak RSS, as JSON lines next to
// bench/torch_olmoe_baseline.py's. Builds nothing itself: give it a checkpoint (e.g. one written by
// `moeslice make-random`) and a JSON Lines corpus of {"input_ids": [...]}.
//
// GFLOP counts 2*M*N*K for every GEMM the pass actually runs: attention q/k/v/o projections, the
// router, shared-expert and dense MLPs, the chosen experts' gate/up/down (M = tokens routed to
// each expert, from the routing observed), the LM head, and the attention score and
// probability-times-value products as the kernel runs them (128-query blocks against all keys up
// to the block's end).
//
// Usage: bench_forward --model DIR --corpus FILE [--compute fp32|bf16] [--threads N]
//                      [--repeat R] [--skip-lm-head]
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <fstream>
#include <span>
#include <string>
#include <vector>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "forward/forward_pass.h"
#include "kernels/gemm.h"
#include "kernels/gemm_bf16.h"
#include "model/model_spec.h"

using namespace moeslice;

namespace {

struct Args {
  std::string model;
  std::string corpus;
  ComputeMode compute = ComputeMode::kFp32;
  size_t threads = 0;
  int repeat = 1;
  bool skip_lm_head = false;
};

[[noreturn]] void usage(const std::string& problem) {
  std::fprintf(stderr,
               "bench_forward: %s\nusage: bench_forward --model DIR --corpus FILE "
               "[--compute fp32|bf16] [--threads N] [--repeat R] [--skip-lm-head]\n",
               problem.c_str());
  std::exit(2);
}

Args parse_args(int argc, char** argv) {
  Args args;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage(flag + " needs a value");
      return argv[++i];
    };
    if (flag == "--model") {
      args.model = value();
    } else if (flag == "--corpus") {
      args.corpus = value();
    } else if (flag == "--compute") {
      const std::string mode = value();
      if (mode == "fp32")
        args.compute = ComputeMode::kFp32;
      else if (mode == "bf16")
        args.compute = ComputeMode::kBf16;
      else
        usage("--compute must be fp32 or bf16, not " + mode);
    } else if (flag == "--threads") {
      args.threads = std::stoul(value());
    } else if (flag == "--repeat") {
      args.repeat = std::stoi(value());
    } else if (flag == "--skip-lm-head") {
      args.skip_lm_head = true;
    } else {
      usage("unknown flag " + flag);
    }
  }
  if (args.model.empty() || args.corpus.empty()) usage("--model and --corpus are required");
  if (args.repeat < 1) usage("--repeat must be at least 1");
  return args;
}

// Only what the benchmark needs: one {"input_ids": [...]} per non-blank line.
std::vector<std::vector<int32_t>> read_documents(const std::string& path) {
  std::ifstream in(path);
  if (!in) usage("cannot read " + path);
  std::vector<std::vector<int32_t>> documents;
  std::string line;
  while (std::getline(in, line)) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    documents.push_back(nlohmann::json::parse(line).at("input_ids").get<std::vector<int32_t>>());
  }
  if (documents.empty()) usage(path + " has no documents");
  return documents;
}

int64_t elements(const ResolvedTensor& tensor) {
  return tensor.shape.size() == 2 ? tensor.shape[0] * tensor.shape[1] : 0;
}

// Counts GEMM flops per MoE layer from the observed routing.
class FlopCounter : public ForwardObserver {
 public:
  explicit FlopCounter(const ModelSpec& spec) : spec_(spec) {}
  void on_moe_layer(const MoeLayerEvent& event) override {
    const LayerSpec& layer = spec_.layers[static_cast<size_t>(event.layer)];
    for (int32_t expert : event.chosen) {
      if (expert < 0) continue;
      for (const ResolvedTensor& tensor : layer.experts[static_cast<size_t>(expert)])
        flops += 2.0 * static_cast<double>(elements(tensor));
    }
  }
  double flops = 0;

 private:
  const ModelSpec& spec_;
};

// Flops that do not depend on routing, for one window of n tokens.
double fixed_flops(const ModelSpec& spec, int64_t last_layer, bool lm_head, size_t n) {
  const auto tokens = static_cast<double>(n);
  double flops = 0;
  for (int64_t l = 0; l <= last_layer; ++l)
    for (const ResolvedTensor& tensor : spec.layers[static_cast<size_t>(l)].tensors)
      flops +=
          2.0 * tokens * static_cast<double>(elements(tensor));  // every 2-D tensor is a Linear
  // Attention: per head and 128-query block, [rows x keys] scores and [rows x keys] x [keys x hd].
  double attention = 0;
  for (size_t begin = 0; begin < n; begin += 128) {
    const size_t rows = std::min<size_t>(128, n - begin);
    attention += 2.0 * 2.0 * static_cast<double>(rows) * static_cast<double>(begin + rows) *
                 static_cast<double>(spec.head_dim);
  }
  flops += attention * static_cast<double>(spec.heads) * static_cast<double>(last_layer + 1);
  if (lm_head) flops += 2.0 * tokens * static_cast<double>(spec.vocab * spec.hidden);
  return flops;
}

// User + system CPU seconds of the process so far: next to wall time, it shows how much of a
// slow run was a busy machine (CPU time below threads * wall time).
double cpu_seconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  auto seconds = [](const timeval& t) {
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) * 1e-6;
  };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

double peak_rss_mb() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;  // KiB on Linux
}

int run(const Args& args) {
  const Model model = open_model(args.model);
  const std::vector<std::vector<int32_t>> documents = read_documents(args.corpus);
  ForwardOptions options;
  options.threads = args.threads;
  options.compute = args.compute;
  options.skip_lm_head = args.skip_lm_head;
  ForwardPass forward(model, options);
  const int64_t last_layer = model.spec.num_layers - 1;

  size_t tokens = 0;
  double routed_independent = 0;
  for (const auto& document : documents) {
    tokens += document.size();
    for (const Window& window : forward.windows_for(document.size()))
      routed_independent += fixed_flops(model.spec, last_layer, !args.skip_lm_head, window.length);
  }
  const std::string compute(compute_mode_name(args.compute));
  fmt::print(
      "{{\"what\": \"moeslice_setup\", \"compute\": \"{}\", \"threads\": {}, "
      "\"fp32_gemm\": \"{}\", \"bf16_gemm\": \"{}\", \"documents\": {}, \"tokens\": {}, "
      "\"rss_mb_after_open\": {:.1f}}}\n",
      compute, args.threads, kernels::gemm_backend(), kernels::bf16_gemm_backend(),
      documents.size(), tokens, peak_rss_mb());

  // Warm-up on a short prefix, as the PyTorch baseline does.
  const std::vector<int32_t>& first = documents.front();
  forward.run(std::span<const int32_t>(first.data(), std::min<size_t>(first.size(), 16)));

  double best = 1e300;
  for (int r = 0; r < args.repeat; ++r) {
    FlopCounter counter(model.spec);
    const double cpu_start = cpu_seconds();
    const auto start = std::chrono::steady_clock::now();
    for (const auto& document : documents) forward.run(document, &counter);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    best = std::min(best, seconds);
    const double cpu = cpu_seconds() - cpu_start;
    const double flops = routed_independent + counter.flops;
    fmt::print(
        "{{\"what\": \"moeslice_forward\", \"compute\": \"{}\", \"lm_head\": {}, "
        "\"repeat\": {}, \"tokens\": {}, \"seconds\": {:.3f}, \"cpu_seconds\": {:.3f}, "
        "\"tokens_per_s\": {:.1f}, \"gflop\": {:.1f}, \"gflops_per_s\": {:.1f}, "
        "\"peak_rss_mb\": {:.1f}}}\n",
        compute, args.skip_lm_head ? "false" : "true", r, tokens, seconds, cpu,
        static_cast<double>(tokens) / seconds, flops / 1e9, flops / seconds / 1e9, peak_rss_mb());
    std::fflush(stdout);
  }
  fmt::print(
      "{{\"what\": \"moeslice_forward_best\", \"compute\": \"{}\", \"tokens_per_s\": "
      "{:.1f}, \"peak_rss_mb\": {:.1f}}}\n",
      compute, static_cast<double>(tokens) / best, peak_rss_mb());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(parse_args(argc, argv));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_forward: %s\n", e.what());
    return 2;
  }
}
