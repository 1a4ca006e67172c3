// Expert usage per document, layer and expert, and its file format (a safetensors file written
// with our own writer; see docs/usage-format.md):
//   counts    I32 [D, L, E]  tokens of document d that chose expert e in layer l (top-k slots,
//                            EMO's shared experts included)
//   mass      F32 [D, L, E]  sum over d's tokens of e's router probability as the family routes
//                            (EMO: split softmax, a shared expert gets 1.0 per token)
//   gate_norm F32 [D, L, E]  sum over d's tokens routed to e of gate weight x L2 norm of e's output
//   gate_weight F32 [D, L, E]  sum over d's tokens routed to e of the gate weight its output is
//                            scaled by (group-limited sigmoid routers: the chosen sigmoid score,
//                            normalised when norm_topk_prob, times routed_scaling_factor); zeros
//                            when read from a profile written before it was recorded
//   tokens    I64 [D]        tokens per document
// Layers without experts hold zeros. `__metadata__` holds one key, "moeslice_usage", a JSON
// document with the schema version, the model, the corpus and one entry per document.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace moeslice {

inline constexpr int kUsageSchemaVersion = 1;
inline constexpr const char* kUsageMetadataKey = "moeslice_usage";

struct UsageDocument {
  std::string id;
  std::string domain;  // "" when the corpus has no labels
};

struct UsageProfile {
  int64_t layers = 0;
  int64_t experts = 0;
  std::vector<UsageDocument> documents;
  std::vector<int32_t> counts;     // [D, L, E]
  std::vector<float> mass;         // [D, L, E]
  std::vector<float> gate_norm;    // [D, L, E]
  std::vector<float> gate_weight;  // [D, L, E]
  std::vector<int64_t> tokens;     // [D]
  // Everything else recorded: schema, model path and family, expert layers, top_k,
  // shared_experts, sources (corpus files and their document counts), moeslice version and the
  // options that change the numbers (max_seq, keep plan).
  nlohmann::json info = nlohmann::json::object();

  int64_t document_count() const { return static_cast<int64_t>(documents.size()); }
  size_t index(int64_t document, int64_t layer, int64_t expert) const {
    return static_cast<size_t>((document * layers + layer) * experts + expert);
  }
  // Appends an empty document (zeros) and returns its index.
  int64_t add_document(UsageDocument document);
};

void write_usage_profile(const std::filesystem::path& path, const UsageProfile& profile,
                         bool overwrite);
// Throws FormatError naming the file and tensor (missing, wrong dtype or shape, metadata not the
// expected JSON).
UsageProfile read_usage_profile(const std::filesystem::path& path);

// Concatenates the documents of profiles of the same model, in order. Throws InputError naming the
// file whose model, shape or options differ from the first. `sources` name the inputs.
UsageProfile merge_usage_profiles(std::span<const UsageProfile> profiles,
                                  std::span<const std::string> sources);

}  // namespace moeslice
