// A GGUF model as its family's checkpoint: the config from {arch}.* metadata, the spec's tensors
// found by role in llama.cpp's name table, expert matrices as slices of the stacked tensors.
#include "model/gguf_checkpoint.h"

#include <deque>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <fmt/core.h>

#include "common/error.h"
#include "format/gguf/summary.h"
#include "model/gguf_architecture.h"

namespace moeslice {
namespace {

// The architectures whose tensors and metadata llama.cpp's common name table and these keys
// describe completely.
bool forward_mapped(std::string_view architecture) {
  return architecture == "olmoe" || architecture == "qwen2moe" || architecture == "qwen3moe" ||
         architecture == "llama";
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
        "qwen2moe, qwen3moe and llama (with experts) so far (inspect, slice and unslice read "
        "any)",
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
    const std::vector<std::byte>& kept = owned_.emplace_back(std::move(bytes));
    TensorView& view = views_.emplace_back(TensorView{name, source.dtype, source.shape, kept});
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

std::string gguf_name_of(const ResolvedTensor& tensor, std::optional<int64_t> layer, bool expert) {
  const GgufTensorName name = gguf_tensor_name(tensor.role, expert);
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
        llama_(gguf.metadata().architecture() == "llama") {}

  void place(const ResolvedTensor& tensor, std::optional<int64_t> layer,
             std::optional<int64_t> expert) {
    const std::string name = gguf_name_of(tensor, layer, expert.has_value());
    if (name.empty())
      throw UnsupportedError(
          fmt::format("{}: the {} tensor '{}' has no GGUF name in moeslice's "
                      "table of llama.cpp tensor names",
                      gguf_.path().string(), spec_.family->family, tensor.name));
    const TensorView* source = gguf_.find(name);
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

  // Every GGUF tensor has a place; a tensor nothing reads is refused, not ignored.
  void check_all_used() const {
    for (const std::string& name : gguf_.tensor_order())
      if (!used_.contains(name))
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

  const GgufModel& gguf_;
  const ModelSpec& spec_;
  GgufSpecStore& store_;
  bool llama_;
  std::set<std::string> used_;
};

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
      scaling && *scaling != "none")
    throw UnsupportedError(
        fmt::format("{}: key '{}.rope.scaling.type' is '{}'; the GGUF forward "
                    "pass computes without RoPE scaling only",
                    gguf.path().string(), arch, *scaling));
  const auto heads = static_cast<int64_t>(config.required_uint("attention.head_count"));
  config.set_dim(Dim::kHidden, static_cast<int64_t>(config.required_uint("embedding_length")));
  config.set_dim(Dim::kLayers, static_cast<int64_t>(config.required_uint("block_count")));
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
