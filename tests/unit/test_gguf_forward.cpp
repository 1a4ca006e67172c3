// The forward pass's side of GGUF models: quantized weight views and the refusal of ggml types the
// dequantizers do not read (by name), and llama.cpp's tensor name table. The end-to-end equality
// with safetensors checkpoints is tests/cli/gguf_forward.sh.
#include <cstddef>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "common/error.h"
#include "forward/weight_views.h"
#include "model/gguf_architecture.h"

namespace moeslice {
namespace {

TensorView view_of(DType dtype, std::vector<int64_t> shape, const std::vector<std::byte>& bytes) {
  return TensorView{"blk.0.ffn_down_exps.weight", dtype, std::move(shape), bytes};
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

}  // namespace moeslice
