// Family profiles and their resolution into a ModelSpec: every family resolves from the config
// make-random writes, sizes follow the config keys, and layer kinds follow each family's rule;
// the typed vocabulary refuses misspelt names at profile load; forward settings and refusals,
// group routing and expert tensor ownership are the spec's.
#include <doctest/doctest.h>
#include <cmath>

#include <functional>

#include "common/error.h"
#include "model/dim_expression.h"
#include "model/embedded_profiles.h"
#include "model/model_spec.h"
#include "model/random_checkpoint.h"
#include "model/sliced_config.h"
#include "test_util.h"

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
  CHECK(families.size() == 9);  // glm4_moe joined (issue 18)
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

TEST_CASE("the vocabulary's names read back, and role kinds follow the role names") {
  for (size_t i = 0; i < static_cast<size_t>(Dim::kCount); ++i)
    CHECK(from_name<Dim>(name(static_cast<Dim>(i))) == static_cast<Dim>(i));
  for (size_t i = 0; i < static_cast<size_t>(Flag::kCount); ++i)
    CHECK(from_name<Flag>(name(static_cast<Flag>(i))) == static_cast<Flag>(i));
  for (size_t i = 0; i < static_cast<size_t>(Number::kCount); ++i)
    CHECK(from_name<Number>(name(static_cast<Number>(i))) == static_cast<Number>(i));
  CHECK(!from_name<Flag>("norm_topk_probb"));
  CHECK(!from_name<Dim>("hiden"));
  for (size_t i = 0; i < static_cast<size_t>(TensorRole::kCount); ++i) {
    const auto role = static_cast<TensorRole>(i);
    const std::string spelling(name(role));
    CAPTURE(spelling);
    CHECK(from_name<TensorRole>(spelling) == role);
    // make-random's draws were once chosen from these spellings; the kinds must agree with them.
    const auto has = [&spelling](const char* part) {
      return spelling.find(part) != std::string::npos;
    };
    const RoleKind expected = has("norm")                          ? RoleKind::kNorm
                              : spelling == "embed"                ? RoleKind::kEmbedding
                              : spelling == "sinks" || has("bias") ? RoleKind::kAdditive
                              : spelling == "router" || spelling == "shared_expert_gate"
                                  ? RoleKind::kGate
                                  : RoleKind::kMatrix;
    CHECK(role_kind(role) == expected);
    CHECK(is_router_part(role) == (spelling.rfind("router", 0) == 0));
  }
}

namespace {

json embedded_profile(std::string_view family) {
  for (const auto& embedded : embedded_profiles())
    if (embedded.family == family) return json::parse(embedded.json);
  FAIL("no embedded profile " << std::string(family));
  return {};
}

// The message parse_family_profile refuses `profile` with ("" when it accepts it).
std::string refusal(const json& profile) {
  try {
    parse_family_profile(profile, "profiles/test.json");
  } catch (const std::logic_error& error) {
    return error.what();
  }
  return "";
}

}  // namespace

