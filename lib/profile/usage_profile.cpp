// Reading, writing and merging usage profiles.
#include "profile/usage_profile.h"

#include <cmath>
#include <cstring>
#include <string_view>

#include <fmt/core.h>

#include "common/error.h"
#include "common/json_parse.h"
#include "format/safetensors/file.h"
#include "format/safetensors/writer.h"

namespace moeslice {
namespace {

using nlohmann::json;

template <typename T>
std::vector<std::byte> to_bytes(const std::vector<T>& values) {
  std::vector<std::byte> bytes(values.size() * sizeof(T));
  if (!values.empty()) std::memcpy(bytes.data(), values.data(), bytes.size());
  return bytes;
}

template <typename T>
std::vector<T> read_tensor(const SafetensorsFile& file, const std::string& name, DType dtype,
                           const std::vector<int64_t>& shape) {
  const TensorView* view = file.find(name);
  if (view == nullptr)
    throw FormatError(
        fmt::format("{}: not a usage profile: tensor '{}' is missing", file.path().string(), name));
  if (view->dtype != dtype || view->shape != shape)
    throw FormatError(fmt::format("{}: tensor '{}' is {} {}, expected {} {}", file.path().string(),
                                  name, dtype_name(view->dtype), view->shape_string(),
                                  dtype_name(dtype), format_shape(shape)));
  std::vector<T> values(view->bytes.size() / sizeof(T));
  if (!values.empty()) std::memcpy(values.data(), view->bytes.data(), view->bytes.size());
  return values;
}

// The metadata keys two profiles must agree on to be merged.
constexpr const char* kSameModelKeys[] = {"family",
                                          "model",
                                          "layers",
                                          "experts",
                                          "experts_per_layer",
                                          "expert_layers",
                                          "top_k",
                                          "shared_experts",
                                          "max_seq",
                                          "keep_plan",
                                          "compute",
                                          "routing_groups",
                                          "routing_groups_per_token"};

}  // namespace

int64_t UsageProfile::add_document(UsageDocument document) {
  documents.push_back(std::move(document));
  const size_t block = static_cast<size_t>(layers * experts);
  counts.resize(counts.size() + block, 0);
  mass.resize(mass.size() + block, 0.0f);
  gate_norm.resize(gate_norm.size() + block, 0.0f);
  gate_weight.resize(gate_weight.size() + block, 0.0f);
  tokens.push_back(0);
  return document_count() - 1;
}

void write_usage_profile(const std::filesystem::path& path, const UsageProfile& profile,
                         bool overwrite) {
  json info = profile.info;
  info["schema"] = kUsageSchemaVersion;
  info["layers"] = profile.layers;
  info["experts"] = profile.experts;
  json documents = json::array();
  for (const auto& document : profile.documents)
    documents.push_back({{"id", document.id}, {"domain", document.domain}});
  info["documents"] = documents;
  const std::vector<int64_t> shape = {profile.document_count(), profile.layers, profile.experts};
  std::vector<TensorSource> tensors;
  tensors.push_back(
      TensorSource::from_bytes("counts", DType::I32, shape, to_bytes(profile.counts)));
  tensors.push_back(
      TensorSource::from_bytes("gate_norm", DType::F32, shape, to_bytes(profile.gate_norm)));
  tensors.push_back(
      TensorSource::from_bytes("gate_weight", DType::F32, shape, to_bytes(profile.gate_weight)));
  tensors.push_back(TensorSource::from_bytes("mass", DType::F32, shape, to_bytes(profile.mass)));
  tensors.push_back(TensorSource::from_bytes("tokens", DType::I64, {profile.document_count()},
                                             to_bytes(profile.tokens)));
  write_safetensors(path, tensors, {{kUsageMetadataKey, info.dump()}}, overwrite);
}

namespace {

// A NaN or infinity (a profile written before non-finite weights were refused) would rank every
// expert alike and report "mass kept 1.000": refused, naming where it is.
void check_finite(const std::filesystem::path& path, const UsageProfile& profile,
                  std::string_view tensor, const std::vector<float>& values) {
  for (size_t i = 0; i < values.size(); ++i) {
    if (std::isfinite(values[i])) continue;
    const size_t experts = static_cast<size_t>(profile.experts);
    const size_t per_document = experts * static_cast<size_t>(profile.layers);
    const size_t document = i / per_document;
    throw FormatError(fmt::format(
        "{}: tensor '{}' holds {} for document '{}', layer {}, expert {}: the profile was made "
        "from a model or input that computes NaN or Inf; profile again once that is fixed",
        path.string(), tensor, std::isnan(values[i]) ? "NaN" : "Inf",
        profile.documents.at(document).id, i % per_document / experts, i % experts));
  }
}

}  // namespace

UsageProfile read_usage_profile(const std::filesystem::path& path) {
  const auto file = SafetensorsFile::open(path);
  const auto it = file->metadata().find(kUsageMetadataKey);
  if (it == file->metadata().end())
    throw FormatError(fmt::format("{}: not a usage profile (no '{}' metadata)", path.string(),
                                  kUsageMetadataKey));
  UsageProfile profile;
  try {
    profile.info = parse_json(it->second, fmt::format("{}: usage metadata", path.string()));
  } catch (const JsonSyntaxError& error) {
    throw FormatError(
        fmt::format("{}: usage metadata is malformed ({})", path.string(), error.detail()));
  }
  try {
    if (profile.info.value("schema", 0) != kUsageSchemaVersion)
      throw FormatError(fmt::format("{}: usage schema {}, expected {}", path.string(),
                                    json_excerpt(profile.info.value("schema", json())),
                                    kUsageSchemaVersion));
    profile.layers = profile.info.at("layers").get<int64_t>();
    profile.experts = profile.info.at("experts").get<int64_t>();
    for (const auto& document : profile.info.at("documents"))
      profile.documents.push_back(
          {document.at("id").get<std::string>(), document.value("domain", "")});
  } catch (const json::exception& error) {
    throw FormatError(
        fmt::format("{}: usage metadata is malformed ({})", path.string(), error.what()));
  }
  profile.info.erase("documents");
  const std::vector<int64_t> shape = {profile.document_count(), profile.layers, profile.experts};
  profile.counts = read_tensor<int32_t>(*file, "counts", DType::I32, shape);
  profile.mass = read_tensor<float>(*file, "mass", DType::F32, shape);
  profile.gate_norm = read_tensor<float>(*file, "gate_norm", DType::F32, shape);
  // Recorded since issue 18; an older profile reads as zeros (no metric uses it).
  profile.gate_weight = file->find("gate_weight") != nullptr
                            ? read_tensor<float>(*file, "gate_weight", DType::F32, shape)
                            : std::vector<float>(profile.gate_norm.size(), 0.0f);
  profile.tokens = read_tensor<int64_t>(*file, "tokens", DType::I64, {profile.document_count()});
  check_finite(path, profile, "mass", profile.mass);
  check_finite(path, profile, "gate_norm", profile.gate_norm);
  check_finite(path, profile, "gate_weight", profile.gate_weight);
  return profile;
}

UsageProfile merge_usage_profiles(std::span<const UsageProfile> profiles,
                                  std::span<const std::string> sources) {
  if (profiles.empty()) throw InputError("merge needs at least one usage profile");
  UsageProfile merged;
  merged.layers = profiles[0].layers;
  merged.experts = profiles[0].experts;
  merged.info = profiles[0].info;
  json all_sources = json::array();
  for (size_t i = 0; i < profiles.size(); ++i) {
    const UsageProfile& part = profiles[i];
    for (const char* key : kSameModelKeys)
      if (part.info.value(key, json()) != merged.info.value(key, json()))
        throw InputError(
            fmt::format("{}: '{}' is {}, but {} has {}; only profiles of the same "
                        "model and options can be merged",
                        sources[i], key, json_excerpt(part.info.value(key, json())), sources[0],
                        json_excerpt(merged.info.value(key, json()))));
    if (part.layers != merged.layers || part.experts != merged.experts)
      throw InputError(fmt::format("{}: shape [*, {}, {}] differs from {} [*, {}, {}]", sources[i],
                                   part.layers, part.experts, sources[0], merged.layers,
                                   merged.experts));
    merged.documents.insert(merged.documents.end(), part.documents.begin(), part.documents.end());
    merged.counts.insert(merged.counts.end(), part.counts.begin(), part.counts.end());
    merged.mass.insert(merged.mass.end(), part.mass.begin(), part.mass.end());
    merged.gate_norm.insert(merged.gate_norm.end(), part.gate_norm.begin(), part.gate_norm.end());
    merged.gate_weight.insert(merged.gate_weight.end(), part.gate_weight.begin(),
                              part.gate_weight.end());
    merged.tokens.insert(merged.tokens.end(), part.tokens.begin(), part.tokens.end());
    for (const auto& source : part.info.value("sources", json::array()))
      all_sources.push_back(source);
  }
  merged.info["sources"] = all_sources;
  return merged;
}

}  // namespace moeslice
