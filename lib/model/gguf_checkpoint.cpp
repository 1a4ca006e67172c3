// A GGUF model as its family's checkpoint: the config from {arch}.* metadata, the spec's tensors
// found by role in llama.cpp's name table, expert matrices as slices of the stacked tensors.
#include "model/gguf_checkpoint.h"

#include <array>
#include <cstdlib>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <fmt/core.h>

#include "common/dtype.h"
#include "common/error.h"
#include "format/gguf/summary.h"
#include "model/gguf_architecture.h"

namespace moeslice {
namespace {

// glm4moe and deepseek2: DeepSeek's sigmoid group router (exp_probs_b, expert groups), shared
// experts, leading dense layers; glm4moe with partial rotary, deepseek2 with MLA.
bool group_routed(std::string_view architecture) {
  return architecture == "glm4moe" || architecture == "deepseek2";
}

// The architectures whose tensors and metadata llama.cpp's common name table and these keys
// describe completely.
bool forward_mapped(std::string_view architecture) {
  return architecture == "olmoe" || architecture == "qwen2moe" || architecture == "qwen3moe" ||
         architecture == "llama" || architecture == "gpt-oss" || group_routed(architecture);
}

const std::string* dim_key(const FamilyProfile& profile, Dim dim) {
  for (const auto& [d, rule] : profile.dims)
    if (d == dim && !rule.key.empty()) return &rule.key;
  return nullptr;
}

class ConfigBuilder {
 public:
  ConfigBuilder(const GgufModel& gguf, const FamilyProfile& profile)
      : gguf_(gguf), profile_(profile), arch_(gguf.metadata().architecture()) {}

  std::optional<uint64_t> arch_uint(std::string_view suffix) const {
    return gguf_.metadata().arch_uint(suffix);
  }
  uint64_t required_uint(std::string_view suffix) const {
    const std::optional<uint64_t> value = arch_uint(suffix);
    if (!value)
      throw ModelError(fmt::format("{}: key '{}.{}' is missing (the {} forward pass needs it)",
                                   gguf_.path().string(), arch_, suffix, profile_.family));
    return *value;
  }
  std::optional<double> arch_float(std::string_view suffix) const {
    return gguf_.metadata().get_float(arch_ + "." + std::string(suffix));
  }
  void set_dim(Dim dim, int64_t value) {
    if (const std::string* key = dim_key(profile_, dim)) config_[*key] = value;
  }
  void set_flag(Flag flag, bool value) {
    for (const auto& [f, rule] : profile_.flags)
      if (f == flag && !rule.key.empty()) config_[rule.key] = value;
  }
  void set_number(Number number, const std::optional<nlohmann::json>& value) {
    if (!value) return;
    for (const auto& [n, rule] : profile_.numbers)
      if (n == number && !rule.key.empty()) config_[rule.key] = *value;
  }
  nlohmann::json& config() { return config_; }

 private:
  const GgufModel& gguf_;
  const FamilyProfile& profile_;
  std::string arch_;
  nlohmann::json config_ = nlohmann::json::object();
};

const FamilyProfile& mapped_family(const GgufModel& gguf) {
  const std::string architecture = gguf.metadata().architecture();
  const std::string_view family = family_of_gguf_architecture(architecture);
  if (family.empty() || !forward_mapped(architecture))
    throw UnsupportedError(fmt::format(
        "{}: GGUF architecture '{}'; moeslice computes GGUF models of the architectures olmoe, "
        "qwen2moe, qwen3moe and llama (with experts), and of glm4moe, deepseek2 and gpt-oss, so "
        "far (inspect, slice and unslice read any)",
        gguf.path().string(), architecture));
  return family_by_name(family);
}

// The llama converter's Q/K permutation undone: Hugging Face row h*d + j*(d/2) + i (head h of
// `heads`, d rows each) is GGUF row h*d + 2*i + j. Rows are whole blocks in any ggml type.
std::vector<std::byte> unpermute_rows(const TensorView& view, int64_t heads) {
  const auto rows = static_cast<size_t>(view.shape.at(0));
  const size_t row_bytes = view.bytes.size() / rows;
  const size_t d = rows / static_cast<size_t>(heads);
  std::vector<std::byte> out(view.bytes.size());
  for (size_t h = 0; h < static_cast<size_t>(heads); ++h)
    for (size_t j = 0; j < 2; ++j)
      for (size_t i = 0; i < d / 2; ++i) {
        const size_t hf = h * d + j * (d / 2) + i, stored = h * d + 2 * i + j;
        std::copy_n(view.bytes.data() + stored * row_bytes, row_bytes, out.data() + hf * row_bytes);
      }
  return out;
}

// The GGUF's tensors under a ModelSpec's names: views of whole tensors, views of one expert's
// slice of a stacked tensor, and (llama's Q/K) owned copies in Hugging Face row order.
class GgufSpecStore final : public TensorStore {
 public:
  GgufSpecStore(std::shared_ptr<const GgufModel> gguf, nlohmann::json config)
      : gguf_(std::move(gguf)), config_(std::move(config)) {}

