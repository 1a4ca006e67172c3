// Throughput of the tokenizer.json tokenizer (lib/text): load time, then encode MB/s on about
// 4 MB of mixed real text (C headers, licence texts, Python sources), one thread, for the OLMoE
// and dolma2 tokenizers, with a cold and a warm word cache. Prints numbers; not a test.
// Usage: bench_tokenizer [--mb N] [tokenizer.json ...]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "text/tokenizer.h"
#include "text/tokenizer_unicode.h"

namespace fs = std::filesystem;

namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// CPU time of the calling thread: on a shared machine wall time mostly measures the neighbours.
double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

std::vector<fs::path> list_files(const fs::path& dir, const std::string& extension) {
  std::vector<fs::path> files;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (entry.is_regular_file() && (extension.empty() || entry.path().extension() == extension)) {
      files.push_back(entry.path());
    }
  }
  std::sort(files.begin(), files.end());
  return files;
}

// Round-robin over the three sources so the text mixes code, prose and licences; files that are
// not UTF-8 are skipped (the tokenizer takes text, not bytes).
std::string gather_text(size_t limit) {
  std::vector<std::vector<fs::path>> sources = {list_files("/usr/include", ".h"),
                                                list_files("/usr/share/common-licenses", ""),
                                                list_files("/usr/lib/python3.11", ".py")};
  std::string text;
  std::vector<size_t> next(sources.size(), 0);
  bool any = true;
  while (text.size() < limit && any) {
    any = false;
    for (size_t s = 0; s < sources.size() && text.size() < limit; ++s) {
      if (next[s] >= sources[s].size()) continue;
      any = true;
      std::ifstream in(sources[s][next[s]++], std::ios::binary);
      std::ostringstream ss;
      ss << in.rdbuf();
      const std::string content = ss.str();
      if (moeslice::text::find_invalid_utf8(content) != std::string::npos) continue;
      text += content.substr(0, limit - text.size());
    }
  }
  // A cut may have split the last character.
  while (!text.empty() && moeslice::text::find_invalid_utf8(text) != std::string::npos) {
    text.pop_back();
  }
  return text;
}

}  // namespace

int main(int argc, char** argv) {
  double megabytes = 4.0;
  std::vector<fs::path> tokenizers;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--mb" && i + 1 < argc) {
      megabytes = std::atof(argv[++i]);
    } else {
      tokenizers.emplace_back(arg);
    }
  }
  if (tokenizers.empty()) {
    const fs::path data = fs::path(__FILE__).parent_path().parent_path() / "tests/data/tokenizers";
    tokenizers = {data / "olmoe-tokenizer.json", data / "dolma2-tokenizer.json"};
  }
  const std::string text = gather_text(static_cast<size_t>(megabytes * 1024 * 1024));
  const double mb = static_cast<double>(text.size()) / 1e6;
  std::printf("text: %.2f MB (C headers, licences, Python), %u hardware threads\n", mb,
              std::thread::hardware_concurrency());
  for (const fs::path& path : tokenizers) {
    try {
      auto start = std::chrono::steady_clock::now();
      const moeslice::Tokenizer tokenizer = moeslice::Tokenizer::from_file(path);
      const double load = seconds_since(start);

      start = std::chrono::steady_clock::now();
      double cpu = thread_cpu_seconds();
      const auto ids = tokenizer.encode(text);
      const double cold = seconds_since(start);
      const double cold_cpu = thread_cpu_seconds() - cpu;

      double warm = 1e300;
      double warm_cpu = 1e300;
      for (int rep = 0; rep < 3; ++rep) {
        start = std::chrono::steady_clock::now();
        cpu = thread_cpu_seconds();
        const auto again = tokenizer.encode(text);
        warm = std::min(warm, seconds_since(start));
        warm_cpu = std::min(warm_cpu, thread_cpu_seconds() - cpu);
        if (again != ids) std::printf("  WARNING: encodes differ between runs\n");
      }

      start = std::chrono::steady_clock::now();
      const std::string back = tokenizer.decode(ids);
      const double decode = seconds_since(start);

      std::printf("%s: load %.3f s, %zu tokens (%.2f bytes/token)\n",
                  path.filename().string().c_str(), load, ids.size(),
                  static_cast<double>(text.size()) / static_cast<double>(ids.size()));
      std::printf("  encode, wall time: %.1f MB/s cold cache, %.1f MB/s warm cache\n", mb / cold,
                  mb / warm);
      std::printf("  encode, CPU time:  %.1f MB/s cold cache, %.1f MB/s warm cache\n",
                  mb / cold_cpu, mb / warm_cpu);
      std::printf("  decode, wall time: %.1f MB/s%s\n", mb / decode,
                  back == text ? "" : " (differs from the input: normalised text)");
    } catch (const std::exception& e) {
      std::printf("%s: error: %s\n", path.string().c_str(), e.what());
      return 1;
    }
  }
  return 0;
}