TEST_CASE("every embedded profile loads, and a misspelt name in one is refused at load") {
  for (const auto& embedded : embedded_profiles()) {
    CAPTURE(std::string(embedded.family));
    CHECK(refusal(json::parse(embedded.json)).empty());
  }
  const json olmoe = embedded_profile("olmoe");
  const auto edited = [&olmoe](const std::function<void(json&)>& edit) {
    json profile = olmoe;
    edit(profile);
    return refusal(profile);
  };
  const auto tensor = [](json& profile, size_t index) -> json& {
    return profile["tensors"]["layer"][index];
  };
  struct Case {
    std::function<void(json&)> edit;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {[](json& p) { p["dims"]["hiden"] = p["dims"]["hidden"]; }, "unknown dim 'hiden'"},
      {[](json& p) { p["dims"].erase("vocab"); }, "dim 'vocab' is missing"},
      {[](json& p) { p["dims"]["head_dim"]["default"] = "hidden / headz"; },
       "unknown size 'headz'"},
      {[](json& p) { p["flags"]["tie_word_embedding"] = p["flags"]["tie_word_embeddings"]; },
       "unknown flag 'tie_word_embedding'"},
      {[](json& p) { p["numbers"]["rope_thetaa"] = p["numbers"]["rope_theta"]; },
       "unknown number 'rope_thetaa'"},
      {[&](json& p) { tensor(p, 1)["shape"][0] = "heads * head_dimm"; },
       "unknown size 'head_dimm'"},
      {[&](json& p) { tensor(p, 1)["role"] = "q_prj"; }, "'q_prj'"},
      {[&](json& p) { tensor(p, 5)["when"] = "attention_biass"; }, "'attention_biass'"},
      {[&](json& p) { tensor(p, 5)["when"] = "qkv_bias"; },
       "uses flag 'qkv_bias', which the profile does not declare"},
      {[](json& p) { p["forward_refusals"][0]["refuse"] = "differ"; },
       "unknown condition 'differ'"},
      {[](json& p) { p["forward_refusals"][0]["dims"][0] = "head_dim * headz"; },
       "unknown size 'headz'"},
      {[](json& p) { p["forward_refusals"][0]["why"] = "is {hidden / head}"; },
       "unknown size 'head'"},
      {[](json& p) { p["slice_config_keys"]["group_counts"] = "n_group"; },
       "unknown slice_config_keys entry 'group_counts'"},
      {[](json& p) { p["attention"]["sliding_window"] = "sometimes"; },
       "unknown attention.sliding_window \"sometimes\""},
      {[](json& p) { p["attention"]["sliding_window"] = "when_use_sliding_window"; },
       "uses flag 'use_sliding_window', which the profile does not declare"},
      {[](json& p) { p["block"]["rope_bf16"] = "cast"; }, "unknown block.rope_bf16"},
      {[](json& p) { p["expert_storage"] = "fused"; }, "expert_storage"},
      {[](json& p) { p["tensors"]["expert_prefix"] = "model.layers.{layer}.experts."; },
       "must hold {expert} once"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.expected);
    const std::string message = edited(c.edit);
    test::check_mentions(message, {"family profile profiles/test.json: ", c.expected});
  }
}

TEST_CASE("sizes, flags and numbers are typed and resolved from the config") {
  const ModelSpec deepseek = spec_for("deepseek_v3", {{Dim::kLayers, 3}});
  CHECK(deepseek.dim(Dim::kNGroup) == 2);
  CHECK(deepseek.dim(Dim::kTopkGroup) == 1);
  CHECK(deepseek.routing.kind == RoutingKind::kDeepseekGroupSigmoid);
  CHECK(deepseek.routing.groups == 2);
  CHECK(deepseek.routing.groups_per_token == 1);
  CHECK(deepseek.flag(Flag::kQLora));
  CHECK(deepseek.number(Number::kRoutedScalingFactor) == 2.5);
  const ModelSpec olmoe = spec_for("olmoe");
  CHECK_THROWS_AS((void)olmoe.dim(Dim::kNGroup), std::out_of_range);
  CHECK(olmoe.dim_or(Dim::kNGroup, 1) == 1);
  CHECK(olmoe.routing.groups == 1);
  CHECK(!olmoe.flag(Flag::kUseSlidingWindow));  // not a flag of the family: false
  CHECK(!olmoe.number(Number::kSlidingWindow));
  CHECK(!spec_for("olmoe").routing.renormalise);
  CHECK(spec_for("olmoe", {}, {{"norm_topk_prob", true}}).routing.renormalise);
  CHECK(spec_for("mixtral").routing.renormalise);  // always, whatever the flags say
}

