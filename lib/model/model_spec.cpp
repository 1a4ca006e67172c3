// Resolving a config.json against its family profile, and checking a checkpoint's tensors.
#include "model/model_spec.h"

#include <algorithm>
#include <set>
#include <stdexcept>

#include <fmt/core.h>

#include "common/error.h"
#include "format/format_registry.h"
#include "model/dim_expression.h"

namespace moeslice {
namespace {

using nlohmann::json;

std::string substitute(std::string text, std::string_view placeholder, int64_t value) {
  const std::string replacement = std::to_string(value);
  for (size_t at = text.find(placeholder); at != std::string::npos;
       at = text.find(placeholder, at + replacement.size()))
    text.replace(at, placeholder.size(), replacement);
  return text;
}

bool matches_family(const FamilyProfile& family, const json& config) {
  const std::string model_type = config.value("model_type", "");
  if (std::find(family.model_types.begin(), family.model_types.end(), model_type) !=
      family.model_types.end())
    return true;
  return false;
}

// Finds the family; returns the key of the nested text config ("" when not nested).
std::pair<const FamilyProfile*, std::string> find_family(const json& config,
                                                         const std::filesystem::path& path) {
  for (const auto& family : all_families())
    if (matches_family(family, config)) return {&family, ""};
  if (config.contains("text_config") && config["text_config"].is_object())
    for (const auto& family : all_families())
      if (matches_family(family, config["text_config"])) return {&family, "text_config"};
  // Fall back to the architecture name only when model_type is absent.
  if (!config.contains("model_type") && config.contains("architectures") &&
      config["architectures"].is_array())
    for (const auto& family : all_families())
      for (const auto& architecture : config["architectures"])
        if (architecture.is_string() &&
            std::find(family.architectures.begin(), family.architectures.end(),
                      architecture.get<std::string>()) != family.architectures.end())
          return {&family, ""};
  const std::string found =
      config.contains("model_type") ? config["model_type"].dump() : std::string("no model_type");
  throw UnsupportedError(fmt::format("{}: unknown model family {} (known: {})", path.string(),
                                     found, known_family_names()));
}

class Resolver {
 public:
  Resolver(ModelSpec& spec) : spec_(spec), config_(spec.text_config()) {}

  void resolve_all() {
    for (const auto& [name, rule] : spec_.family->dims) dim(name);
    for (const auto& [name, rule] : spec_.family->flags) spec_.flags[name] = flag(rule);
    for (const auto& [name, rule] : spec_.family->numbers) spec_.numbers[name] = number(rule);
  }

  int64_t dim(std::string_view name) {
    if (auto it = spec_.dims.find(name); it != spec_.dims.end()) return it->second;
    const DimRule* rule = spec_.family->find_dim(name);
    if (rule == nullptr)
      throw std::logic_error(
          fmt::format("profile {} uses unknown size '{}'", spec_.family->family, name));
    if (!in_progress_.insert(std::string(name)).second)
      throw std::logic_error(
          fmt::format("profile {}: size '{}' depends on itself", spec_.family->family, name));
    int64_t value = 0;
    if (rule->value) {
      value = *rule->value;
    } else if (rule->expr) {
      value = evaluate(*rule->expr);
    } else if (!rule->key.empty() && config_.contains(rule->key) && !config_[rule->key].is_null()) {
      const json& entry = config_[rule->key];
      if (!entry.is_number_integer() || entry.get<int64_t>() < 0)
        throw ModelError(fmt::format("{}: '{}' must be a non-negative integer, found {}",
                                     spec_.config_path.string(), rule->key, entry.dump()));
      value = entry.get<int64_t>();
    } else if (rule->fallback) {
      value = evaluate(*rule->fallback);
    } else {
      throw ModelError(fmt::format("{}: missing key '{}' (the {} family needs it for its {})",
                                   spec_.config_path.string(), rule->key, spec_.family->family,
                                   name));
    }
    in_progress_.erase(std::string(name));
    spec_.dims.emplace(std::string(name), value);
    return value;
  }

 private:
  int64_t evaluate(const std::string& expression) {
    try {
      return evaluate_dim_expression(expression, [this](std::string_view id) { return dim(id); });
    } catch (const std::invalid_argument& error) {
      throw ModelError(fmt::format("{}: cannot compute a size of the {} model: {}",
                                   spec_.config_path.string(), spec_.family->family, error.what()));
    }
  }