  std::string_view format_name() const override { return gguf_->format_name(); }
  const std::filesystem::path& path() const override { return gguf_->path(); }
  const nlohmann::json& config() const override { return config_; }
  const std::filesystem::path& config_path() const override { return gguf_->path(); }
  const std::map<std::string, const TensorView*>& tensors() const override { return tensors_; }
  std::vector<TensorFile> tensor_files() const override { return gguf_->tensor_files(); }
  std::vector<std::filesystem::path> side_files() const override { return {}; }
  std::vector<std::filesystem::path> input_paths() const override { return gguf_->input_paths(); }
  std::optional<FileRange> file_range(const TensorView& tensor) const override {
    const Origin* origin = origin_of(tensor);
    if (origin == nullptr) return std::nullopt;
    std::optional<FileRange> range = gguf_->file_range(*origin->source);
    if (range) {
      range->offset += origin->offset;
      range->length = tensor.bytes.size();
    }
    return range;
  }
  void release_pages(const TensorView& tensor, uint64_t offset, uint64_t length) const override {
    if (const Origin* origin = origin_of(tensor))
      gguf_->release_pages(*origin->source, origin->offset + offset, length);
  }
  using TensorStore::release_pages;
  void check_unchanged() const override { gguf_->check_unchanged(); }

  // `source` (or bytes [offset, offset + size) of it) as `name` of `shape`.
  void add_view(const std::string& name, const TensorView& source, std::vector<int64_t> shape,
                uint64_t offset, uint64_t size) {
    TensorView& view = views_.emplace_back(
        TensorView{name, source.dtype, std::move(shape), source.bytes.subspan(offset, size)});
    tensors_[name] = &view;
    origins_[&view] = Origin{&source, offset};
  }
  void add_owned(const std::string& name, const TensorView& source, std::vector<std::byte> bytes) {
    add_owned(name, source.dtype, source.shape, std::move(bytes));
  }
  void add_owned(const std::string& name, DType dtype, std::vector<int64_t> shape,
                 std::vector<std::byte> bytes) {
    const std::vector<std::byte>& kept = owned_.emplace_back(std::move(bytes));
    TensorView& view = views_.emplace_back(TensorView{name, dtype, std::move(shape), kept});
    tensors_[name] = &view;
  }

 private:
  struct Origin {
    const TensorView* source = nullptr;
    uint64_t offset = 0;
  };
  const Origin* origin_of(const TensorView& tensor) const {
    const auto found = origins_.find(&tensor);
    return found == origins_.end() ? nullptr : &found->second;
  }

  std::shared_ptr<const GgufModel> gguf_;
  nlohmann::json config_;
  std::deque<TensorView> views_;
  std::deque<std::vector<std::byte>> owned_;
  std::map<std::string, const TensorView*> tensors_;
  std::map<const TensorView*, Origin> origins_;
};

std::string gguf_name_of(std::string_view architecture, const ResolvedTensor& tensor,
                         std::optional<int64_t> layer, bool expert) {
  const GgufTensorName name = architecture == "gpt-oss"
                                  ? gpt_oss_gguf_tensor_name(tensor.role)
                                  : gguf_tensor_name(architecture, tensor.role, expert);
  if (name.name.empty()) return {};
  return layer ? fmt::format("blk.{}.{}", *layer, name.name) : std::string(name.name);
}

// Places the GGUF tensor of `tensor` (of layer `layer`, expert `expert`) in the store.
class TensorPlacer {
 public:
  TensorPlacer(const GgufModel& gguf, const ModelSpec& spec, GgufSpecStore& store)
      : gguf_(gguf),
        spec_(spec),
        store_(store),
        architecture_(gguf.metadata().architecture()),
        llama_(architecture_ == "llama") {}