TEST_CASE("forward settings are resolved in the spec") {
  const ModelSpec olmoe = spec_for("olmoe", {}, {{"clip_qkv", 4.0}, {"rms_norm_eps", 1e-5}});
  CHECK(olmoe.forward.clip_qkv == 4.0f);
  CHECK(olmoe.forward.rms_norm_eps == 1e-5f);
  CHECK(olmoe.forward.rope_theta == 10000.0);
  CHECK(olmoe.forward.max_positions == 4096);
  CHECK(!spec_for("olmoe").forward.clip_qkv);
  // transformers v5 keeps the RoPE theta in rope_parameters.
  CHECK(spec_for("olmoe", {}, {{"rope_parameters", {{"rope_theta", 5.0}}}}).forward.rope_theta ==
        5.0);
  // Qwen applies a window only under use_sliding_window; Mixtral applies any.
  CHECK(!spec_for("qwen3_moe", {}, {{"sliding_window", 16}}).forward.sliding_window);
  CHECK(spec_for("qwen3_moe", {}, {{"sliding_window", 16}, {"use_sliding_window", true}})
            .forward.sliding_window == 16);
  CHECK(spec_for("mixtral", {}, {{"sliding_window", 16}}).forward.sliding_window == 16);
}

TEST_CASE("deepseek_v3: MLA's RoPE size, YaRN and the softmax scale from rope_scaling") {
  const ModelSpec plain = spec_for("deepseek_v3", {{Dim::kLayers, 3}});
  CHECK(plain.forward.rope_dim == plain.dim(Dim::kQkRopeHeadDim));
  CHECK(!plain.forward.yarn);
  CHECK(plain.forward.attention_scale_factor == 1.0);
  CHECK(plain.flag(Flag::kRopeInterleave));  // rope_interleave defaults to true
  CHECK(plain.routing.scaling == 2.5);
  // DeepSeek-V3's own rope_scaling: mscale = mscale_all_dim, so cos/sin are not scaled.
  const ModelSpec v3 = spec_for("deepseek_v3", {{Dim::kLayers, 3}},
                                {{"rope_scaling",
                                  {{"type", "yarn"},
                                   {"factor", 40},
                                   {"original_max_position_embeddings", 4096},
                                   {"beta_fast", 32},
                                   {"beta_slow", 1},
                                   {"mscale", 1.0},
                                   {"mscale_all_dim", 1.0}}}});
  REQUIRE(v3.forward.yarn);
  CHECK(v3.forward.yarn->factor == 40);
  CHECK(v3.forward.yarn->original_max_positions == 4096);
  CHECK(v3.forward.yarn->attention_factor == 1.0);
  const double mscale = 0.1 * std::log(40.0) + 1.0;
  CHECK(v3.forward.attention_scale_factor == doctest::Approx(mscale * mscale));
  // Without mscale: attention factor 0.1 ln(factor) + 1, no softmax factor; beta defaults.
  const ModelSpec bare = spec_for("deepseek_v3", {{Dim::kLayers, 3}},
                                  {{"rope_scaling", {{"rope_type", "yarn"}, {"factor", 4.0}}}});
  REQUIRE(bare.forward.yarn);
  CHECK(bare.forward.yarn->attention_factor == doctest::Approx(0.1 * std::log(4.0) + 1.0));
  CHECK(bare.forward.yarn->beta_fast == 32);
  CHECK(bare.forward.yarn->original_max_positions == 4096);  // max_position_embeddings
  CHECK(bare.forward.attention_scale_factor == 1.0);
  CHECK_NOTHROW(require_forward_support(bare));
}

