// Random checkpoints: config from the family profile, weights from a seeded generator.
#include "model/random_checkpoint.h"

#include <cmath>
#include <vector>

#include <fmt/core.h>

#include "common/atomic_output.h"
#include "common/error.h"
#include "format/safetensors/checkpoint.h"
#include "format/safetensors/writer.h"
#include "model/model_spec.h"

namespace moeslice {
namespace {

using nlohmann::json;

// Small defaults: a model that runs in milliseconds.
const std::map<std::string, int64_t>& default_dims() {
  static const std::map<std::string, int64_t> dims = {
      {"layers", 2},  {"hidden", 64}, {"heads", 4}, {"kv_heads", 2},
      {"vocab", 256}, {"experts", 8}, {"top_k", 2}, {"expert_width", 32}};
  return dims;
}

// splitmix64: a tiny, fast, well-mixed generator; one stream per tensor so the bytes of a
// tensor do not depend on which tensors were written before it.
struct SplitMix64 {
  uint64_t state;
  uint64_t next() {
    uint64_t z = (state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  // Uniform in [-1, 1).
  float symmetric() {
    return static_cast<float>(static_cast<int64_t>(next() >> 11) - (1ll << 52)) /
           static_cast<float>(1ll << 52);
  }
};

uint64_t name_hash(const std::string& name) {
  uint64_t hash = 1469598103934665603ull;  // FNV-1a
  for (unsigned char c : name) hash = (hash ^ c) * 1099511628211ull;
  return hash;
}

// How a tensor's values are drawn: uniform around `center` with standard deviation `scale`.
struct Distribution {
  float center = 0;
  float scale = 0;
};

Distribution distribution_for(const ResolvedTensor& tensor) {
  const std::string& role = tensor.role;
  const bool is_norm = role.find("norm") != std::string::npos;
  if (is_norm) return {1.0f, 0.1f};
  if (role == "embed") return {0.0f, 1.0f};
  if (role == "sinks" || role.find("bias") != std::string::npos) return {0.0f, 0.1f};
  // Linear layers: std 1/sqrt(fan_in) keeps activations at unit scale; routers get a wider
  // spread so that routing is decisive rather than a near-tie.
  const int64_t fan_in = tensor.shape.size() >= 2 ? tensor.shape[tensor.shape.size() - 1] : 1;
  const float base = 1.0f / std::sqrt(static_cast<float>(std::max<int64_t>(fan_in, 1)));
  if (role == "router" || role == "shared_expert_gate") return {0.0f, 4.0f * base};
  return {0.0f, base};
}

TensorSource random_tensor(const ResolvedTensor& tensor, DType dtype, uint64_t seed) {
  TensorSource source;
  source.name = tensor.name;
  source.dtype = dtype;
  source.shape = tensor.shape;
  const Distribution distribution = distribution_for(tensor);
  const uint64_t stream = seed * 0x9e3779b97f4a7c15ull ^ name_hash(tensor.name);
  source.produce = [count = static_cast<size_t>(source.byte_size() * 8 / dtype_bits(dtype)),
                    distribution, stream, dtype](const ByteSink& sink) {
    SplitMix64 random{stream};
    constexpr size_t kChunk = 1 << 16;
    const float half_width = distribution.scale * std::sqrt(3.0f);  // uniform with that std
    std::vector<float> values(kChunk);
    std::vector<std::byte> bytes(kChunk * dtype_bits(dtype) / 8);
    for (size_t done = 0; done < count; done += kChunk) {
      const size_t n = std::min(kChunk, count - done);
      for (size_t i = 0; i < n; ++i)
        values[i] = distribution.center + half_width * random.symmetric();
      convert_from_f32(dtype, values.data(), bytes.data(), n);
      sink(std::span<const std::byte>(bytes.data(), n * dtype_bits(dtype) / 8));
    }
  };
  return source;
}

void set_dim(json& config, const FamilyProfile& family, const std::string& dim, int64_t value) {
  const DimRule* rule = family.find_dim(dim);
  if (rule == nullptr || rule->key.empty()) {
    if (rule != nullptr && rule->value && *rule->value == value) return;
    throw InputError(fmt::format("the {} family has no configurable '{}'", family.family, dim));
  }
  config[rule->key] = value;
}

}  // namespace

json random_model_config(const RandomModelOptions& options) {
  const FamilyProfile& family = family_by_name(options.family);
  json config = family.random_config;
  std::map<std::string, int64_t> dims = default_dims();
  for (const auto& [name, value] : options.dims) dims[name] = value;
  if (!options.dims.count("kv_heads")) dims["kv_heads"] = std::min(dims["kv_heads"], dims["heads"]);
  for (const auto& [name, value] : dims) {
    if (value <= 0) throw InputError(fmt::format("--{} must be positive, found {}", name, value));
    set_dim(config, family, name, value);
  }
  // Keys the options do not cover but the family requires: widths of shared experts and dense
  // layers follow the expert width.
  for (const auto& [name, rule] : family.dims) {
    if (rule.key.empty() || rule.fallback || rule.expr || rule.value || config.contains(rule.key))
      continue;
    if (name == "shared_expert_width" || name == "dense_width")
      config[rule.key] = 2 * dims["expert_width"];
  }
  config["torch_dtype"] = options.dtype == DType::BF16  ? "bfloat16"
                          : options.dtype == DType::F16 ? "float16"
                                                        : "float32";
  for (const auto& [key, value] : options.config_overrides.items()) config[key] = value;
  // A size key the profile's random_config lists as null is written with its resolved value
  // (real Qwen3 configs state head_dim even when it equals hidden / heads).
  std::vector<std::string> to_fill;
  for (const auto& [name, rule] : family.dims)
    if (!rule.key.empty() && config.contains(rule.key) && config[rule.key].is_null())
      to_fill.push_back(name);
  if (!to_fill.empty()) {
    json partial = config;
    for (const auto& name : to_fill) partial.erase(family.find_dim(name)->key);
    const ModelSpec spec = resolve_model_spec(partial, kConfigFileName);
    for (const auto& name : to_fill) config[family.find_dim(name)->key] = spec.dim(name);
  }
  return config;
}

uint64_t write_random_checkpoint(const RandomModelOptions& options,
                                 const std::filesystem::path& out_dir) {
  if (!is_compute_float(options.dtype))
    throw InputError(
        fmt::format("--dtype must be f32, bf16 or f16, found {}", dtype_name(options.dtype)));
  const json config = random_model_config(options);
  const ModelSpec spec = resolve_model_spec(config, out_dir / kConfigFileName);

  std::vector<TensorSource> tensors;
  auto add = [&](const ResolvedTensor& tensor) {
    if (!tensor.optional) tensors.push_back(random_tensor(tensor, options.dtype, options.seed));
  };
  for (const auto& tensor : spec.model_tensors) add(tensor);
  for (const auto& layer : spec.layers) {
    for (const auto& tensor : layer.tensors) add(tensor);
    for (const auto& expert : layer.experts)
      for (const auto& tensor : expert) add(tensor);
  }
  // gpt-oss keeps its experts fused; write the plain (not MXFP4) form.
  if (spec.family->routing == RoutingKind::kGptOssTopKSoftmax)
    for (const auto& layer : spec.layers)
      for (const auto& tensor : layer.tensors)
        if (tensor.role == "gate_up_proj" || tensor.role == "down_proj")
          tensors.push_back(random_tensor(tensor, options.dtype, options.seed));

  AtomicOutputDir output(out_dir, options.overwrite);
  SafetensorsWriter().write(output.staging(), config, tensors,
                            {{"moeslice", "make-random"}, {"seed", std::to_string(options.seed)}},
                            {.max_shard_bytes = options.max_shard_bytes});
  output.commit();
  uint64_t total = 0;
  for (const auto& tensor : tensors) total += tensor.byte_size();
  return total;
}

}  // namespace moeslice
