// Resolving a config.json against its family profile, and checking a checkpoint's tensors.
#include "model/model_spec.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdint>
#include <stdexcept>

#include <fmt/core.h>

#include "common/error.h"
#include "common/json_parse.h"
#include "format/format_registry.h"
#include "format/gguf/model.h"
#include "model/dim_expression.h"
#include "model/gguf_checkpoint.h"

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
  // A model_type that is not a string matches no family (and is named in the refusal).
  const auto model_type = config.find("model_type");
  return model_type != config.end() && model_type->is_string() &&
         std::find(family.model_types.begin(), family.model_types.end(),
                   model_type->get_ref<const std::string&>()) != family.model_types.end();
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
  const std::string found = config.contains("model_type") ? json_excerpt(config["model_type"])
                                                          : std::string("no model_type");
  throw UnsupportedError(fmt::format("{}: unknown model family {} (known: {})", path.string(),
                                     found, known_family_names()));
}

class Resolver {
 public:
  Resolver(ModelSpec& spec) : spec_(spec), config_(spec.text_config()) {}

  void resolve_all() {
    for (const auto& [dim, rule] : spec_.family->dims) resolve(dim);
    for (const auto& [flag, rule] : spec_.family->flags)
      spec_.flag_values[static_cast<size_t>(flag)] = flag_value(rule);
    for (const auto& [number, rule] : spec_.family->numbers)
      spec_.number_values[static_cast<size_t>(number)] = number_value(rule);
  }

 private:
  int64_t resolve(Dim dim) {
    std::optional<int64_t>& slot = spec_.dim_values[static_cast<size_t>(dim)];
    if (slot) return *slot;
    const DimRule* rule = spec_.family->find_dim(dim);
    if (rule == nullptr)
      throw std::logic_error(
          fmt::format("profile {} uses unknown size '{}'", spec_.family->family, name(dim)));
    if (in_progress_[static_cast<size_t>(dim)])
      throw std::logic_error(
          fmt::format("profile {}: size '{}' depends on itself", spec_.family->family, name(dim)));
    in_progress_[static_cast<size_t>(dim)] = true;
    int64_t value = 0;
    if (rule->value) {
      value = *rule->value;
    } else if (rule->expr) {
      value = evaluate(*rule->expr);
    } else if (!rule->key.empty() && config_.contains(rule->key) && !config_[rule->key].is_null()) {
      const json& entry = config_[rule->key];
      if (!entry.is_number_integer() || entry.get<int64_t>() < 0)
        throw ModelError(fmt::format("{}: '{}' must be a non-negative integer, found {}",
                                     spec_.config_path.string(), rule->key, json_excerpt(entry)));
      value = entry.get<int64_t>();
    } else if (rule->fallback) {
      value = evaluate(*rule->fallback);
    } else {
      throw ModelError(fmt::format("{}: missing key '{}' (the {} family needs it for its {})",
                                   spec_.config_path.string(), rule->key, spec_.family->family,
                                   name(dim)));
    }
    if (value > kMaxConfigSize)
      throw ModelError(fmt::format(
          "{}: '{}' is {}, more than the limit of {}", spec_.config_path.string(),
          rule->key.empty() ? std::string(name(dim)) : rule->key, value, kMaxConfigSize));
    in_progress_[static_cast<size_t>(dim)] = false;
    slot = value;
    return value;
  }

  int64_t evaluate(const std::string& expression) {
    try {
      // Profile load checked every name against the family's dims.
      return evaluate_dim_expression(
          expression, [this](std::string_view id) { return resolve(*from_name<Dim>(id)); });
    } catch (const std::invalid_argument& error) {
      throw ModelError(fmt::format("{}: cannot compute a size of the {} model: {}",
                                   spec_.config_path.string(), spec_.family->family, error.what()));
    }
  }