TEST_CASE("glm4_moe: partial rotary, optional q/k norms, the DeepSeek router, dense layer 0") {
  const ModelSpec plain = spec_for("glm4_moe", {{Dim::kLayers, 3}});
  CHECK(plain.forward.rope_dim == plain.head_dim / 2);  // partial_rotary_factor 0.5
  CHECK(plain.routing.kind == RoutingKind::kDeepseekGroupSigmoid);
  CHECK(plain.layers[0].num_experts == 0);
  CHECK(plain.layers[1].num_experts == 8);
  CHECK(plain.layers[1].find(TensorRole::kQNorm) == nullptr);
  CHECK_NOTHROW(require_forward_support(plain));
  const ModelSpec normed = spec_for("glm4_moe", {{Dim::kLayers, 3}},
                                    {{"use_qk_norm", true}, {"partial_rotary_factor", 0.25}});
  CHECK(normed.forward.rope_dim == normed.head_dim / 4);
  REQUIRE(normed.layers[1].find(TensorRole::kQNorm) != nullptr);
  CHECK(normed.layers[1].find(TensorRole::kQNorm)->shape == std::vector<int64_t>{normed.head_dim});
  // 16 * 0.3 = 4.8 -> 4 as int() truncates; 16 * 0.1 -> 1 is refused.
  CHECK(spec_for("glm4_moe", {}, {{"partial_rotary_factor", 0.3}}).forward.rope_dim == 4);
  CHECK(test::thrown_message<UnsupportedError>([] {
          require_forward_support(spec_for("glm4_moe", {}, {{"partial_rotary_factor", 0.1}}));
        }).find("RoPE rotates 1 of a head's 16 dimensions") != std::string::npos);
}

TEST_CASE("glm4_moe: YaRN rope_scaling over the partial rotary dims, the softmax scale untouched") {
  const json yarn = {
      {"rope_type", "yarn"}, {"factor", 4.0},    {"original_max_position_embeddings", 2048},
      {"beta_fast", 8.0},    {"beta_slow", 0.5}, {"mscale_all_dim", 1.0}};
  const ModelSpec scaled = spec_for("glm4_moe", {{Dim::kLayers, 3}}, {{"rope_scaling", yarn}});
  REQUIRE(scaled.forward.yarn);
  CHECK(scaled.forward.rope_dim == scaled.head_dim / 2);  // the YaRN table's dim
  CHECK(scaled.forward.yarn->factor == 4.0);
  CHECK(scaled.forward.yarn->original_max_positions == 2048);
  CHECK(scaled.forward.yarn->beta_fast == 8.0);
  CHECK(scaled.forward.yarn->beta_slow == 0.5);
  // mscale unset: cos/sin scale by 0.1 ln(factor) + 1; mscale_all_dim is DeepSeek MLA's softmax
  // factor only, Glm4MoeAttention keeps head_dim^-0.5.
  CHECK(scaled.forward.yarn->attention_factor == doctest::Approx(0.1 * std::log(4.0) + 1.0));
  CHECK(scaled.forward.attention_scale_factor == 1.0);
  CHECK_NOTHROW(require_forward_support(scaled));
  // The older "type" key, and no rope_scaling at all.
  CHECK(spec_for("glm4_moe", {}, {{"rope_scaling", {{"type", "yarn"}, {"factor", 2.0}}}})
            .forward.yarn);
  CHECK(!spec_for("glm4_moe", {}, {{"rope_scaling", nullptr}}).forward.yarn);
  // Any other rope_scaling type stays refused, the message naming the key and the value.
  const std::string linear = test::thrown_message<UnsupportedError>([] {
    require_forward_support(
        spec_for("glm4_moe", {}, {{"rope_scaling", {{"rope_type", "linear"}, {"factor", 2.0}}}}));
  });
  CHECK(linear ==
        "config.json: 'rope_scaling' is {\"factor\":2.0,\"rope_type\":\"linear\"}, only "
        "null is supported (the glm4_moe forward pass does not implement it)");
}