  void place(const ResolvedTensor& tensor, std::optional<int64_t> layer,
             std::optional<int64_t> expert) {
    if (architecture_ == "gpt-oss" && tensor.role == TensorRole::kGateUpProjBias && layer)
      return place_interleaved_bias(tensor, *layer);
    const std::string name = gguf_name_of(architecture_, tensor, layer, expert.has_value());
    if (name.empty() && tensor.optional) return;  // a storage form GGUF files do not use
    if (name.empty())
      throw UnsupportedError(
          fmt::format("{}: the {} tensor '{}' has no GGUF name in moeslice's "
                      "table of llama.cpp tensor names",
                      gguf_.path().string(), spec_.family->family, tensor.name));
    const TensorView* source = gguf_.find(name);
    if (source == nullptr && tensor.role == TensorRole::kKvBProj && layer)
      return place_split_kv_b(tensor, *layer);
    if (source == nullptr) {
      if (tensor.optional) return;
      throw ModelError(
          fmt::format("{}: tensor '{}' is missing (the {} model its metadata "
                      "describes has shape {} there)",
                      gguf_.path().string(), name, spec_.family->family,
                      format_shape(expert ? stacked_shape(tensor) : tensor.shape)));
    }
    used_.insert(name);
    if (expert) return place_expert(tensor, *source, *expert);
    // The same elements in another grouping (a [1, hidden] gate stored as [hidden]) keep the
    // spec's shape; any other difference is check_checkpoint's to report.
    std::vector<int64_t> shape = source->shape;
    if (source->numel() == numel_of(tensor.shape) && !shape.empty() && !tensor.shape.empty() &&
        shape.back() == tensor.shape.back())
      shape = tensor.shape;
    const bool permuted = tensor.role == TensorRole::kQProj || tensor.role == TensorRole::kKProj;
    if (llama_ && permuted && source->shape == tensor.shape) {
      const int64_t heads = tensor.role == TensorRole::kQProj ? spec_.heads : spec_.kv_heads;
      if (heads > 0 && tensor.shape[0] % (2 * heads) == 0)
        return store_.add_owned(tensor.name, *source, unpermute_rows(*source, heads));
    }
    store_.add_view(tensor.name, *source, std::move(shape), 0, source->bytes.size());
  }

  // Every GGUF tensor has a place; a tensor nothing reads is refused, not ignored. The blocks
  // after the decoder layers are the multi-token-prediction layers (`blk.N.nextn.*` and a whole
  // layer), which moeslice does not compute (ModelSpec::mtp_layers).
  void check_all_used() const {
    for (const std::string& name : gguf_.tensor_order())
      if (!used_.contains(name) && !in_mtp_block(name))
        throw ModelError(fmt::format(
            "{}: tensor '{}' has no place in the {} model its metadata describes (moeslice's "
            "table of llama.cpp tensor names)",
            gguf_.path().string(), name, spec_.family->family));
  }

 private:
  static int64_t numel_of(const std::vector<int64_t>& shape) {
    int64_t n = 1;
    for (int64_t extent : shape) n *= extent;
    return n;
  }
  std::vector<int64_t> stacked_shape(const ResolvedTensor& tensor) const {
    std::vector<int64_t> shape = tensor.shape;
    shape.insert(shape.begin(), spec_.num_experts);
    return shape;
  }

  bool in_mtp_block(const std::string& name) const {
    if (spec_.mtp_layers == 0 || !name.starts_with("blk.")) return false;
    return std::strtoll(name.c_str() + 4, nullptr, 10) >= spec_.num_layers;
  }

