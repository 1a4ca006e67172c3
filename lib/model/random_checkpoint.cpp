// Random checkpoints: config from the family profile, weights from a seeded generator.
#include "model/random_checkpoint.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include <fmt/core.h>

#include "common/atomic_output.h"
#include "common/error.h"
#include "common/json_parse.h"
#include "format/safetensors/checkpoint.h"
#include "format/safetensors/writer.h"
#include "model/model_spec.h"
#include "model/weight_quantization.h"

namespace moeslice {
namespace {

using nlohmann::json;

// Small defaults: a model that runs in milliseconds.
const std::map<Dim, int64_t>& default_dims() {
  static const std::map<Dim, int64_t> dims = {
      {Dim::kLayers, 2},  {Dim::kHidden, 64}, {Dim::kHeads, 4}, {Dim::kKvHeads, 2},
      {Dim::kVocab, 256}, {Dim::kExperts, 8}, {Dim::kTopK, 2},  {Dim::kExpertWidth, 32}};
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
  const RoleKind kind = role_kind(tensor.role);
  if (kind == RoleKind::kNorm) return {1.0f, 0.1f};
  if (kind == RoleKind::kEmbedding) return {0.0f, 1.0f};
  if (kind == RoleKind::kAdditive) return {0.0f, 0.1f};
  // Linear layers: std 1/sqrt(fan_in) keeps activations at unit scale; routers get a wider
  // spread so that routing is decisive rather than a near-tie.
  const int64_t fan_in = tensor.shape.size() >= 2 ? tensor.shape[tensor.shape.size() - 1] : 1;
  const float base = 1.0f / std::sqrt(static_cast<float>(std::max<int64_t>(fan_in, 1)));
  if (kind == RoleKind::kGate) return {0.0f, 4.0f * base};
  return {0.0f, base};
}

bool is_mxfp4_part(TensorRole role) {
  return role == TensorRole::kGateUpProjBlocks || role == TensorRole::kGateUpProjScales ||
         role == TensorRole::kDownProjBlocks || role == TensorRole::kDownProjScales;
}

// MXFP4 blocks (uniform random bytes: two FP4 codes each) or their scales (one E8M0 exponent per
// 32 values, chosen so the values have about the std 1/sqrt(fan_in) of a plain Linear: random
// codes have an RMS of about 2.9).
TensorSource random_mxfp4_tensor(const ResolvedTensor& tensor, uint64_t seed) {
  TensorSource source;
  source.name = tensor.name;
  source.dtype = DType::U8;
  source.shape = tensor.shape;
  const bool scales =
      tensor.role == TensorRole::kGateUpProjScales || tensor.role == TensorRole::kDownProjScales;
  const int64_t fan_in =
      32 * (scales ? tensor.shape.back() : tensor.shape[tensor.shape.size() - 2]);
  const double exponent = std::round(std::log2(1.0 / std::sqrt(static_cast<double>(fan_in)) / 2.9));
  const auto scale = static_cast<uint8_t>(std::clamp(127.0 + exponent, 1.0, 254.0));
  const uint64_t stream = seed * 0x9e3779b97f4a7c15ull ^ name_hash(tensor.name);
  source.produce = [count = static_cast<size_t>(source.byte_size()), scales, scale,
                    stream](const ByteSink& sink) {
    SplitMix64 random{stream};
    constexpr size_t kChunk = 1 << 16;
    std::vector<std::byte> bytes(kChunk);
    for (size_t done = 0; done < count; done += kChunk) {
      const size_t n = std::min(kChunk, count - done);
      for (size_t i = 0; i < n; ++i)
        bytes[i] = static_cast<std::byte>(scales ? scale : random.next() >> 56);
      sink(std::span<const std::byte>(bytes.data(), n));
    }
  };
  return source;
}

// A tensor's random values in order (row-major), drawn from its own stream.
class RandomValues {
 public:
  RandomValues(const ResolvedTensor& tensor, uint64_t seed)
      : distribution_(distribution_for(tensor)),
        random_{seed * 0x9e3779b97f4a7c15ull ^ name_hash(tensor.name)} {}
  // The next `count` values.
  void draw(float* out, size_t count) {
    const float half_width = distribution_.scale * std::sqrt(3.0f);  // uniform with that std
    for (size_t i = 0; i < count; ++i)
      out[i] = distribution_.center + half_width * random_.symmetric();
  }