TEST_CASE("the forward pass's refusals name the config key, as they always have") {
  const auto refused = [](const std::string& family, json overrides) {
    return test::thrown_message<UnsupportedError>(
        [&] { require_forward_support(spec_for(family, {}, std::move(overrides))); });
  };
  const auto message = [](const std::string& family, const std::string& what) {
    return "config.json: " + what + " (the " + family + " forward pass does not implement it)";
  };
  // deepseek_v3 computes since issue 18, gpt_oss since issue 19.
  CHECK_NOTHROW(require_forward_support(spec_for("gpt_oss", {{Dim::kLayers, 3}})));
  CHECK(refused("gpt_oss", {{"layer_types", {"sliding_attention"}}}) ==
        message("gpt_oss",
                "'layer_types' is [\"sliding_attention\"]; expected a list of 2 layer types"));
  CHECK_NOTHROW(require_forward_support(spec_for("deepseek_v3", {{Dim::kLayers, 3}})));
  CHECK(refused("deepseek_v3", {{"rope_scaling", {{"type", "linear"}, {"factor", 2.0}}}}) ==
        message("deepseek_v3",
                "'rope_scaling' is {\"factor\":2.0,\"type\":\"linear\"}, only null is supported"));
  CHECK(refused("deepseek_v3", {{"num_key_value_heads", 2}}) ==
        message("deepseek_v3",
                "'num_key_value_heads' is 2, the attention heads 4; MLA keys and values have one "
                "head per query head"));
  CHECK(refused("olmoe", {{"hidden_act", "gelu"}}) ==
        message("olmoe", "'hidden_act' is \"gelu\", only \"silu\" is supported"));
  CHECK(refused("qwen2_moe", {{"rope_scaling", {{"type", "yarn"}}}}) ==
        message("qwen2_moe", "'rope_scaling' is {\"type\":\"yarn\"}, only null is supported"));
  CHECK(refused("olmoe", {{"rope_parameters", 3}}) ==
        message("olmoe", "'rope_parameters' is not an object"));
  CHECK(refused("olmoe", {{"rope_parameters", {{"rope_type", "yarn"}}}}) ==
        message("olmoe", "'rope_parameters.rope_type' is \"yarn\", only \"default\" is supported"));
  CHECK(refused("olmoe", {{"rope_parameters", {{"rope_type", nullptr}}}}) ==
        message("olmoe", "'rope_parameters.rope_type' is null, only \"default\" is supported"));
  CHECK(refused("qwen3_moe", {{"head_dim", 7}}) ==
        message("qwen3_moe", "'head_dim' is 7; rotate-half RoPE needs an even head size"));
  CHECK(refused("olmoe", {{"head_dim", 8}}) ==
        message("olmoe", "'head_dim' is 8, olmoe requires hidden_size / num_attention_heads = 16"));
  CHECK(refused("flex_olmo", {{"clip_qkv", 0.5}}) ==
        message("flex_olmo", "'clip_qkv' is 0.5; only olmoe applies clip_qkv"));
  CHECK(refused("mixtral", {{"clip_qkv", "x"}}) ==
        message("mixtral", "'clip_qkv' is \"x\"; only olmoe applies clip_qkv"));
  CHECK(refused("mixtral", {{"attention_bias", 1}}) ==
        message("mixtral", "'attention_bias' is true; mixtral has no attention biases"));
  CHECK(refused("emo", {{"always_active_experts", {0}}}) ==
        message("emo", "'always_active_experts' is set"));
  CHECK(refused("emo", {{"always_active_experts_per_layer", {{1}}}}) ==
        message("emo", "'always_active_experts_per_layer' is set"));
  CHECK(refused("emo", {{"ghost_extend_eval", 0}}) == message("emo", "'ghost_extend_eval' is set"));
  CHECK(refused("emo", {{"dense_mlp_bias", true}}) == message("emo", "'dense_mlp_bias' is set"));
  CHECK(refused("emo", {{"num_shared_experts_per_layer", {1, 2}}}) ==
        message("emo", "'num_shared_experts_per_layer' varies between layers"));
  CHECK(refused("emo", {{"norm_topk_prob", true}}) ==
        message("emo",
                "'norm_topk_prob' is true together with shared experts (EMO does not define "
                "renormalisation then)"));
  // What each family accepts.
  for (const json& accepted :
       {json{{"ghost_extend_eval", "false"}}, json{{"ghost_extend_eval", false}},
        json{{"always_active_experts", json::array()}}, json{{"dense_mlp_bias", false}},
        json{{"num_shared_experts_per_layer", {1, 1}}}, json{{"rope_parameters", nullptr}},
        json{{"rope_parameters", {{"rope_type", "default"}}}}, json{{"hidden_act", "silu"}}}) {
    CAPTURE(accepted.dump());
    CHECK_NOTHROW(require_forward_support(spec_for("emo", {}, accepted)));
  }
  CHECK_NOTHROW(require_forward_support(spec_for("olmoe", {}, {{"clip_qkv", 4.0}})));
  CHECK_NOTHROW(require_forward_support(spec_for("olmoe", {}, {{"attention_bias", true}})));
}