  // deepseek2's kv_b_proj as llama.cpp's converter splits it: attn_k_b [heads, kv_lora, nope]
  // (each head's key rows transposed) and attn_v_b [heads, v, kv_lora], joined back into the
  // Hugging Face rows [heads * (nope + v), kv_lora] (an owned copy; F32, F16 or BF16 only, as a
  // quantized attn_k_b's blocks run along the other axis; two float types are joined in F32).
  void place_split_kv_b(const ResolvedTensor& tensor, int64_t layer) {
    const int64_t heads = spec_.heads, nope = spec_.dim_or(Dim::kQkNopeHeadDim, 0),
                  v = spec_.dim_or(Dim::kVHeadDim, 0), rank = spec_.dim_or(Dim::kKvLoraRank, 0);
    const TensorView& k_b = split_part(layer, "attn_k_b.weight", {heads, rank, nope});
    const TensorView& v_b = split_part(layer, "attn_v_b.weight", {heads, v, rank});
    const DType dtype = k_b.dtype == v_b.dtype ? k_b.dtype : DType::F32;
    const size_t size = dtype_bits(dtype) / 8;
    std::vector<std::byte> out(static_cast<size_t>(heads * (nope + v) * rank) * size);
    auto element = [&](const TensorView& part, size_t index, size_t out_index) {
      std::byte* dst = out.data() + out_index * size;
      if (part.dtype == dtype)
        std::copy_n(part.bytes.data() + index * size, size, dst);
      else
        convert_to_f32(part.dtype, part.bytes.data() + index * (dtype_bits(part.dtype) / 8),
                       reinterpret_cast<float*>(dst), 1);
    };
    const auto H = static_cast<size_t>(heads), N = static_cast<size_t>(nope),
               V = static_cast<size_t>(v), R = static_cast<size_t>(rank);
    for (size_t h = 0; h < H; ++h)
      for (size_t r = 0; r < R; ++r) {
        for (size_t i = 0; i < N; ++i) element(k_b, (h * R + r) * N + i, (h * (N + V) + i) * R + r);
        for (size_t j = 0; j < V; ++j)
          element(v_b, (h * V + j) * R + r, (h * (N + V) + N + j) * R + r);
      }
    store_.add_owned(tensor.name, dtype, tensor.shape, std::move(out));
  }
  const TensorView& split_part(int64_t layer, std::string_view suffix,
                               const std::vector<int64_t>& shape) {
    const std::string name = fmt::format("blk.{}.{}", layer, suffix);
    const TensorView* part = gguf_.find(name);
    if (part == nullptr)
      throw ModelError(
          fmt::format("{}: tensor '{}' is missing (the {} model its metadata describes has neither "
                      "'blk.{}.attn_kv_b.weight' nor the split attn_k_b and attn_v_b)",
                      gguf_.path().string(), name, spec_.family->family, layer));
    if (part->shape != shape)
      throw ModelError(
          fmt::format("{}: tensor '{}' has shape {}, expected {} (the {} model its "
                      "metadata describes)",
                      gguf_.path().string(), name, part->shape_string(), format_shape(shape),
                      spec_.family->family));
    if (!is_compute_float(part->dtype))
      throw UnsupportedError(fmt::format(
          "{}: tensor '{}' is {}; moeslice rebuilds kv_b_proj from attn_k_b and attn_v_b "
          "stored as F32, F16 or BF16 only",
          gguf_.path().string(), name, dtype_name(part->dtype)));
    used_.insert(name);
    return *part;
  }

  void place_expert(const ResolvedTensor& tensor, const TensorView& source, int64_t expert) {
    const std::vector<int64_t> expected = stacked_shape(tensor);
    if (source.shape != expected)
      throw ModelError(
          fmt::format("{}: tensor '{}' has shape {}, expected {} (the {} model its "
                      "metadata describes)",
                      gguf_.path().string(), source.name, source.shape_string(),
                      format_shape(expected), spec_.family->family));
    const uint64_t per_expert = source.bytes.size() / static_cast<uint64_t>(expected[0]);
    store_.add_view(tensor.name, source, tensor.shape, per_expert * static_cast<uint64_t>(expert),
                    per_expert);
  }