 private:
  Distribution distribution_;
  SplitMix64 random_;
};

TensorSource random_tensor(const ResolvedTensor& tensor, DType dtype, uint64_t seed) {
  TensorSource source;
  source.name = tensor.name;
  source.dtype = dtype;
  source.shape = tensor.shape;
  source.produce = [count = static_cast<size_t>(source.byte_size() * 8 / dtype_bits(dtype)), tensor,
                    seed, dtype](const ByteSink& sink) {
    RandomValues random(tensor, seed);
    constexpr size_t kChunk = 1 << 16;
    std::vector<float> values(kChunk);
    std::vector<std::byte> bytes(kChunk * dtype_bits(dtype) / 8);
    for (size_t done = 0; done < count; done += kChunk) {
      const size_t n = std::min(kChunk, count - done);
      random.draw(values.data(), n);
      convert_from_f32(dtype, values.data(), bytes.data(), n);
      sink(std::span<const std::byte>(bytes.data(), n * dtype_bits(dtype) / 8));
    }
  };
  return source;
}

// Whether make-random --dtype fp8 stores `tensor` as block-scaled FP8: the Linear weights, as
// DeepSeek-V3's release does; embeddings, the LM head, routers, norms and biases stay BF16.
bool quantized_as_fp8(const ResolvedTensor& tensor) {
  return role_kind(tensor.role) == RoleKind::kMatrix && tensor.shape.size() == 2 &&
         tensor.role != TensorRole::kLmHead;
}

// The random values of `tensor` (the same as its F32 form) quantized to FP8 E4M3 with one scale
// per block, scale = amax / 448 as DeepSeek's act_quant/weight quantization computes it: the
// weight (`scales` false) or its `_scale_inv` tensor of those scales (`scales` true, F32).
// Values are drawn one band of block_rows rows at a time.
TensorSource random_fp8_tensor(const ResolvedTensor& tensor, const Fp8BlockScaling& blocks,
                               uint64_t seed, bool scales) {
  const auto rows = static_cast<size_t>(tensor.shape[0]);
  const auto cols = static_cast<size_t>(tensor.shape[1]);
  const auto block_rows = static_cast<size_t>(blocks.block_rows);
  const auto block_cols = static_cast<size_t>(blocks.block_cols);
  const size_t scale_cols = (cols + block_cols - 1) / block_cols;
  TensorSource source;
  source.name = scales ? scale_inv_name(tensor.name) : tensor.name;
  source.dtype = scales ? DType::F32 : DType::F8_E4M3;
  source.shape =
      scales ? std::vector<int64_t>{static_cast<int64_t>((rows + block_rows - 1) / block_rows),
                                    static_cast<int64_t>(scale_cols)}
             : tensor.shape;
  source.produce = [=](const ByteSink& sink) {
    RandomValues random(tensor, seed);
    std::vector<float> band, band_scales(scale_cols);
    std::vector<uint8_t> codes;
    for (size_t begin = 0; begin < rows; begin += block_rows) {
      const size_t count = std::min(block_rows, rows - begin);
      band.resize(count * cols);
      random.draw(band.data(), band.size());
      for (size_t block = 0; block < scale_cols; ++block) {
        float amax = 0;
        const size_t end = std::min(cols, (block + 1) * block_cols);
        for (size_t r = 0; r < count; ++r)
          for (size_t c = block * block_cols; c < end; ++c)
            amax = std::max(amax, std::fabs(band[r * cols + c]));
        band_scales[block] = amax > 0 ? amax / 448.0f : 1.0f;
      }
      if (scales) {
        sink(std::as_bytes(std::span<const float>(band_scales)));
        continue;
      }
      codes.resize(band.size());
      for (size_t i = 0; i < band.size(); ++i)
        codes[i] = f32_to_e4m3(band[i] / band_scales[(i % cols) / block_cols]);
      sink(std::as_bytes(std::span<const uint8_t>(codes)));
    }
  };
  return source;
}

void set_dim(json& config, const FamilyProfile& family, Dim dim, int64_t value) {
  const DimRule* rule = family.find_dim(dim);
  if (rule == nullptr || rule->key.empty()) {
    if (rule != nullptr && rule->value && *rule->value == value) return;
    throw InputError(
        fmt::format("the {} family has no configurable '{}'", family.family, name(dim)));
  }
  config[rule->key] = value;
}

}  // namespace

json random_model_config(const RandomModelOptions& options) {
  const FamilyProfile& family = family_by_name(options.family);
  json config = family.random_config;
  std::map<Dim, int64_t> dims = default_dims();
  for (const auto& [dim, value] : options.dims) dims[dim] = value;
  // MLA has one key/value head per query head.
  if (!options.dims.count(Dim::kKvHeads))
    dims[Dim::kKvHeads] = family.attention == AttentionKind::kMla
                              ? dims[Dim::kHeads]
                              : std::min(dims[Dim::kKvHeads], dims[Dim::kHeads]);
  // In name order, so that the first bad size reported does not depend on the enum's order.
  std::vector<std::pair<Dim, int64_t>> by_name(dims.begin(), dims.end());
  std::sort(by_name.begin(), by_name.end(),
            [](const auto& a, const auto& b) { return name(a.first) < name(b.first); });
  for (const auto& [dim, value] : by_name) {
    if (value <= 0)
      throw InputError(fmt::format("--{} must be positive, found {}", name(dim), value));
    set_dim(config, family, dim, value);
  }
  // Keys the options do not cover but the family requires: widths of shared experts and dense
  // layers follow the expert width.
  for (const auto& [dim, rule] : family.dims) {
    if (rule.key.empty() || rule.fallback || rule.expr || rule.value || config.contains(rule.key))
      continue;
    if (dim == Dim::kSharedExpertWidth || dim == Dim::kDenseWidth)
      config[rule.key] = 2 * dims[Dim::kExpertWidth];
  }
  config["torch_dtype"] = options.dtype == DType::BF16 || options.dtype == DType::F8_E4M3
                              ? "bfloat16"
                          : options.dtype == DType::F16 ? "float16"
                                                        : "float32";
  if (options.dtype == DType::F8_E4M3)
    config["quantization_config"] = fp8_quantization_config(Fp8BlockScaling{});
  for (const auto& [key, value] : options.config_overrides.items()) config[key] = value;
  // A size key the profile's random_config lists as null is written with its resolved value
  // (real Qwen3 configs state head_dim even when it equals hidden / heads).
  std::vector<Dim> to_fill;
  for (const auto& [dim, rule] : family.dims)
    if (!rule.key.empty() && config.contains(rule.key) && config[rule.key].is_null())
      to_fill.push_back(dim);
  if (!to_fill.empty()) {
    json partial = config;
    for (Dim dim : to_fill) partial.erase(family.find_dim(dim)->key);
    const ModelSpec spec = resolve_model_spec(partial, kConfigFileName);
    for (Dim dim : to_fill) config[family.find_dim(dim)->key] = spec.dim(dim);
  }
  return config;
}

uint64_t write_random_checkpoint(const RandomModelOptions& options,
                                 const std::filesystem::path& out_dir) {
  const bool fp8 = options.dtype == DType::F8_E4M3;
  if (!is_compute_float(options.dtype) && !fp8)
    throw InputError(
        fmt::format("--dtype must be f32, bf16, f16 or fp8, found {}", dtype_name(options.dtype)));
  json config = random_model_config(options);
  const ModelSpec spec = resolve_model_spec(config, out_dir / kConfigFileName);
  if (options.mxfp4_experts) {
    bool has_mxfp4 = false;
    for (const TensorRule& rule : spec.family->sparse_tensors)
      has_mxfp4 = has_mxfp4 || rule.role == TensorRole::kGateUpProjBlocks;
    if (!has_mxfp4)
      throw InputError(
          fmt::format("--dtype mxfp4: the {} family's experts have no MXFP4 form "
                      "(gpt_oss's have)",
                      spec.family->family));
    // As the released gpt-oss checkpoints say it.
    config["quantization_config"] = {{"modules_to_not_convert",
                                      {"model.layers.*.self_attn", "model.layers.*.mlp.router",
                                       "model.embed_tokens", "lm_head"}},
                                     {"quant_method", "mxfp4"}};
  }
  const std::optional<Fp8BlockScaling> blocks = fp8_block_scaling(config);
  if (fp8 && !blocks)
    throw InputError(fmt::format(
        "--dtype fp8 writes block-scaled FP8 weights, but the config's quantization_config is {}: "
        "{}",
        json_excerpt(config["quantization_config"]),
        quantization_refusal(config).value_or("not quant_method \"fp8\"")));

  std::vector<TensorSource> tensors;
  for (const ResolvedTensor* tensor : spec.fresh_tensors(options.mxfp4_experts)) {
    if (is_mxfp4_part(tensor->role)) {
      tensors.push_back(random_mxfp4_tensor(*tensor, options.seed));
    } else if (fp8 && quantized_as_fp8(*tensor)) {
      tensors.push_back(random_fp8_tensor(*tensor, *blocks, options.seed, false));
      tensors.push_back(random_fp8_tensor(*tensor, *blocks, options.seed, true));
    } else {
      tensors.push_back(random_tensor(*tensor, fp8 ? DType::BF16 : options.dtype, options.seed));
    }
  }

  AtomicOutputDir output(out_dir, options.overwrite);
  output.fill([&](const std::filesystem::path& staging) {
    SafetensorsWriter().write(staging, config, tensors,
                              {{"moeslice", "make-random"}, {"seed", std::to_string(options.seed)}},
                              {.max_shard_bytes = options.max_shard_bytes});
  });
  output.commit();
  uint64_t total = 0;
  for (const auto& tensor : tensors) total += tensor.byte_size();
  return total;
}

}  // namespace moeslice