TEST_CASE("quantization_config: block-scaled FP8 computes, other methods are refused by name") {
  const auto refused = [](json quantization) {
    return test::thrown_message<UnsupportedError>([&] {
      require_forward_support(
          spec_for("deepseek_v3", {{Dim::kLayers, 3}}, {{"quantization_config", quantization}}));
    });
  };
  const json fp8 = {{"quant_method", "fp8"}, {"fmt", "e4m3"}, {"weight_block_size", {64, 32}}};
  const ModelSpec spec =
      spec_for("deepseek_v3", {{Dim::kLayers, 3}}, {{"quantization_config", fp8}});
  CHECK_NOTHROW(require_forward_support(spec));
  REQUIRE(spec.forward.fp8);
  CHECK(spec.forward.fp8->block_rows == 64);
  CHECK(spec.forward.fp8->block_cols == 32);
  CHECK_FALSE(spec_for("deepseek_v3", {{Dim::kLayers, 3}}).forward.fp8);
  CHECK_NOTHROW(require_forward_support(spec_for("olmoe", {}, {{"quantization_config", nullptr}})));
  CHECK(refused({{"quant_method", "awq"}, {"bits", 4}}) ==
        "config.json: 'quantization_config.quant_method' is \"awq\"; the forward pass computes "
        "unquantized weights, block-scaled FP8 (quant_method \"fp8\" with weight_block_size) and "
        "gpt-oss's MXFP4 experts (\"mxfp4\") only (the deepseek_v3 forward pass does not "
        "implement it)");
  CHECK_NOTHROW(require_forward_support(spec_for(
      "deepseek_v3", {{Dim::kLayers, 3}}, {{"quantization_config", {{"quant_method", "mxfp4"}}}})));
  CHECK(refused({{"bits", 4}}).find("'quantization_config.quant_method' is missing") !=
        std::string::npos);
  CHECK(
      refused({{"quant_method", "fp8"}})
          .find("'quantization_config.weight_block_size' is missing; FP8 weights are computed with "
                "block scales only") != std::string::npos);
  CHECK(refused({{"quant_method", "fp8"}, {"weight_block_size", {128, 0}}})
            .find("'quantization_config.weight_block_size' is [128,0]") != std::string::npos);
  CHECK(refused({{"quant_method", "fp8"}, {"fmt", "e5m2"}, {"weight_block_size", {128, 128}}})
            .find("'quantization_config.fmt' is \"e5m2\"") != std::string::npos);
  CHECK(refused("fp8").find("'quantization_config' is \"fp8\", not an object") !=
        std::string::npos);
}

