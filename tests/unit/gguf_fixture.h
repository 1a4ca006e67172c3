// Tiny GGUF models for the tests, written with moeslice's own GGUF writer: an olmoe-like MoE with
// stacked expert tensors in a chosen ggml type (random but valid blocks), metadata of every value
// type, and the raw-image builder the corruption tests edit byte by byte.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "format/gguf/metadata.h"
#include "format/gguf/random_blocks.h"
#include "format/tensor_source.h"

namespace moeslice::test {

// A tensor of random valid bytes.
inline TensorSource random_tensor(std::string name, DType dtype, std::vector<int64_t> shape,
                                  uint64_t seed) {
  TensorSource probe{name, dtype, shape, {}, std::nullopt};
  std::vector<std::byte> bytes(probe.byte_size());
  fill_random_tensor_bytes(dtype, bytes, seed);
  return TensorSource::from_bytes(std::move(name), dtype, std::move(shape), std::move(bytes));
}

// Metadata of an olmoe-like model with `layers` layers of `experts` experts (top `used`), plus
// one key of every value type and nested arrays.
inline GgufMetadata tiny_moe_metadata(int64_t layers, int64_t experts, int64_t used) {
  GgufMetadata metadata;
  metadata.set("general.architecture", GgufValue::of_string("olmoe"));
  metadata.set("general.name", GgufValue::of_string("tiny"));
  metadata.set("olmoe.block_count", GgufValue::of_u32(static_cast<uint32_t>(layers)));
  metadata.set("olmoe.embedding_length", GgufValue::of_u32(256));
  metadata.set("olmoe.expert_feed_forward_length", GgufValue::of_u32(256));
  metadata.set("olmoe.expert_count", GgufValue::of_u32(static_cast<uint32_t>(experts)));
  metadata.set("olmoe.expert_used_count", GgufValue::of_u32(static_cast<uint32_t>(used)));
  metadata.set("olmoe.attention.layer_norm_rms_epsilon", GgufValue::of_f32(1e-5f));
  metadata.set("test.u8", GgufValue::scalar(GgufType::kU8, 200));
  metadata.set("test.i8", GgufValue::scalar(GgufType::kI8, 0x80));
  metadata.set("test.u16", GgufValue::of_u16(65535));
  metadata.set("test.i16", GgufValue::scalar(GgufType::kI16, 0xfffe));
  metadata.set("test.i32", GgufValue::of_i32(-7));
  metadata.set("test.u64", GgufValue::of_u64(uint64_t{1} << 60));
  metadata.set("test.i64", GgufValue::scalar(GgufType::kI64, static_cast<uint64_t>(-5)));
  metadata.set("test.f64", GgufValue::scalar(GgufType::kF64, 0x400921fb54442d18));  // pi
  metadata.set("test.bool", GgufValue::of_bool(true));
  metadata.set("test.empty_string", GgufValue::of_string(""));
  std::string scores;
  for (float value : {0.5f, -1.0f, 2.0f}) {
    uint32_t bits;
    std::memcpy(&bits, &value, 4);
    for (int i = 0; i < 4; ++i) scores.push_back(static_cast<char>(bits >> (8 * i) & 0xff));
  }
  metadata.set("test.f32_array", GgufValue::scalar_array(GgufType::kF32, scores));
  metadata.set("test.empty_array", GgufValue::scalar_array(GgufType::kI32, ""));
  metadata.set("tokenizer.ggml.tokens", GgufValue::string_array({"a", "b", "", "\xc3\xa9"}));
  metadata.set("test.nested",
               GgufValue::array_array({GgufValue::string_array({"x"}),
                                       GgufValue::array_array({GgufValue::scalar_array(
                                           GgufType::kU8, std::string("\x01\x02", 2))})}));
  return metadata;
}

// The tensors of that model: embeddings and norms in F32, attention in F16, the router in F32,
// stacked experts [experts, 256, 256] in `expert_type`.
inline std::vector<TensorSource> tiny_moe_tensors(int64_t layers, int64_t experts,
                                                  DType expert_type) {
  std::vector<TensorSource> tensors;
  uint64_t seed = 1;
  tensors.push_back(random_tensor("token_embd.weight", DType::F32, {4, 256}, seed++));
  for (int64_t layer = 0; layer < layers; ++layer) {
    const std::string block = "blk." + std::to_string(layer) + ".";
    tensors.push_back(random_tensor(block + "attn_norm.weight", DType::F32, {256}, seed++));
    tensors.push_back(random_tensor(block + "attn_q.weight", DType::F16, {256, 256}, seed++));
    tensors.push_back(
        random_tensor(block + "ffn_gate_inp.weight", DType::F32, {experts, 256}, seed++));
    for (const char* kind : {"ffn_gate_exps", "ffn_up_exps", "ffn_down_exps"})
      tensors.push_back(
          random_tensor(block + kind + ".weight", expert_type, {experts, 256, 256}, seed++));
  }
  tensors.push_back(random_tensor("output_norm.weight", DType::F32, {256}, seed++));
  return tensors;
}

}  // namespace moeslice::test