  bool flag_value(const FlagRule& rule) {
    if (!config_.contains(rule.key) || config_[rule.key].is_null())
      return rule.presence ? false : rule.fallback;
    const json& entry = config_[rule.key];
    if (rule.presence) return !(entry.is_number() && entry.get<double>() == 0);
    if (!entry.is_boolean())
      throw ModelError(fmt::format("{}: '{}' must be true or false, found {}",
                                   spec_.config_path.string(), rule.key, json_excerpt(entry)));
    return entry.get<bool>();
  }

  std::optional<double> number_value(const NumberRule& rule) {
    if (!config_.contains(rule.key) || config_[rule.key].is_null()) return rule.fallback;
    const json& entry = config_[rule.key];
    if (!entry.is_number())
      throw ModelError(fmt::format("{}: '{}' must be a number, found {}",
                                   spec_.config_path.string(), rule.key, json_excerpt(entry)));
    return entry.get<double>();
  }

  ModelSpec& spec_;
  const json& config_;
  std::array<bool, static_cast<size_t>(Dim::kCount)> in_progress_{};
};

bool rule_applies(const TensorRule& rule, const ModelSpec& spec) {
  if (rule.when && !spec.flag(*rule.when)) return false;
  if (rule.unless && spec.flag(*rule.unless)) return false;
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
    const Dim dim = *from_name<Dim>(name);  // checked at profile load
    return dim == Dim::kExperts ? layer_experts : spec.dim(dim);
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
  const std::string& key = spec.family->slice_config_keys.experts_per_layer;
  const json& config = spec.text_config();
  if (key.empty() || !config.contains(key) || config[key].is_null()) return counts;
  const json& list = config[key];
  const std::string path = spec.config_path.string();
  if (!list.is_array() || list.size() != counts.size())
    throw ModelError(fmt::format("{}: '{}' must list {} expert counts (one per layer), found {}",
                                 path, key, counts.size(), json_excerpt(list)));
  for (size_t l = 0; l < counts.size(); ++l) {
    const json& entry = list[l];
    if (!entry.is_number_integer())
      throw ModelError(fmt::format("{}: '{}' entry {} must be an integer, found {}", path, key, l,
                                   json_excerpt(entry)));
    const int64_t count = entry.get<int64_t>();
    if (count == 0)
      throw UnsupportedError(fmt::format(
          "{}: '{}' entry {} is 0 (a dense layer); dense layers in this family are not supported",
          path, key, l));
    if (count < spec.experts_per_token || count > spec.num_experts)
      throw ModelError(fmt::format(
          "{}: '{}' entry {} is {}, expected between experts per token ({}) and '{}' ({})", path,
          key, l, count, spec.experts_per_token, spec.family->slice_config_keys.num_experts,
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
      int64_t step = 1;
      if (config.contains("decoder_sparse_step") && !config["decoder_sparse_step"].is_null()) {
        const json& entry = config["decoder_sparse_step"];
        if (!entry.is_number_integer())
          throw ModelError(fmt::format("{}: 'decoder_sparse_step' must be an integer, found {}",
                                       spec.config_path.string(), json_excerpt(entry)));
        // A step beyond the layer count (2^64-1 included) leaves every layer dense.
        step = entry.is_number_unsigned() && entry.get<uint64_t>() > INT64_MAX
                   ? INT64_MAX
                   : entry.get<int64_t>();
      }
      return step > 0 && (layer + 1) % step == 0;
    }
    case SparseLayerRule::kFirstKDense: {
      const int64_t frequency = std::max<int64_t>(1, spec.dim_or(Dim::kMoeLayerFreq, 1));
      return layer >= spec.dim_or(Dim::kFirstDense, 0) && layer % frequency == 0;
    }
  }
  return true;
}

void check_sizes(const ModelSpec& spec) {
  const auto& path = spec.config_path;
  auto require = [&](bool ok, const std::string& what) {
    if (!ok) throw ModelError(fmt::format("{}: {}", path.string(), what));
  };
  for (Dim dim :
       {Dim::kHidden, Dim::kLayers, Dim::kHeads, Dim::kKvHeads, Dim::kHeadDim, Dim::kVocab})
    require(spec.dim(dim) > 0,
            fmt::format("'{}' must be positive, found {}", name(dim), spec.dim(dim)));
  // The config key a size comes from, for messages ("num_hidden_layers").
  auto key = [&](Dim dim) {
    const DimRule* rule = spec.family->find_dim(dim);
    return rule != nullptr && !rule->key.empty() ? rule->key : std::string(name(dim));
  };
  require(spec.num_layers <= kMaxLayers,
          fmt::format("'{}' is {}, more than the limit of {} layers", key(Dim::kLayers),
                      spec.num_layers, kMaxLayers));
  require(spec.mtp_layers >= 0 && spec.mtp_layers <= kMaxLayers,
          fmt::format("'{}' is {}; expected 0 to {} multi-token-prediction layers",
                      key(Dim::kMtpLayers), spec.mtp_layers, kMaxLayers));
  require(spec.num_experts <= kMaxExpertsPerLayer,
          fmt::format("'{}' is {}, more than the limit of {} experts per layer", key(Dim::kExperts),
                      spec.num_experts, kMaxExpertsPerLayer));
  require(spec.num_layers * spec.num_experts <= kMaxExpertsInModel,
          fmt::format("{} layers of {} experts are more than the limit of {} experts in a model",
                      spec.num_layers, spec.num_experts, kMaxExpertsInModel));
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

const ResolvedTensor* find_role(const std::vector<ResolvedTensor>& tensors, TensorRole role) {
  for (const auto& tensor : tensors)
    if (tensor.role == role) return &tensor;
  return nullptr;
}

RoutingSpec resolve_routing(const ModelSpec& spec) {
  RoutingSpec routing;
  routing.kind = spec.family->routing;
  routing.renormalise =
      spec.flag(Flag::kNormTopkProb) || routing.kind == RoutingKind::kSoftmaxTopKRenormalised;
  routing.groups = spec.dim_or(Dim::kNGroup, 1);
  routing.groups_per_token = spec.dim_or(Dim::kTopkGroup, 1);
  routing.scaling = spec.number(Number::kRoutedScalingFactor).value_or(1.0);
  return routing;
}

}  // namespace

const ResolvedTensor* LayerSpec::find(TensorRole role) const { return find_role(tensors, role); }

std::string LayerSpec::name_of(TensorRole role) const {
  const ResolvedTensor* tensor = find(role);
  return tensor ? tensor->name : std::string();
}

const ResolvedTensor* LayerSpec::find_expert(int64_t expert, TensorRole role) const {
  return find_role(experts.at(static_cast<size_t>(expert)), role);
}

const json& ModelSpec::text_config() const {
  return text_config_key.empty() ? config : config.at(text_config_key);
}

int64_t ModelSpec::dim(Dim which) const {
  const std::optional<int64_t>& value = dim_values[static_cast<size_t>(which)];
  if (!value) throw std::out_of_range(fmt::format("no size '{}' in this model", name(which)));
  return *value;
}

int64_t ModelSpec::dim_or(Dim which, int64_t fallback) const {
  return dim_values[static_cast<size_t>(which)].value_or(fallback);
}

bool ModelSpec::flag(Flag which) const { return flag_values[static_cast<size_t>(which)]; }

std::optional<double> ModelSpec::number(Number which) const {
  return number_values[static_cast<size_t>(which)];
}

const ResolvedTensor* ModelSpec::find_model_tensor(TensorRole role) const {
  return find_role(model_tensors, role);
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

bool ModelSpec::per_layer_expert_counts() const {
  return !family->slice_config_keys.experts_per_layer.empty();
}

int64_t ModelSpec::routed_experts() const {
  return family->shared_expert_kind == SharedExpertKind::kLastRouted ? num_experts - shared_experts
                                                                     : num_experts;
}

std::optional<ExpertTensor> ModelSpec::expert_tensor(std::string_view name) const {
  if (expert_naming.empty()) return std::nullopt;
  const auto parsed = expert_naming.parse(name);
  if (!parsed || parsed->layer >= num_layers) return std::nullopt;
  const LayerSpec& layer = layers[static_cast<size_t>(parsed->layer)];
  if (!layer.has_experts || parsed->expert >= layer.num_experts) return std::nullopt;
  ExpertTensor tensor{parsed->layer, parsed->expert, std::nullopt, false,
                      std::string(parsed->suffix)};
  // A companion sits beside the listed tensor whose name it shares up to that one's last '.'.
  for (const ResolvedTensor& listed : layer.experts[static_cast<size_t>(parsed->expert)]) {
    if (listed.name == name) {
      tensor.role = listed.role;
      tensor.listed = true;
      break;
    }
    const size_t dot = listed.name.rfind('.');
    if (!tensor.role && dot != std::string::npos &&
        name.substr(0, dot + 1) == std::string_view(listed.name).substr(0, dot + 1))
      tensor.role = listed.role;
  }
  return tensor;
}

std::string ModelSpec::expert_tensor_name(const ExpertTensor& tensor, int64_t expert) const {
  return expert_naming.prefix(tensor.layer, expert) + tensor.suffix;
}

namespace {

ModelSpec resolve_checked_spec(const json& config, const std::filesystem::path& config_path) {
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
  spec.hidden = spec.dim(Dim::kHidden);
  spec.num_layers = spec.dim(Dim::kLayers);
  spec.heads = spec.dim(Dim::kHeads);
  spec.kv_heads = spec.dim(Dim::kKvHeads);
  spec.head_dim = spec.dim(Dim::kHeadDim);
  spec.vocab = spec.dim(Dim::kVocab);
  spec.num_experts = spec.dim(Dim::kExperts);
  spec.experts_per_token = spec.dim(Dim::kTopK);
  spec.shared_experts = spec.dim(Dim::kSharedExperts);
  spec.expert_width = spec.dim(Dim::kExpertWidth);
  spec.mtp_layers = spec.dim_or(Dim::kMtpLayers, 0);
  check_sizes(spec);
  spec.routing = resolve_routing(spec);
  spec.forward = resolve_forward_spec(spec);
  if (family->expert_storage == ExpertStorage::kPerExpert)
    spec.expert_naming = ExpertNaming(family->expert_prefix);

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
      if (family->expert_storage == ExpertStorage::kPerExpert) {
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

}  // namespace

ModelSpec resolve_model_spec(const json& config, const std::filesystem::path& config_path) {
  try {
    return resolve_checked_spec(config, config_path);
  } catch (const json::exception& error) {
    // Every config value is type-checked before use and named in its own message; this is the
    // net under a check missed, so that a wrongly typed value is still the config's fault.
    throw ModelError(
        fmt::format("{}: a value has the wrong type ({})", config_path.string(), error.what()));
  }
}

namespace {

// The layer a tensor name belongs to by the family's layer naming ("model.layers.{layer}."), or
// nullopt for a name outside every layer.
std::optional<int64_t> layer_of_name(const FamilyProfile& family, std::string_view name) {
  if (family.layer_tensors.empty()) return std::nullopt;
  const std::string& rule = family.layer_tensors.front().name;
  const size_t at = rule.find("{layer}");
  if (at == std::string::npos || name.substr(0, at) != std::string_view(rule).substr(0, at))
    return std::nullopt;
  int64_t layer = 0;
  size_t i = at;
  for (; i < name.size() && std::isdigit(static_cast<unsigned char>(name[i])) != 0; ++i) {
    if (layer > (int64_t{1} << 40)) return std::nullopt;  // no real layer number
    layer = layer * 10 + (name[i] - '0');
  }
  if (i == at || i >= name.size() || name[i] != '.') return std::nullopt;
  return layer;
}

// Tensors of layers or experts the config does not describe would be carried along unchecked
// (a slice would copy them unsliced): refuse them, naming the first.
void refuse_undescribed_tensors(const ModelSpec& spec, const TensorStore& checkpoint) {
  for (const auto& [name, view] : checkpoint.tensors()) {
    const auto layer_index = layer_of_name(*spec.family, name);
    if (layer_index && *layer_index >= spec.num_layers + spec.mtp_layers)
      throw ModelError(fmt::format(
          "{}: tensor '{}' belongs to layer {}, but {} describes {} layers (0 to {}){}; tensors "
          "the config does not describe are refused",
          checkpoint.path().string(), name, *layer_index, spec.config_path.string(),
          spec.num_layers, spec.num_layers - 1,
          spec.mtp_layers > 0
              ? fmt::format(" and {} multi-token-prediction layer(s)", spec.mtp_layers)
              : std::string()));
    if (layer_index && *layer_index >= spec.num_layers)
      continue;  // an MTP layer's: not checked, not used
    if (spec.expert_naming.empty()) continue;
    const auto parsed = spec.expert_naming.parse(name);
    if (!parsed || parsed->layer >= spec.num_layers) continue;
    const LayerSpec& layer = spec.layers[static_cast<size_t>(parsed->layer)];
    if (parsed->expert >= layer.num_experts)
      throw ModelError(fmt::format(
          "{}: tensor '{}' belongs to expert {} of layer {}, but {} describes {} there; tensors "
          "the config does not describe are refused",
          checkpoint.path().string(), name, parsed->expert, parsed->layer,
          spec.config_path.string(),
          layer.has_experts ? fmt::format("{} experts", layer.num_experts)
                            : std::string("no experts")));
  }
}

}  // namespace

bool ModelSpec::in_mtp_layer(std::string_view name) const {
  const auto layer = layer_of_name(*family, name);
  return layer && *layer >= num_layers && *layer < num_layers + mtp_layers;
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
  spec.for_each_tensor(check);
  refuse_undescribed_tensors(spec, checkpoint);
  // Fused experts are optional in each form (gpt-oss: plain or MXFP4, or llama.cpp's split
  // stacks in a GGUF); one must be there.
  if (spec.family->expert_storage == ExpertStorage::kFused)
    for (const auto& layer : spec.layers) {
      const std::string plain_name = layer.name_of(TensorRole::kGateUpProj);
      const std::string mxfp4_name = layer.name_of(TensorRole::kGateUpProjBlocks);
      const bool plain = checkpoint.find(plain_name) != nullptr;
      const bool mxfp4 = checkpoint.find(mxfp4_name) != nullptr;
      const bool split = checkpoint.find(layer.name_of(TensorRole::kGateExps)) != nullptr;
      if (layer.has_experts && !plain && !mxfp4 && !split)
        throw ModelError(fmt::format("{}: layer {} has neither '{}' nor '{}'",
                                     checkpoint.path().string(), layer.index, plain_name,
                                     mxfp4_name));
    }
}

std::vector<const ResolvedTensor*> ModelSpec::fresh_tensors(bool mxfp4_experts) const {
  std::vector<const ResolvedTensor*> fresh;
  for_each_tensor([&fresh](const ResolvedTensor& tensor) {
    if (!tensor.optional) fresh.push_back(&tensor);
  });
  const auto wanted = [mxfp4_experts](TensorRole role) {
    if (mxfp4_experts)
      return role == TensorRole::kGateUpProjBlocks || role == TensorRole::kGateUpProjScales ||
             role == TensorRole::kDownProjBlocks || role == TensorRole::kDownProjScales;
    return role == TensorRole::kGateUpProj || role == TensorRole::kDownProj;
  };
  if (family->expert_storage == ExpertStorage::kFused)
    for (const LayerSpec& layer : layers)
      for (const ResolvedTensor& tensor : layer.tensors)
        if (wanted(tensor.role)) fresh.push_back(&tensor);
  return fresh;
}

Model open_model(const std::filesystem::path& path) {
  std::shared_ptr<const TensorStore> checkpoint = open_tensor_store(path);
  // A GGUF's metadata and tensors take the places of its family's config and tensors.
  if (auto gguf = std::dynamic_pointer_cast<const GgufModel>(checkpoint))
    return gguf_model(std::move(gguf));
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
  spec.for_each_tensor([&release](const ResolvedTensor& tensor) {
    release(tensor.name);
    release(scale_inv_name(tensor.name));  // FP8 block scales, where there are any
  });
}

}  // namespace moeslice