TEST_CASE("a group-routed model's slice keeps as many experts in every group") {
  const ModelSpec spec = spec_for("deepseek_v3", {{Dim::kLayers, 3}});
  const LayerSpec& layer = spec.layers[1];
  CHECK_NOTHROW(check_plan_fits_routing(spec, layer, {0, 2, 5, 7}, "p.json"));
  CHECK(test::thrown_message<InputError>([&] {
          check_plan_fits_routing(spec, layer, {0, 1, 2, 4}, "p.json");
        }) ==
        "p.json: layer 1 keeps [3, 1] experts in its 2 routing groups; DeepSeek group "
        "routing needs the same number in every group");
  // Without groups any plan fits.
  const ModelSpec olmoe = spec_for("olmoe");
  CHECK_NOTHROW(check_plan_fits_routing(olmoe, olmoe.layers[0], {0, 1, 2, 4}, "p.json"));
  // The slice's config restates the group count (the groups stay, each keeps fewer experts).
  const json config = sliced_config(spec, {0, 4, 4});
  CHECK(config["n_group"] == 2);
  CHECK(config["n_routed_experts"] == 4);
  CHECK(config["num_experts_per_tok"] == 2);
}

TEST_CASE("the spec says which expert owns a checkpoint tensor, companions included") {
  const ModelSpec spec = spec_for("deepseek_v3", {{Dim::kLayers, 3}});
  const auto listed = spec.expert_tensor("model.layers.1.mlp.experts.5.up_proj.weight");
  REQUIRE(listed);
  CHECK(listed->layer == 1);
  CHECK(listed->expert == 5);
  CHECK(listed->role == TensorRole::kUpProj);
  CHECK(listed->listed);
  CHECK(spec.expert_tensor_name(*listed, 0) == "model.layers.1.mlp.experts.0.up_proj.weight");
  // An FP8 scale the profile does not list belongs to the expert whose weight it scales.
  const auto scale = spec.expert_tensor("model.layers.2.mlp.experts.7.down_proj.weight_scale_inv");
  REQUIRE(scale);
  CHECK(scale->expert == 7);
  CHECK(scale->role == TensorRole::kDownProj);
  CHECK(!scale->listed);
  CHECK(spec.expert_tensor_name(*scale, 3) ==
        "model.layers.2.mlp.experts.3.down_proj.weight_scale_inv");
  const auto stray = spec.expert_tensor("model.layers.2.mlp.experts.7.extra");
  REQUIRE(stray);
  CHECK(!stray->role);
  for (const char* other :
       {"model.layers.1.mlp.gate.weight", "model.layers.0.mlp.experts.0.up_proj.weight",
        "model.layers.1.mlp.experts.8.up_proj.weight",
        "model.layers.1.mlp.experts.05.up_proj.weight",
        "model.layers.3.mlp.experts.0.up_proj.weight",
        "model.layers.1.mlp.experts.x.up_proj.weight",
        "model.layers.1.mlp.shared_experts.up_proj.weight", "model.embed_tokens.weight"}) {
    CAPTURE(other);
    CHECK(!spec.expert_tensor(other));  // not an expert's, a dense layer's, or out of range
  }
  // Fused experts belong to no single expert.
  CHECK(!spec_for("gpt_oss").expert_tensor("model.layers.0.mlp.experts.gate_up_proj"));
}

TEST_CASE("expert prefixes must name the layer and the expert once") {
  const ExpertNaming naming("blk.{layer}.ffn.{expert}.");
  CHECK(naming.prefix(12, 3) == "blk.12.ffn.3.");
  const auto parsed = naming.parse("blk.12.ffn.3.w");
  REQUIRE(parsed);
  CHECK(parsed->layer == 12);
  CHECK(parsed->expert == 3);
  CHECK(parsed->suffix == "w");
  CHECK(!naming.parse("blk.12.ffn.3"));
  CHECK(!naming.parse("blk.1.ffn.99999999999999999999.w"));
  for (const char* bad : {"blk.{layer}.ffn.", "blk.{layer}.{expert}", "blk.{layer}{expert}.",
                          "blk.{layer}.{expert}.{layer}.", "blk.{layer}.{expert}.{x}."}) {
    CAPTURE(bad);
    CHECK_THROWS_AS(ExpertNaming{bad}, std::invalid_argument);
  }
}
