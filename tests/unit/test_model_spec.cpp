// Family profiles and their resolution into a ModelSpec: every family resolves from the config
// make-random writes, sizes follow the config keys, and layer kinds follow each family's rule.
#include <doctest/doctest.h>

#include "common/error.h"
#include "model/dim_expression.h"
#include "model/model_spec.h"
#include "model/random_checkpoint.h"

using namespace moeslice;
using nlohmann::json;

namespace {

ModelSpec spec_for(const std::string& family, std::map<Dim, int64_t> dims = {},
                   json overrides = json::object()) {
  RandomModelOptions options;
  options.family = family;
  options.dims = std::move(dims);
  options.config_overrides = std::move(overrides);
  return resolve_model_spec(random_model_config(options), "config.json");
}

}  // namespace

TEST_CASE("dim expressions follow arithmetic precedence") {
  auto lookup = [](std::string_view name) -> int64_t {
    if (name == "hidden") return 2048;
    if (name == "heads") return 16;
    throw std::invalid_argument("unknown");
  };
  CHECK(evaluate_dim_expression("hidden / heads", lookup) == 128);
  CHECK(evaluate_dim_expression("2 * (hidden + 2) - 4", lookup) == 4096);
  CHECK(evaluate_dim_expression("heads * 2 + 1", lookup) == 33);
  CHECK_THROWS_AS(evaluate_dim_expression("hidden / 0", lookup), std::invalid_argument);
  CHECK_THROWS_AS(evaluate_dim_expression("hidden +", lookup), std::invalid_argument);
  CHECK_THROWS_AS(evaluate_dim_expression("(hidden", lookup), std::invalid_argument);
}

TEST_CASE("every embedded family parses and resolves") {
  const auto& families = all_families();
  CHECK(families.size() == 8);
  for (const auto& family : families) {
    CAPTURE(family.family);
    const ModelSpec spec = spec_for(family.family);
    CHECK(spec.family == &family);
    CHECK(spec.num_layers == 2);
    CHECK(spec.num_experts == 8);
    CHECK(spec.layers.size() == 2);
    CHECK(spec.find_model_tensor(TensorRole::kEmbed) != nullptr);
  }
}

TEST_CASE("emo counts its shared expert among experts and top-k") {
  const ModelSpec spec = spec_for("emo", {{Dim::kExperts, 16}, {Dim::kTopK, 4}});
  CHECK(spec.shared_experts == 1);
  CHECK(spec.routed_experts() == 15);
  CHECK(spec.layers[0].experts.size() == 16);
  CHECK(spec.layers[0].name_of(TensorRole::kAttnNorm) ==
        "model.layers.0.pre_attention_layernorm.weight");
  CHECK_THROWS_AS(spec_for("emo", {{Dim::kTopK, 1}}), ModelError);  // shared must be < top-k
}

TEST_CASE("qwen2_moe dense layers follow mlp_only_layers and decoder_sparse_step") {
  const ModelSpec spec = spec_for("qwen2_moe", {{Dim::kLayers, 4}},
                                  {{"mlp_only_layers", {0}}, {"decoder_sparse_step", 1}});
  CHECK(spec.expert_layers() == std::vector<int64_t>{1, 2, 3});
  CHECK(spec.layers[0].find(TensorRole::kGateProj) != nullptr);
  CHECK(spec.layers[0].find(TensorRole::kRouter) == nullptr);
  CHECK(spec.layers[1].find(TensorRole::kSharedExpertGate) != nullptr);
  const ModelSpec stepped =
      spec_for("qwen2_moe", {{Dim::kLayers, 4}}, {{"decoder_sparse_step", 2}});
  CHECK(stepped.expert_layers() == std::vector<int64_t>{1, 3});
}

TEST_CASE("deepseek_v3 keeps its first layers dense and has a correction bias") {
  const ModelSpec spec = spec_for("deepseek_v3", {{Dim::kLayers, 3}});
  CHECK(spec.expert_layers() == std::vector<int64_t>{1, 2});
  CHECK(spec.layers[1].find(TensorRole::kRouterCorrectionBias) != nullptr);
  CHECK(spec.layers[1].find(TensorRole::kQAProj) != nullptr);
  CHECK(spec.layers[1].find(TensorRole::kQProj) == nullptr);
}

