// The forward pass's side of GGUF models: quantized weight views and the refusal of ggml types the
// dequantizers do not read (by name), llama.cpp's tensor name table, and gpt-oss's config from
// llama.cpp's keys. The end-to-end equality with safetensors checkpoints is
// tests/cli/gguf_forward.sh and tests/cli/gguf_gpt_oss.sh.
#include <cstddef>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "common/error.h"
#include "format/gguf/model.h"
#include "format/gguf/writer.h"
#include "forward/weight_views.h"
#include "gguf_fixture.h"
#include "model/gguf_architecture.h"
#include "model/gguf_checkpoint.h"
#include "test_util.h"

namespace moeslice {
namespace {

TensorView view_of(DType dtype, std::vector<int64_t> shape, const std::vector<std::byte>& bytes) {
  return TensorView{"blk.0.ffn_down_exps.weight", dtype, std::move(shape), bytes};
}

// gpt-oss metadata as llama.cpp's converter writes it (4 blocks, window 8), plus `extra`.
GgufMetadata gpt_oss_metadata(const std::vector<std::pair<std::string, GgufValue>>& extra) {
  GgufMetadata metadata;
  metadata.set("general.architecture", GgufValue::of_string("gpt-oss"));
  metadata.set("gpt-oss.block_count", GgufValue::of_u32(4));
  metadata.set("gpt-oss.context_length", GgufValue::of_u32(4096));
  metadata.set("gpt-oss.embedding_length", GgufValue::of_u32(64));
  metadata.set("gpt-oss.attention.head_count", GgufValue::of_u32(4));
  metadata.set("gpt-oss.attention.head_count_kv", GgufValue::of_u32(2));
  metadata.set("gpt-oss.rope.freq_base", GgufValue::of_f32(150000.0f));
  metadata.set("gpt-oss.expert_count", GgufValue::of_u32(8));
  metadata.set("gpt-oss.expert_used_count", GgufValue::of_u32(2));
  metadata.set("gpt-oss.attention.sliding_window", GgufValue::of_u32(8));
  metadata.set("gpt-oss.expert_feed_forward_length", GgufValue::of_u32(32));
  for (const auto& [key, value] : extra) metadata.set(key, value);
  return metadata;
}

nlohmann::json gpt_oss_config(const test::TempDir& dir,
                              const std::vector<std::pair<std::string, GgufValue>>& extra) {
  const std::vector<TensorSource> tensors{
      test::random_tensor("token_embd.weight", DType::F32, {272, 64}, 1)};
  write_gguf_model(dir / "m.gguf", gpt_oss_metadata(extra), tensors, {.overwrite = true});
  return gguf_hf_config(*GgufModel::open(dir / "m.gguf"));
}

}  // namespace

TEST_CASE("weight_matrix views Q8_0 rows and refuses other block types by name") {
  const std::vector<std::byte> q8(2 * 34);  // two rows of one Q8_0 block (zero scale)
  const kernels::WeightMatrix m = weight_matrix(view_of(DType::Q8_0, {2, 32}, q8));
  CHECK(m.quantized());
  CHECK(m.rows() == 2);
  CHECK(m.cols() == 32);
  std::vector<float> row(32, 1.0f);
  m.rows_to_f32(1, 1, row.data());
  CHECK(row == std::vector<float>(32, 0.0f));

  CHECK_THROWS_WITH_AS(
      weight_matrix(view_of(DType::Q8_0, {3, 32}, q8)),
      doctest::Contains("holds 68 bytes, not the whole Q8_0 blocks of shape [3, 32]"), ModelError);
  const std::vector<std::byte> iq2(66);  // one IQ2_XXS block: sliced, never computed with
  CHECK_THROWS_WITH_AS(
      weight_matrix(view_of(DType::IQ2_XXS, {1, 256}, iq2)),
      doctest::Contains("tensor 'blk.0.ffn_down_exps.weight' has ggml type IQ2_XXS; the forward "
                        "pass computes with F32, BF16, F16 and the block types"),
      ModelError);
}

TEST_CASE("llama.cpp's tensor names by role: layer tensors, stacked experts, none") {
  CHECK(gguf_tensor_name(TensorRole::kQProj, false).name == "attn_q.weight");
  CHECK(gguf_tensor_name(TensorRole::kEmbed, false).name == "token_embd.weight");
  CHECK(gguf_tensor_name(TensorRole::kGateProj, false).name == "ffn_gate.weight");
  const GgufTensorName expert = gguf_tensor_name(TensorRole::kGateProj, true);
  CHECK(expert.name == "ffn_gate_exps.weight");
  CHECK(expert.stacked_experts);
  CHECK(gguf_tensor_name(TensorRole::kSinks, false).name.empty());
  CHECK(gguf_tensor_name(TensorRole::kQProj, true).name.empty());
}

TEST_CASE("gpt-oss's GGUF names: post-attention norm, sinks, biases, split expert stacks") {
  CHECK(gpt_oss_gguf_tensor_name(TensorRole::kFfnNorm).name == "post_attention_norm.weight");
  CHECK(gpt_oss_gguf_tensor_name(TensorRole::kSinks).name == "attn_sinks.weight");
  CHECK(gpt_oss_gguf_tensor_name(TensorRole::kRouterBias).name == "ffn_gate_inp.bias");
  CHECK(gpt_oss_gguf_tensor_name(TensorRole::kUpExps).name == "ffn_up_exps.weight");
  CHECK(gpt_oss_gguf_tensor_name(TensorRole::kDownProjBias).name == "ffn_down_exps.bias");
  CHECK(gpt_oss_gguf_tensor_name(TensorRole::kQBias).name == "attn_q.bias");
  CHECK(gpt_oss_gguf_tensor_name(TensorRole::kGateUpProjBias).name.empty());
  CHECK(gpt_oss_gguf_tensor_name(TensorRole::kGateUpProjBlocks).name.empty());
}

TEST_CASE("gpt-oss's config from llama.cpp's keys: layer pattern, YaRN defaults, refusals") {
  const test::TempDir dir;
  const nlohmann::json plain = gpt_oss_config(dir, {});
  CHECK(plain["model_type"] == "gpt_oss");
  CHECK(plain["sliding_window"] == 8);
  CHECK(plain["layer_types"] == nlohmann::json{"sliding_attention", "full_attention",
                                               "sliding_attention", "full_attention"});
  CHECK(plain["swiglu_limit"] == 7.0);
  CHECK(plain["rope_scaling"].is_null());
  CHECK(plain["intermediate_size"] == 32);

  const nlohmann::json yarn =
      gpt_oss_config(dir, {{"gpt-oss.attention.sliding_window_pattern", GgufValue::of_u32(3)},
                           {"gpt-oss.rope.scaling.type", GgufValue::of_string("yarn")},
                           {"gpt-oss.rope.scaling.factor", GgufValue::of_f32(32.0f)},
                           {"gpt-oss.rope.scaling.yarn_beta_fast", GgufValue::of_f32(16.0f)}});
  CHECK(yarn["layer_types"] == nlohmann::json{"sliding_attention", "sliding_attention",
                                              "full_attention", "sliding_attention"});
  CHECK(yarn["rope_scaling"] == nlohmann::json{{"rope_type", "yarn"},
                                               {"factor", 32.0},
                                               {"original_max_position_embeddings", 4096},
                                               {"beta_fast", 16.0},
                                               {"beta_slow", 1.0},
                                               {"truncate", true}});
  CHECK(gpt_oss_config(dir, {{"gpt-oss.attention.sliding_window_pattern",
                              GgufValue::of_u32(0)}})["layer_types"][3] == "sliding_attention");

  CHECK_THROWS_WITH_AS(
      gpt_oss_config(dir, {{"gpt-oss.rope.scaling.type", GgufValue::of_string("linear")}}),
      doctest::Contains("key 'gpt-oss.rope.scaling.type' is 'linear'; the gpt-oss GGUF forward "
                        "pass computes YaRN or no RoPE scaling"),
      UnsupportedError);
  CHECK_THROWS_WITH_AS(
      gpt_oss_config(dir, {{"gpt-oss.rope.scaling.type", GgufValue::of_string("yarn")}}),
      doctest::Contains("key 'gpt-oss.rope.scaling.factor' is missing"), ModelError);
  CHECK_THROWS_WITH_AS(
      gpt_oss_config(dir, {{"gpt-oss.rope.freq_base_swa", GgufValue::of_f32(10000.0f)}}),
      doctest::Contains("key 'gpt-oss.rope.freq_base_swa' is 10000"), UnsupportedError);
  CHECK_THROWS_WITH_AS(
      gpt_oss_config(dir, {{"gpt-oss.rope.scaling.yarn_log_multiplier", GgufValue::of_f32(0.1f)}}),
      doctest::Contains("key 'gpt-oss.rope.scaling.yarn_log_multiplier' is set"), UnsupportedError);
}

}  // namespace moeslice
