// The GGUF slice planner on in-memory tensor lists (no bytes): every tensor kind's fate (stacked
// experts, their biases, the router, exp_probs_b, shared experts, everything else), the metadata
// it rewrites and records, slices of slices, group-limited routing, and each refusal by name.
#include <doctest/doctest.h>

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "model/gguf_architecture.h"
#include "slice/gguf_slice_plan.h"
#include "test_util.h"

namespace moeslice {
namespace {

using nlohmann::json;
using test::check_mentions;

// A deepseek2-like model: block 0 dense, blocks 1..2 MoE with shared experts and a correction
// bias, 8 experts (optionally in 4 groups), top 4.
struct Fixture {
  GgufMetadata metadata{"model.gguf"};
  std::vector<TensorView> views;
  std::vector<const TensorView*> pointers;

  explicit Fixture(int64_t experts = 8, int64_t groups = 0, DType expert_type = DType::Q4_K) {
    metadata.set("general.architecture", GgufValue::of_string("deepseek2"));
    metadata.set("deepseek2.block_count", GgufValue::of_u32(3));
    metadata.set("deepseek2.expert_count", GgufValue::of_u32(static_cast<uint32_t>(experts)));
    metadata.set("deepseek2.expert_used_count", GgufValue::of_u32(4));
    metadata.set("deepseek2.leading_dense_block_count", GgufValue::of_u32(1));
    if (groups > 0) {
      metadata.set("deepseek2.expert_group_count",
                   GgufValue::of_u32(static_cast<uint32_t>(groups)));
      metadata.set("deepseek2.expert_group_used_count", GgufValue::of_u32(2));
    }
    metadata.set("tokenizer.ggml.model", GgufValue::of_string("gpt2"));
    add("token_embd.weight", DType::Q8_0, {16, 256});
    add("blk.0.ffn_up.weight", DType::Q4_K, {512, 256});
    for (int b = 1; b < 3; ++b) {
      const std::string blk = "blk." + std::to_string(b) + ".";
      add(blk + "attn_norm.weight", DType::F32, {256});
      add(blk + "ffn_gate_inp.weight", DType::F32, {experts, 256});
      add(blk + "exp_probs_b.bias", DType::F32, {experts});
      add(blk + "ffn_gate_exps.weight", expert_type, {experts, 512, 256});
      add(blk + "ffn_up_exps.weight", expert_type, {experts, 512, 256});
      add(blk + "ffn_down_exps.weight", expert_type, {experts, 256, 512});
      add(blk + "ffn_down_exps.bias", DType::F32, {experts, 256});
      add(blk + "ffn_up_shexp.weight", DType::Q4_K, {512, 256});
      add(blk + "ffn_gate_inp_shexp.weight", DType::F32, {256});
    }
    add("output.weight", DType::Q6_K, {16, 256});
  }
  void add(std::string name, DType dtype, std::vector<int64_t> shape) {
    views.push_back({std::move(name), dtype, std::move(shape), {}});
  }
  GgufSlicePlan plan(const json& document) {
    pointers.clear();
    for (const TensorView& view : views) pointers.push_back(&view);
    return plan_gguf_slice(metadata, pointers, document, "plan.json", {"model.gguf", "fnv1a64:x"});
  }
  const GgufPlannedTensor& find(const GgufSlicePlan& plan, const std::string& name) {
    for (const GgufPlannedTensor& tensor : plan.tensors)
      if (tensor.source->name == name) return tensor;
    FAIL("no tensor " << name);
    return plan.tensors.front();
  }
};

json keep(json block1, json block2) {
  return {{"experts_kept_per_layer", json::array({nullptr, block1, block2})}};
}

TEST_CASE("every tensor kind: stacked experts, router and exp_probs_b cut, the rest copied") {
  Fixture model;
  const GgufSlicePlan plan = model.plan(keep({1, 3, 6}, {0, 2, 7}));
  CHECK(plan.summary.experts_before == 8);
  CHECK(plan.summary.experts_after == 3);
  CHECK(plan.summary.used_before == 4);
  CHECK(plan.summary.used_after == 3);
  REQUIRE(plan.tensors.size() == model.views.size());
  for (size_t i = 0; i < plan.tensors.size(); ++i) CHECK(plan.tensors[i].source == &model.views[i]);
  for (const char* name :
       {"blk.1.ffn_gate_inp.weight", "blk.1.exp_probs_b.bias", "blk.1.ffn_gate_exps.weight",
        "blk.1.ffn_up_exps.weight", "blk.1.ffn_down_exps.weight", "blk.1.ffn_down_exps.bias"}) {
    const GgufPlannedTensor& tensor = model.find(plan, name);
    CHECK_MESSAGE(tensor.fate == TensorFate::kCutAlongExperts, name);
    CHECK(tensor.kept_rows == std::vector<int32_t>{1, 3, 6});
    CHECK(tensor.output_shape.front() == 3);
  }
  CHECK(model.find(plan, "blk.2.ffn_up_exps.weight").kept_rows == std::vector<int32_t>{0, 2, 7});
  const GgufPlannedTensor& experts = model.find(plan, "blk.2.ffn_up_exps.weight");
  CHECK(experts.output_shape == std::vector<int64_t>{3, 512, 256});
  CHECK(experts.output_bytes == 3u * 512 * 256 / 256 * 144);  // Q4_K: 144 bytes per 256
  for (const char* name :
       {"token_embd.weight", "blk.0.ffn_up.weight", "blk.1.attn_norm.weight",
        "blk.1.ffn_up_shexp.weight", "blk.1.ffn_gate_inp_shexp.weight", "output.weight"}) {
    CHECK_MESSAGE(model.find(plan, name).fate == TensorFate::kCopied, name);
    CHECK(model.find(plan, name).kept_rows.empty());
  }
  CHECK(plan.summary.bytes_after < plan.summary.bytes_before);
}

// The message of the InputError planning `document` throws.
std::string refusal(Fixture& model, const json& document) {
  try {
    model.plan(document);
  } catch (const InputError& error) {
    return error.what();
  }
  FAIL("no refusal");
  return {};
}

TEST_CASE("the output metadata: two counts rewritten in place, moeslice keys appended") {
  Fixture model;
  const GgufSlicePlan plan = model.plan(keep({0, 1, 2, 3, 4}, {3, 4, 5, 6, 7}));
  const auto& in = model.metadata.entries();
  const auto& out = plan.metadata.entries();
  REQUIRE(out.size() == in.size() + 6);
  for (size_t i = 0; i < in.size(); ++i) {
    CHECK(out[i].first == in[i].first);
    if (in[i].first == "deepseek2.expert_count")
      CHECK(out[i].second == GgufValue::of_u32(5));
    else if (in[i].first == "deepseek2.expert_used_count")
      CHECK(out[i].second == GgufValue::of_u32(4));
    else
      CHECK(out[i].second == in[i].second);
  }
  CHECK(plan.metadata.get_uint(kGgufSliceOriginalExpertCount) == 8u);
  CHECK(plan.metadata.get_uint(kGgufSliceOriginalExpertUsedCount) == 4u);
  CHECK(plan.metadata.get_string(kGgufSliceSource) == "model.gguf");
  CHECK(plan.metadata.get_string(kGgufSliceSourceFingerprint) == "fnv1a64:x");
  const GgufValue* kept = plan.metadata.find(kGgufSliceExpertsKept);
  REQUIRE(kept != nullptr);
  // Flat (llama.cpp reads no arrays of arrays): 3 blocks x 5 experts, -1s for the dense block 0.
  REQUIRE(kept->element_type() == GgufType::kI32);
  REQUIRE(kept->size() == 15);
  CHECK(kept->element(0).as_int() == -1);
  CHECK(kept->element(4).as_int() == -1);
  CHECK(kept->element(5).as_int() == 0);
  CHECK(kept->element(10).as_int() == 3);
  CHECK(recorded_experts_kept(plan.metadata) ==
        std::vector<std::vector<int32_t>>{{}, {0, 1, 2, 3, 4}, {3, 4, 5, 6, 7}});
  CHECK(recorded_experts_kept(model.metadata) == std::nullopt);
  CHECK(json::parse(*plan.metadata.get_string(kGgufSlicePlan)) ==
        keep({0, 1, 2, 3, 4}, {3, 4, 5, 6, 7}));
}

TEST_CASE("a slice of a slice records the original ids and keeps the original's counts") {
  Fixture model;
  const GgufSlicePlan first = model.plan(keep({1, 3, 5, 7}, {0, 1, 2, 3}));
  Fixture slice(4);
  slice.metadata = first.metadata;
  const GgufSlicePlan second = slice.plan(keep({0, 3}, {2, 3}));
  CHECK(recorded_experts_kept(second.metadata) ==
        std::vector<std::vector<int32_t>>{{}, {1, 7}, {2, 3}});
  CHECK(second.metadata.get_uint(kGgufSliceOriginalExpertCount) == 8u);
  CHECK(second.metadata.get_uint("deepseek2.expert_count") == 2u);
  CHECK(second.metadata.get_uint("deepseek2.expert_used_count") == 2u);
}

TEST_CASE("a malformed moeslice.experts_kept is refused by name") {
  Fixture model;
  const GgufSlicePlan first = model.plan(keep({1, 3}, {0, 1}));
  auto message = [&](const GgufValue& value) -> std::string {
    GgufMetadata metadata = first.metadata;
    metadata.set(std::string(kGgufSliceExpertsKept), value);
    try {
      recorded_experts_kept(metadata);
    } catch (const FormatError& error) {
      return error.what();
    }
    FAIL("no refusal");
    return {};
  };
  check_mentions(message(GgufValue::of_u32(1)),
                 {"model.gguf", "moeslice.experts_kept", "deepseek2.block_count", "3 x 2"});
  check_mentions(message(encode_experts_kept({{}, {1, 3}}, 2)), {"moeslice.experts_kept", "3 x 2"});
  check_mentions(message(encode_experts_kept({{}, {3, 1}, {0, 1}}, 2)), {"1 after 3 in block 1"});
  check_mentions(message(encode_experts_kept({{}, {1, -1}, {0, 1}}, 2)),
                 {"block 1 with both expert ids and -1s"});
  Fixture slice(2);
  slice.metadata = first.metadata;
  slice.metadata.set(std::string(kGgufSliceExpertsKept), encode_experts_kept({{}, {}, {0, 1}}, 2));
  check_mentions(refusal(slice, keep({0}, {1})),
                 {"model.gguf", "moeslice.experts_kept", "no experts for block 1"});
}

TEST_CASE("null entries of MoE blocks keep every expert") {
  Fixture model;
  const GgufSlicePlan plan = model.plan(keep(nullptr, nullptr));
  CHECK(plan.summary.experts_after == 8);
  CHECK(plan.summary.bytes_after == plan.summary.bytes_before);
}

TEST_CASE("refusals name the plan, file, block, tensor or key and the reason") {
  Fixture model;
  check_mentions(refusal(model, keep({0, 1, 2}, {0, 1})),
                 {"plan.json", "block 2 keeps 2", "block 1 keeps 3", "deepseek2.expert_count"});
  check_mentions(refusal(model, keep({0, 1}, nullptr)), {"block 2 keeps 8"});
  check_mentions(refusal(model, {{"experts_kept_per_layer", json::array({nullptr, {0}})}}),
                 {"plan.json", "one entry per block", "deepseek2.block_count", "found 2"});
  check_mentions(refusal(model, {{"experts_kept_per_layer", json::array({{0}, {0}, {0}})}}),
                 {"plan.json", "block 0", "no expert tensors", "null"});
  check_mentions(refusal(model, keep({0, 8}, {0, 1})), {"plan.json", "layer 1", "out of range"});
  check_mentions(refusal(model, keep({1, 0}, {0, 1})), {"ascending"});
  json other = keep({0}, {0});
  other["num_experts"] = 64;
  check_mentions(refusal(model, other), {"plan.json", "num_experts", "64", "8"});
  other = keep({0}, {0});
  other["family"] = "olmoe";
  check_mentions(refusal(model, other), {"family", "olmoe", "deepseek_v3"});
  check_mentions(refusal(model, json::array()), {"experts_kept_per_layer"});

  Fixture wrong_axis;
  wrong_axis.views[3].shape = {7, 256};  // blk.1.ffn_gate_inp.weight
  check_mentions(refusal(wrong_axis, keep({0}, {0})),
                 {"model.gguf", "blk.1.ffn_gate_inp.weight", "deepseek2.expert_count", "found 7"});
  Fixture blocked;
  blocked.views[4].dtype = DType::Q8_0;  // blk.1.exp_probs_b.bias, [8]: but Q8_0 needs 32
  blocked.views[4].shape = {8};
  check_mentions(refusal(blocked, keep({0}, {0})), {"blk.1.exp_probs_b.bias", "Q8_0", "blocks"});
  Fixture stray;
  stray.add("blk.3.ffn_up_exps.weight", DType::F32, {8, 4, 4});
  check_mentions(refusal(stray, keep({0}, {0})),
                 {"blk.3.ffn_up_exps.weight", "block 3", "deepseek2.block_count"});
  Fixture dense;
  dense.metadata.erase("deepseek2.expert_count");
  check_mentions(refusal(dense, keep({0}, {0})),
                 {"model.gguf", "deepseek2.expert_count", "absent", "not a mixture-of-experts"});
  Fixture router_only;
  router_only.add("blk.0.ffn_gate_inp.weight", DType::F32, {8, 256});
  check_mentions(refusal(router_only, keep({0}, {0})),
                 {"blk.0.ffn_gate_inp.weight", "block 0 has no stacked expert tensors"});
}

TEST_CASE("group-limited routing: every group keeps the same number, at least 2") {
  Fixture model(8, 4);  // groups {0,1} {2,3} {4,5} {6,7}, 2 groups used, top 4
  const GgufSlicePlan plan = model.plan(keep(nullptr, nullptr));
  CHECK(plan.summary.experts_after == 8);
  check_mentions(refusal(model, keep({0, 2, 4, 6}, {1, 3, 5, 7})),
                 {"plan.json", "block 1", "[1, 1, 1, 1]", "deepseek2.expert_group_count", "top 2"});
  check_mentions(refusal(model, keep({0, 1, 2, 3, 4, 5}, {0, 1, 2, 3, 4, 5})), {"[2, 2, 2, 0]"});
  Fixture sixteen(16, 4);  // groups of 4
  const GgufSlicePlan halved =
      sixteen.plan(keep({0, 1, 4, 5, 8, 9, 12, 13}, {2, 3, 6, 7, 10, 11, 14, 15}));
  CHECK(halved.summary.experts_after == 8);
  CHECK(halved.metadata.get_uint("deepseek2.expert_group_count") == 4u);
  CHECK(halved.metadata.get_uint("deepseek2.expert_group_used_count") == 2u);
  CHECK(halved.metadata.get_uint("deepseek2.expert_used_count") == 4u);
  sixteen.metadata.set("deepseek2.expert_used_count", GgufValue::of_u32(6));
  check_mentions(refusal(sixteen, keep({0, 1, 4, 5, 8, 9, 12, 13}, {2, 3, 6, 7, 10, 11, 14, 15})),
                 {"2 experts per group", "deepseek2.expert_group_used_count", "6 per token"});
}

TEST_CASE("a plan of the decoder layers only, when the file has multi-token-prediction blocks") {
  Fixture model;  // blocks 0..2; now block 3 is an MTP block (nextn_predict_layers) without experts
  model.metadata.set("deepseek2.block_count", GgufValue::of_u32(4));
  model.metadata.set("deepseek2.nextn_predict_layers", GgufValue::of_u32(1));
  const GgufSlicePlan plan = model.plan(keep({0, 1, 2, 3}, {4, 5, 6, 7}));
  CHECK(plan.summary.experts_after == 4);
  CHECK(model.plan({{"experts_kept_per_layer", json::array({nullptr, {0, 1}, {2, 3}, nullptr})}})
            .summary.experts_after == 2);
  check_mentions(refusal(model, {{"experts_kept_per_layer", json::array({nullptr, {0}})}}),
                 {"one entry per block", "deepseek2.block_count", "found 2"});
  // An MTP block with experts is kept whole by such a plan, so the counts differ: refused.
  Fixture with_experts;  // blocks 0..2, block 2 the MTP block
  with_experts.metadata.set("deepseek2.nextn_predict_layers", GgufValue::of_u32(1));
  check_mentions(
      refusal(with_experts, {{"experts_kept_per_layer", json::array({nullptr, {0, 1}})}}),
      {"block 2 keeps 8", "block 1 keeps 2"});
}

TEST_CASE("the tensor kinds by name") {
  int64_t block = -1;
  CHECK(gguf_expert_axis_kind("blk.12.ffn_gate_up_exps.weight", block) == "ffn_gate_up_exps");
  CHECK(block == 12);
  CHECK(gguf_expert_axis_kind("blk.0.ffn_down_exps.scale", block) == "ffn_down_exps");
  CHECK(gguf_expert_axis_kind("blk.0.ffn_gate_inp.bias", block) == "ffn_gate_inp");
  CHECK(gguf_expert_axis_kind("blk.0.exp_probs_b.bias", block) == "exp_probs_b");
  for (const char* copied : {"blk.0.ffn_gate_inp_shexp.weight", "blk.0.ffn_up_shexp.weight",
                             "blk.0.ffn_up.weight", "token_embd.weight", "blk.x.ffn_up_exps.weight",
                             "blk..ffn_up_exps.weight", "output.weight"})
    CHECK_MESSAGE(gguf_expert_axis_kind(copied, block).empty(), copied);
}

TEST_CASE("GGUF architectures map to moeslice families") {
  CHECK(family_of_gguf_architecture("qwen3moe") == "qwen3_moe");
  CHECK(family_of_gguf_architecture("llama") == "mixtral");
  CHECK(family_of_gguf_architecture("deepseek2") == "deepseek_v3");
  CHECK(family_of_gguf_architecture("gpt-oss") == "gpt_oss");
  CHECK(family_of_gguf_architecture("mamba").empty());
}

TEST_CASE("the fingerprint ignores split keys and sees metadata and tensor changes") {
  Fixture model;
  for (const TensorView& view : model.views) model.pointers.push_back(&view);
  const std::string base = gguf_fingerprint(model.metadata, model.pointers);
  model.metadata.set("split.count", GgufValue::of_u16(2));
  CHECK(gguf_fingerprint(model.metadata, model.pointers) == base);
  model.metadata.set("general.name", GgufValue::of_string("x"));
  CHECK(gguf_fingerprint(model.metadata, model.pointers) != base);
}

}  // namespace
}  // namespace moeslice