TEST_CASE("flags decide optional tensors") {
  CHECK(spec_for("olmoe").find_model_tensor(TensorRole::kLmHead) != nullptr);
  CHECK(spec_for("olmoe", {}, {{"tie_word_embeddings", true}})
            .find_model_tensor(TensorRole::kLmHead) == nullptr);
  CHECK(spec_for("olmoe").layers[0].find(TensorRole::kQBias) == nullptr);
  CHECK(spec_for("olmoe", {}, {{"attention_bias", true}}).layers[0].find(TensorRole::kOBias) !=
        nullptr);
  CHECK(spec_for("qwen3_moe").layers[0].find(TensorRole::kQNorm)->shape ==
        std::vector<int64_t>{16});
}

TEST_CASE("configs nested under text_config resolve") {
  RandomModelOptions options;
  options.family = "qwen3_moe";
  const json inner = random_model_config(options);
  const json outer = {{"model_type", "some_vlm"}, {"text_config", inner}};
  const ModelSpec spec = resolve_model_spec(outer, "config.json");
  CHECK(spec.text_config_key == "text_config");
  CHECK(spec.family->family == "qwen3_moe");
}

TEST_CASE("emo's num_experts_per_layer gives each layer its own expert count") {
  const ModelSpec spec = spec_for("emo", {{Dim::kLayers, 3}, {Dim::kExperts, 8}, {Dim::kTopK, 2}},
                                  {{"num_experts_per_layer", {4, 8, 2}}});
  CHECK(!spec.uniform_experts());
  CHECK(spec.num_experts == 8);
  CHECK(spec.layers[0].num_experts == 4);
  CHECK(spec.layers[0].experts.size() == 4);
  CHECK(spec.layers[0].find(TensorRole::kRouter)->shape == std::vector<int64_t>{4, spec.hidden});
  CHECK(spec.layers[2].experts.size() == 2);
  CHECK(
      spec_for("emo", {{Dim::kLayers, 2}}, {{"num_experts_per_layer", nullptr}}).uniform_experts());
  const auto refused = [](json list) {
    return spec_for("emo", {{Dim::kLayers, 2}, {Dim::kExperts, 8}, {Dim::kTopK, 2}},
                    {{"num_experts_per_layer", std::move(list)}});
  };
  CHECK_THROWS_WITH_AS(refused({4}), doctest::Contains("must list 2 expert counts"), ModelError);
  CHECK_THROWS_WITH_AS(refused(4), doctest::Contains("must list 2 expert counts"), ModelError);
  CHECK_THROWS_WITH_AS(refused({4, "8"}), doctest::Contains("entry 1 must be an integer"),
                       ModelError);
  CHECK_THROWS_WITH_AS(refused({4, 9}), doctest::Contains("entry 1 is 9, expected between"),
                       ModelError);
  CHECK_THROWS_WITH_AS(refused({1, 8}), doctest::Contains("entry 0 is 1, expected between"),
                       ModelError);
  CHECK_THROWS_WITH_AS(refused({0, 8}), doctest::Contains("(a dense layer)"), UnsupportedError);
  // Other families have no per-layer key: the list is ignored there.
  CHECK(spec_for("olmoe", {}, {{"num_experts_per_layer", {1, 2}}}).uniform_experts());
}

TEST_CASE("bad configs are refused with the key named") {
  RandomModelOptions options;
  options.family = "mixtral";
  json config = random_model_config(options);
  config.erase("num_local_experts");
  CHECK_THROWS_WITH_AS(resolve_model_spec(config, "dir/config.json"),
                       doctest::Contains("missing key 'num_local_experts'"), ModelError);
  config = random_model_config(options);
  config["model_type"] = "gpt2";
  CHECK_THROWS_WITH_AS(resolve_model_spec(config, "dir/config.json"),
                       doctest::Contains("unknown model family \"gpt2\""), UnsupportedError);
  config = random_model_config(options);
  config["num_attention_heads"] = -4;
  CHECK_THROWS_AS(resolve_model_spec(config, "dir/config.json"), ModelError);
  CHECK_THROWS_AS(resolve_model_spec(json::array(), "dir/config.json"), ModelError);
}