  bool flag(const FlagRule& rule) {
    if (!config_.contains(rule.key) || config_[rule.key].is_null())
      return rule.presence ? false : rule.fallback;
    const json& entry = config_[rule.key];
    if (rule.presence) return !(entry.is_number() && entry.get<double>() == 0);
    if (!entry.is_boolean())
      throw ModelError(fmt::format("{}: '{}' must be true or false, found {}",
                                   spec_.config_path.string(), rule.key, entry.dump()));
    return entry.get<bool>();
  }

  std::optional<double> number(const NumberRule& rule) {
    if (!config_.contains(rule.key) || config_[rule.key].is_null()) return rule.fallback;
    const json& entry = config_[rule.key];
    if (!entry.is_number())
      throw ModelError(fmt::format("{}: '{}' must be a number, found {}",
                                   spec_.config_path.string(), rule.key, entry.dump()));
    return entry.get<double>();
  }

  ModelSpec& spec_;
  const json& config_;
  std::set<std::string, std::less<>> in_progress_;
};

bool rule_applies(const TensorRule& rule, const ModelSpec& spec) {
  if (!rule.when.empty() && !spec.flag(rule.when)) return false;
  if (!rule.unless.empty() && spec.flag(rule.unless)) return false;
  return true;
}

// `layer_experts` stands in for the size "experts" (a layer's own count, see LayerSpec).
ResolvedTensor resolve_tensor(const TensorRule& rule, const ModelSpec& spec, int64_t layer,
                              int64_t expert, int64_t layer_experts) {
  ResolvedTensor tensor;
  tensor.role = rule.role;
  tensor.name = substitute(substitute(rule.name, "{layer}", layer), "{expert}", expert);
  tensor.expert_axis = rule.expert_axis;
  tensor.optional = rule.optional;
  const auto size = [&spec, layer_experts](std::string_view name) {
    return name == "experts" ? layer_experts : spec.dim(name);
  };
  for (const auto& extent : rule.shape) {
    try {
      tensor.shape.push_back(evaluate_dim_expression(extent, size));
    } catch (const std::exception& error) {
      throw std::logic_error(
          fmt::format("profile {}: shape of {}: {}", spec.family->family, rule.name, error.what()));
    }
  }
  return tensor;
}

void append_tensors(std::vector<ResolvedTensor>& out, const std::vector<TensorRule>& rules,
                    const ModelSpec& spec, int64_t layer, int64_t layer_experts,
                    int64_t expert = 0) {
  for (const auto& rule : rules)
    if (rule_applies(rule, spec))
      out.push_back(resolve_tensor(rule, spec, layer, expert, layer_experts));
}

// Each layer's expert count: the family's per-layer list when the config has one (EMO's
// `num_experts_per_layer`), else num_experts everywhere. One top-k serves every layer, so each
// listed count must be at least experts-per-token.
std::vector<int64_t> layer_expert_counts(const ModelSpec& spec) {
  std::vector<int64_t> counts(static_cast<size_t>(spec.num_layers), spec.num_experts);
  const std::string key = spec.family->slice_config_key("experts_per_layer");
  const json& config = spec.text_config();
  if (key.empty() || !config.contains(key) || config[key].is_null()) return counts;
  const json& list = config[key];
  const std::string path = spec.config_path.string();
  if (!list.is_array() || list.size() != counts.size())
    throw ModelError(fmt::format("{}: '{}' must list {} expert counts (one per layer), found {}",
                                 path, key, counts.size(), list.dump()));
  for (size_t l = 0; l < counts.size(); ++l) {
    const json& entry = list[l];
    if (!entry.is_number_integer())
      throw ModelError(fmt::format("{}: '{}' entry {} must be an integer, found {}", path, key, l,
                                   entry.dump()));
    const int64_t count = entry.get<int64_t>();
    if (count == 0)
      throw UnsupportedError(fmt::format(
          "{}: '{}' entry {} is 0 (a dense layer); dense layers in this family are not supported",
          path, key, l));
    if (count < spec.experts_per_token || count > spec.num_experts)
      throw ModelError(fmt::format(
          "{}: '{}' entry {} is {}, expected between experts per token ({}) and '{}' ({})", path,
          key, l, count, spec.experts_per_token, spec.family->slice_config_key("num_experts"),
          spec.num_experts));
    counts[l] = count;
  }
  return counts;
}

bool layer_has_experts(const ModelSpec& spec, int64_t layer) {
  if (spec.num_experts == 0) return false;
  const json& config = spec.text_config();
  switch (spec.family->sparse_layers) {
    case SparseLayerRule::kAll:
      return true;
    case SparseLayerRule::kQwen2Moe: {
      if (config.contains("mlp_only_layers") && config["mlp_only_layers"].is_array())
        for (const auto& dense : config["mlp_only_layers"])
          if (dense.is_number_integer() && dense.get<int64_t>() == layer) return false;
      const int64_t step = config.value("decoder_sparse_step", int64_t{1});
      return step > 0 && (layer + 1) % step == 0;
    }
    case SparseLayerRule::kFirstKDense: {
      const int64_t frequency = std::max<int64_t>(1, spec.dim_or("moe_layer_freq", 1));
      return layer >= spec.dim_or("first_dense", 0) && layer % frequency == 0;
    }
  }
  return true;
}

void check_sizes(const ModelSpec& spec) {
  const auto& path = spec.config_path;
  auto require = [&](bool ok, const std::string& what) {
    if (!ok) throw ModelError(fmt::format("{}: {}", path.string(), what));
  };
  for (const char* name : {"hidden", "layers", "heads", "kv_heads", "head_dim", "vocab"})
    require(spec.dim(name) > 0,
            fmt::format("'{}' must be positive, found {}", name, spec.dim(name)));
  require(spec.heads % spec.kv_heads == 0,
          fmt::format("attention heads ({}) must be a multiple of key/value heads ({})", spec.heads,
                      spec.kv_heads));
  require(spec.experts_per_token >= 1 && spec.experts_per_token <= spec.num_experts,
          fmt::format("experts per token must be between 1 and the expert count {}, found {}",
                      spec.num_experts, spec.experts_per_token));
  if (spec.family->shared_expert_kind == SharedExpertKind::kLastRouted)
    require(spec.shared_experts < spec.experts_per_token,
            fmt::format("shared experts ({}) must be fewer than experts per token ({})",
                        spec.shared_experts, spec.experts_per_token));
}

}  // namespace

const ResolvedTensor* LayerSpec::find(std::string_view role) const {
  for (const auto& tensor : tensors)
    if (tensor.role == role) return &tensor;
  return nullptr;
}

std::string LayerSpec::expert_prefix_of(int64_t expert) const {
  return substitute(expert_prefix, "{expert}", expert);
}

std::string LayerSpec::name_of(std::string_view role) const {
  const ResolvedTensor* tensor = find(role);
  return tensor ? tensor->name : std::string();
}

const ResolvedTensor* LayerSpec::find_expert(int64_t expert, std::string_view role) const {
  for (const auto& tensor : experts.at(static_cast<size_t>(expert)))
    if (tensor.role == role) return &tensor;
  return nullptr;
}

const json& ModelSpec::text_config() const {
  return text_config_key.empty() ? config : config.at(text_config_key);
}

int64_t ModelSpec::dim(std::string_view name) const {
  const auto it = dims.find(name);
  if (it == dims.end()) throw std::out_of_range(fmt::format("no size '{}' in this model", name));
  return it->second;
}

int64_t ModelSpec::dim_or(std::string_view name, int64_t fallback) const {
  const auto it = dims.find(name);
  return it == dims.end() ? fallback : it->second;
}

bool ModelSpec::flag(std::string_view name) const {
  const auto it = flags.find(name);
  return it != flags.end() && it->second;
}

std::optional<double> ModelSpec::number(std::string_view name) const {
  const auto it = numbers.find(name);
  return it == numbers.end() ? std::nullopt : it->second;
}

const ResolvedTensor* ModelSpec::find_model_tensor(std::string_view role) const {
  for (const auto& tensor : model_tensors)
    if (tensor.role == role) return &tensor;
  return nullptr;
}

std::vector<int64_t> ModelSpec::expert_layers() const {
  std::vector<int64_t> result;
  for (const auto& layer : layers)
    if (layer.has_experts) result.push_back(layer.index);
  return result;
}

bool ModelSpec::uniform_experts() const {
  return std::all_of(layers.begin(), layers.end(), [this](const LayerSpec& layer) {
    return !layer.has_experts || layer.num_experts == num_experts;
  });
}

int64_t ModelSpec::routed_experts() const {
  return family->shared_expert_kind == SharedExpertKind::kLastRouted ? num_experts - shared_experts
                                                                     : num_experts;
}

ModelSpec resolve_model_spec(const json& config, const std::filesystem::path& config_path) {
  ModelSpec spec;
  spec.config = config;
  spec.config_path = config_path;
  if (!config.is_object())
    throw ModelError(fmt::format("{}: expected a JSON object", config_path.string()));
  auto [family, nested_key] = find_family(config, config_path);
  spec.family = family;
  spec.text_config_key = nested_key;
  spec.model_type = spec.text_config().value("model_type", family->family);

  Resolver resolver(spec);
  resolver.resolve_all();
  spec.hidden = spec.dim("hidden");
  spec.num_layers = spec.dim("layers");
  spec.heads = spec.dim("heads");
  spec.kv_heads = spec.dim("kv_heads");
  spec.head_dim = spec.dim("head_dim");
  spec.vocab = spec.dim("vocab");
  spec.num_experts = spec.dim("experts");
  spec.experts_per_token = spec.dim("top_k");
  spec.shared_experts = spec.dim("shared_experts");
  spec.expert_width = spec.dim("expert_width");
  check_sizes(spec);

  append_tensors(spec.model_tensors, family->model_tensors, spec, 0, spec.num_experts);
  const std::vector<int64_t> expert_counts = layer_expert_counts(spec);
  for (int64_t l = 0; l < spec.num_layers; ++l) {
    LayerSpec layer;
    layer.index = l;
    layer.has_experts = layer_has_experts(spec, l);
    layer.num_experts = layer.has_experts ? expert_counts[static_cast<size_t>(l)] : 0;
    append_tensors(layer.tensors, family->layer_tensors, spec, l, layer.num_experts);
    if (layer.has_experts) {
      append_tensors(layer.tensors, family->sparse_tensors, spec, l, layer.num_experts);
      if (!family->expert_tensors.empty()) {
        layer.expert_prefix = substitute(family->expert_prefix, "{layer}", l);
        for (int64_t e = 0; e < layer.num_experts; ++e) {
          layer.experts.emplace_back();
          append_tensors(layer.experts.back(), family->expert_tensors, spec, l, layer.num_experts,
                         e);
        }
      }
    } else {
      append_tensors(layer.tensors, family->dense_tensors, spec, l, layer.num_experts);
    }
    spec.layers.push_back(std::move(layer));
  }
  return spec;
}

void check_checkpoint(const ModelSpec& spec, const TensorStore& checkpoint) {
  auto check = [&](const ResolvedTensor& expected) {
    const TensorView* found = checkpoint.find(expected.name);
    if (found == nullptr) {
      if (expected.optional) return;
      throw ModelError(fmt::format("{}: tensor '{}' is missing (the {} family expects shape {})",
                                   checkpoint.path().string(), expected.name, spec.family->family,
                                   format_shape(expected.shape)));
    }
    if (found->shape != expected.shape)
      throw ModelError(fmt::format("{}: tensor '{}' has shape {}, expected {} from {}",
                                   checkpoint.path().string(), expected.name,
                                   format_shape(found->shape), format_shape(expected.shape),
                                   spec.config_path.filename().string()));
  };
  for (const auto& tensor : spec.model_tensors) check(tensor);
  for (const auto& layer : spec.layers) {
    for (const auto& tensor : layer.tensors) check(tensor);
    for (const auto& expert : layer.experts)
      for (const auto& tensor : expert) check(tensor);
  }
  if (spec.family->routing == RoutingKind::kGptOssTopKSoftmax)
    for (const auto& layer : spec.layers) {
      const bool plain = checkpoint.find(layer.name_of("gate_up_proj")) != nullptr;
      const bool mxfp4 = checkpoint.find(layer.name_of("gate_up_proj_blocks")) != nullptr;
      if (layer.has_experts && !plain && !mxfp4)
        throw ModelError(fmt::format(
            "{}: layer {} has neither '{}' nor '{}'", checkpoint.path().string(), layer.index,
            layer.name_of("gate_up_proj"), layer.name_of("gate_up_proj_blocks")));
    }
}

Model open_model(const std::filesystem::path& path) {
  std::shared_ptr<const TensorStore> checkpoint = open_tensor_store(path);
  ModelSpec spec = resolve_model_spec(checkpoint->config(), checkpoint->config_path());
  check_checkpoint(spec, *checkpoint);
  return Model{std::move(checkpoint), std::move(spec)};
}

}  // namespace moeslice

namespace moeslice {

void release_layer_pages(const TensorStore& checkpoint, const LayerSpec& spec) {
  auto release = [&checkpoint](const std::string& name) {
    const TensorView* view = checkpoint.find(name);
    if (view != nullptr) checkpoint.release_pages(*view);
  };
  for (const ResolvedTensor& tensor : spec.tensors) release(tensor.name);
  for (const auto& expert : spec.experts)
    for (const ResolvedTensor& tensor : expert) release(tensor.name);
}

}  // namespace moeslice