  // gpt-oss's gate_up_proj_bias [E, 2I]: llama.cpp's converter splits it into
  // ffn_gate_exps.bias (the even columns) and ffn_up_exps.bias (the odd ones), each [E, I];
  // interleaved again here (a copy of the biases, in their stored float type).
  void place_interleaved_bias(const ResolvedTensor& tensor, int64_t layer) {
    std::array<const TensorView*, 2> parts{};
    std::array<std::string, 2> names{fmt::format("blk.{}.ffn_gate_exps.bias", layer),
                                     fmt::format("blk.{}.ffn_up_exps.bias", layer)};
    const std::vector<int64_t> half{tensor.shape.at(0), tensor.shape.at(1) / 2};
    for (size_t i = 0; i < 2; ++i) {
      parts[i] = gguf_.find(names[i]);
      if (parts[i] == nullptr)
        throw ModelError(
            fmt::format("{}: tensor '{}' is missing (the {} model its metadata "
                        "describes has shape {} there)",
                        gguf_.path().string(), names[i], spec_.family->family, format_shape(half)));
      if (parts[i]->shape != half || !is_compute_float(parts[i]->dtype) ||
          parts[i]->dtype != parts[0]->dtype)
        throw ModelError(fmt::format(
            "{}: tensor '{}' is {} {}; expected {} of F32, F16 or BF16 like '{}' (the {} model "
            "its metadata describes)",
            gguf_.path().string(), names[i], dtype_name(parts[i]->dtype), parts[i]->shape_string(),
            format_shape(half), names[0], spec_.family->family));
      used_.insert(names[i]);
    }
    const size_t element = dtype_bits(parts[0]->dtype) / 8;
    const auto pairs = static_cast<size_t>(parts[0]->numel());
    std::vector<std::byte> bytes(2 * pairs * element);
    for (size_t i = 0; i < pairs; ++i)
      for (size_t p = 0; p < 2; ++p)
        std::copy_n(parts[p]->bytes.data() + i * element, element,
                    bytes.data() + (2 * i + p) * element);
    store_.add_owned(tensor.name, parts[0]->dtype, tensor.shape, std::move(bytes));
  }

  const GgufModel& gguf_;
  const ModelSpec& spec_;
  GgufSpecStore& store_;
  std::string architecture_;
  bool llama_;
  std::set<std::string> used_;
};

// glm4moe's and deepseek2's YaRN as the Hugging Face rope_scaling it was converted from. The
// deepseek2 converter writes mscale_all_dim as yarn_log_multiplier * 10 and no mscale: llama.cpp
// takes mscale equal to mscale_all_dim for deepseek2 (llama_context's yarn_attn_factor), so does
// this. Without yarn_log_multiplier (glm4moe) neither is set: YaRN's default attention factor.
nlohmann::json yarn_rope_scaling(const GgufModel& gguf, const ConfigBuilder& config) {
  const std::string arch = gguf.metadata().architecture();
  const auto required = [&](std::string_view key) {
    const std::optional<double> value = config.arch_float(key);
    if (!value)
      throw ModelError(fmt::format("{}: key '{}.{}' is missing (YaRN RoPE scaling needs it)",
                                   gguf.path().string(), arch, key));
    return *value;
  };
  nlohmann::json yarn = {{"type", "yarn"},
                         {"factor", required("rope.scaling.factor")},
                         {"original_max_position_embeddings",
                          config.required_uint("rope.scaling.original_context_length")}};
  for (const auto& [key, name] : {std::pair{"rope.scaling.yarn_beta_fast", "beta_fast"},
                                  std::pair{"rope.scaling.yarn_beta_slow", "beta_slow"}})
    if (const std::optional<double> value = config.arch_float(key)) yarn[name] = *value;
  if (const std::optional<double> log_mul = config.arch_float("rope.scaling.yarn_log_multiplier")) {
    // In float, as written: 0.1f * 1 read back is exactly 1.
    const double mscale = static_cast<float>(*log_mul) / 0.1F;
    yarn["mscale"] = mscale;
    yarn["mscale_all_dim"] = mscale;
  }
  return yarn;
}

// glm4moe and deepseek2 beyond the common keys, as llama.cpp's Glm4MoeModel and DeepseekV2Model
// converters write them and its loaders read them (absent keys mean what llama.cpp's defaults do).
void add_group_routed_config(const GgufModel& gguf, ConfigBuilder& config, int64_t heads) {
  const std::string arch = gguf.metadata().architecture();
  const bool deepseek = arch == "deepseek2";
  // llama.cpp: glm4moe defaults to sigmoid, deepseek2 (for DeepSeek V2 files) to softmax (1).
  const uint64_t gating = config.arch_uint("expert_gating_func").value_or(deepseek ? 1 : 2);
  if (gating != 2)
    throw UnsupportedError(
        fmt::format("{}: key '{}.expert_gating_func' is {}; moeslice computes "
                    "{} models with sigmoid routers (2) only",
                    gguf.path().string(), arch, gating, arch));
  const auto dim = [&](Dim d, std::string_view key, uint64_t fallback) {
    config.set_dim(d, static_cast<int64_t>(config.arch_uint(key).value_or(fallback)));
  };
  dim(Dim::kNGroup, "expert_group_count", 1);
  dim(Dim::kTopkGroup, "expert_group_used_count", 1);
  dim(Dim::kFirstDense, "leading_dense_block_count", 0);
  config.set_dim(Dim::kSharedExperts,
                 static_cast<int64_t>(config.required_uint("expert_shared_count")));
  config.set_flag(Flag::kNormTopkProb,
                  gguf.metadata().get_bool(arch + ".expert_weights_norm").value_or(false));
  // llama.cpp scales by expert_weights_scale unless it is absent or 0. The float32 key is read
  // back as the shortest decimal that rounds to it (Kimi K2's 2.827, not 2.8269999027...): the
  // config's value, which the forward pass multiplies by in double.
  if (const std::optional<double> scale = config.arch_float("expert_weights_scale");
      scale && *scale != 0.0)
    config.set_number(Number::kRoutedScalingFactor,
                      nlohmann::json(std::stod(fmt::format("{}", static_cast<float>(*scale)))));
  const auto rope = static_cast<int64_t>(config.required_uint("rope.dimension_count"));
  if (!deepseek) {
    const auto hidden = static_cast<int64_t>(config.required_uint("embedding_length"));
    const auto head_dim =
        static_cast<int64_t>(config.arch_uint("attention.key_length").value_or(hidden / heads));
    config.set_number(Number::kPartialRotaryFactor,
                      nlohmann::json(static_cast<double>(rope) / static_cast<double>(head_dim)));
    config.set_flag(Flag::kUseQkNorm, gguf.find("blk.0.attn_q_norm.weight") != nullptr);
    return;
  }
  // MLA, written by the converter as MQA: one key/value head per query head in the model.
  config.set_dim(Dim::kKvHeads, heads);
  if (const auto q_lora = config.arch_uint("attention.q_lora_rank"))
    config.set_dim(Dim::kQLoraRank, static_cast<int64_t>(*q_lora));
  config.set_dim(Dim::kKvLoraRank,
                 static_cast<int64_t>(config.required_uint("attention.kv_lora_rank")));
  // Older files (one attn_kv_b) give the head sizes in key_length / value_length.
  const bool mla_keys = config.arch_uint("attention.key_length_mla").has_value();
  const auto key = static_cast<int64_t>(
      config.required_uint(mla_keys ? "attention.key_length_mla" : "attention.key_length"));
  const auto value = static_cast<int64_t>(
      config.required_uint(mla_keys ? "attention.value_length_mla" : "attention.value_length"));
  config.set_dim(Dim::kQkRopeHeadDim, rope);
  config.set_dim(Dim::kQkNopeHeadDim, key - rope);
  config.set_dim(Dim::kVHeadDim, value);
  config.set_flag(Flag::kRopeInterleave, true);
}

// gpt-oss's keys as llama.cpp's openai-moe reads them (src/models/openai-moe.cpp,
// llama-context.cpp): the window `attention.sliding_window`; sliding attention on layer il when
// il % n < n - 1 for the period n = `attention.sliding_window_pattern` (default 2: the even layers,
// as gpt-oss's layer_types); YaRN from `rope.scaling.*` (beta_fast 32 and beta_slow 1 unless
// given, the original context `context_length` unless given), with the correction range floored
// and ceiled as ggml does (transformers' truncate true: the converter drops gpt-oss's
// `truncate: false`); the clamped SwiGLU's limit 7, which llama.cpp hard-codes (the converter
// writes none). Keys that would change what llama.cpp computes and that moeslice does not follow
// are refused by name.
void add_gpt_oss_config(const GgufModel& gguf, ConfigBuilder& config) {
  const std::string arch = gguf.metadata().architecture();
  const std::string file = gguf.path().string();
  const auto layers = static_cast<int64_t>(config.required_uint("block_count"));
  const auto window = config.required_uint("attention.sliding_window");
  const uint64_t period = config.arch_uint("attention.sliding_window_pattern").value_or(2);
  nlohmann::json types = nlohmann::json::array();
  for (int64_t il = 0; il < layers; ++il)
    types.push_back(period == 0 || static_cast<uint64_t>(il) % period < period - 1
                        ? "sliding_attention"
                        : "full_attention");
  nlohmann::json& out = config.config();
  out["sliding_window"] = window;
  out["layer_types"] = std::move(types);
  out["swiglu_limit"] = 7.0;
  const std::optional<double> theta = config.arch_float("rope.freq_base");
  if (const std::optional<double> swa_theta = config.arch_float("rope.freq_base_swa");
      swa_theta && swa_theta != theta)
    throw UnsupportedError(fmt::format(
        "{}: key '{}.rope.freq_base_swa' is {}, not '{}.rope.freq_base' ({}); the gpt-oss "
        "forward pass has one RoPE base",
        file, arch, *swa_theta, arch, theta ? fmt::format("{}", *theta) : std::string("absent")));
  for (const char* key : {"rope.scaling.yarn_ext_factor", "rope.scaling.yarn_attn_factor",
                          "rope.scaling.yarn_log_multiplier", "rope.scaling.attn_factor"})
    if (gguf.metadata().contains(arch + "." + key))
      throw UnsupportedError(
          fmt::format("{}: key '{}.{}' is set; the gpt-oss GGUF forward pass computes YaRN "
                      "with llama.cpp's defaults for it only",
                      file, arch, key));
  const std::string scaling =
      gguf.metadata().get_string(arch + ".rope.scaling.type").value_or("none");
  if (scaling == "none") {
    out["rope_scaling"] = nullptr;
    return;
  }
  if (scaling != "yarn")
    throw UnsupportedError(fmt::format(
        "{}: key '{}.rope.scaling.type' is '{}'; the gpt-oss GGUF forward pass computes "
        "YaRN or no RoPE scaling",
        file, arch, scaling));
  const std::optional<double> factor = config.arch_float("rope.scaling.factor");
  if (!factor)
    throw ModelError(
        fmt::format("{}: key '{}.rope.scaling.factor' is missing (YaRN needs it)", file, arch));
  const auto original = config.arch_uint("rope.scaling.original_context_length")
                            .value_or(config.required_uint("context_length"));
  out["rope_scaling"] = {
      {"rope_type", "yarn"},
      {"factor", *factor},
      {"original_max_position_embeddings", original},
      {"beta_fast", config.arch_float("rope.scaling.yarn_beta_fast").value_or(32.0)},
      {"beta_slow", config.arch_float("rope.scaling.yarn_beta_slow").value_or(1.0)},
      {"truncate", true}};
}

}  // namespace

nlohmann::json gguf_hf_config(const GgufModel& gguf) {
  const FamilyProfile& profile = mapped_family(gguf);
  const GgufSummary summary = summarize_gguf(gguf);
  const std::string arch = gguf.metadata().architecture();
  ConfigBuilder config(gguf, profile);
  config.config()["model_type"] = profile.model_types.front();
  config.config()["architectures"] = nlohmann::json::array({profile.architectures.front()});
  if (const std::optional<std::string> scaling =
          gguf.metadata().get_string(arch + ".rope.scaling.type");
      scaling && *scaling == "yarn" && group_routed(arch))
    config.config()["rope_scaling"] = yarn_rope_scaling(gguf, config);
  else if (scaling && *scaling != "none" && arch != "gpt-oss")
    throw UnsupportedError(
        fmt::format("{}: key '{}.rope.scaling.type' is '{}'; the GGUF forward "
                    "pass computes without RoPE scaling only",
                    gguf.path().string(), arch, *scaling));
  const auto heads = static_cast<int64_t>(config.required_uint("attention.head_count"));
  config.set_dim(Dim::kHidden, static_cast<int64_t>(config.required_uint("embedding_length")));
  // llama.cpp's block_count counts the multi-token-prediction layers after the decoder layers.
  const uint64_t mtp = config.arch_uint("nextn_predict_layers").value_or(0);
  const uint64_t blocks = config.required_uint("block_count");
  if (mtp >= blocks)
    throw ModelError(
        fmt::format("{}: key '{}.nextn_predict_layers' is {}, expected fewer than "
                    "the {} blocks of '{}.block_count'",
                    gguf.path().string(), arch, mtp, blocks, arch));
  config.set_dim(Dim::kLayers, static_cast<int64_t>(blocks - mtp));
  config.set_dim(Dim::kMtpLayers, static_cast<int64_t>(mtp));
  config.set_dim(Dim::kHeads, heads);
  config.set_dim(Dim::kKvHeads,
                 static_cast<int64_t>(config.arch_uint("attention.head_count_kv").value_or(heads)));
  if (const auto key_length = config.arch_uint("attention.key_length"))
    config.set_dim(Dim::kHeadDim, static_cast<int64_t>(*key_length));
  const TensorView* embed = gguf.find("token_embd.weight");
  if (embed == nullptr || embed->shape.size() != 2)
    throw ModelError(fmt::format("{}: tensor 'token_embd.weight' is {}; expected [vocab, hidden]",
                                 gguf.path().string(),
                                 embed == nullptr ? "missing" : embed->shape_string()));
  config.set_dim(Dim::kVocab, embed->shape[0]);
  config.set_dim(Dim::kExperts, static_cast<int64_t>(config.required_uint("expert_count")));
  config.set_dim(Dim::kTopK, static_cast<int64_t>(config.required_uint("expert_used_count")));
  if (summary.expert_width <= 0)
    throw ModelError(
        fmt::format("{}: neither '{}.expert_feed_forward_length' nor stacked expert "
                    "tensors give the experts' width",
                    gguf.path().string(), arch));
  config.set_dim(Dim::kExpertWidth, summary.expert_width);
  if (const auto dense = config.arch_uint("feed_forward_length");
      dense && dim_key(profile, Dim::kDenseWidth))
    config.set_dim(Dim::kDenseWidth, static_cast<int64_t>(*dense));
  if (dim_key(profile, Dim::kSharedExpertWidth)) {
    std::optional<uint64_t> shared = config.arch_uint("expert_shared_feed_forward_length");
    const TensorView* shexp = gguf.find("blk.0.ffn_gate_shexp.weight");
    if (!shared && shexp != nullptr && shexp->shape.size() == 2)
      shared = static_cast<uint64_t>(shexp->shape[0]);
    if (shared) config.set_dim(Dim::kSharedExpertWidth, static_cast<int64_t>(*shared));
  }
  for (const auto& [number, key] :
       {std::pair{Number::kRmsNormEps, "attention.layer_norm_rms_epsilon"},
        std::pair{Number::kRopeTheta, "rope.freq_base"}})
    if (const std::optional<double> value = config.arch_float(key))
      config.set_number(number, nlohmann::json(*value));
  if (const auto context = config.arch_uint("context_length"))
    config.set_number(Number::kMaxPositionEmbeddings, nlohmann::json(*context));
  config.set_flag(Flag::kTieWordEmbeddings, gguf.find("output.weight") == nullptr);
  const bool q_bias = gguf.find("blk.0.attn_q.bias") != nullptr;
  config.set_flag(Flag::kAttentionBias, q_bias);
  config.set_flag(Flag::kQkvBias, q_bias);
  if (group_routed(arch)) add_group_routed_config(gguf, config, heads);
  if (arch == "gpt-oss") add_gpt_oss_config(gguf, config);
  return std::move(config.config());
}

Model gguf_model(std::shared_ptr<const GgufModel> gguf) {
  nlohmann::json config = gguf_hf_config(*gguf);
  ModelSpec spec = resolve_model_spec(config, gguf->path());
  auto store = std::make_shared<GgufSpecStore>(gguf, config);
  TensorPlacer placer(*gguf, spec, *store);
  for (const ResolvedTensor& tensor : spec.model_tensors) placer.place(tensor, std::nullopt, {});
  for (const LayerSpec& layer : spec.layers) {
    for (const ResolvedTensor& tensor : layer.tensors) placer.place(tensor, layer.index, {});
    for (size_t e = 0; e < layer.experts.size(); ++e)
      for (const ResolvedTensor& tensor : layer.experts[e])
        placer.place(tensor, layer.index, static_cast<int64_t>(e));
  }
  placer.check_all_used();
  check_checkpoint(spec, *store);
  return Model{std::move(store), std::move(spec)};
}

}  // namespace moeslice
