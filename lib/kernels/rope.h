// Rotary position embedding, "rotate_half" (GPT-NeoX) layout, as every supported family uses:
// for j < d/2, (x[j], x[j + d/2]) is rotated by angle pos * inv_freq[j], inv_freq[j] =
// theta^(-2j/d). Positions restart at 0 for every document.
//
// The table is computed the way transformers does, in fp32: inv_freq = 1 / theta^(float(2j)/d),
// angle = float(pos) * inv_freq (one fp32 product), cos/sin of that fp32 angle. A double-precision
// angle would differ from PyTorch's by up to ~1e-4 rad at position 2000.
//
// apply_rope is written once over a precision policy (precision.h). In bf16 the activations hold
// BF16 values and the family's RoPE code decides the rounding: Llama style casts cos/sin to BF16
// and rounds each product and the sum (x * bf16(cos) + rotate_half(x) * bf16(sin)); OLMo2 style
// rotates in fp32 against the fp32 tables and rounds once. In fp32 both are the same computation.
//
// Thread safety: RopeTable is immutable after construction.
#pragma once

#include <cstddef>
#include <optional>
#include <vector>

#include "kernels/matrix.h"

namespace moeslice::kernels {

// YaRN (transformers' modeling_rope_utils._compute_yarn_parameters; deepseek_v3, glm4_moe over
// its partial rotary dimensions (the table's head_dim), gpt-oss): the
// inverse frequencies blend interpolated (divided by `factor`) and extrapolated ones along a
// linear ramp between the dimensions that make beta_fast and beta_slow rotations over the
// original context, computed in fp32 as torch does; cos and sin are multiplied by
// attention_factor.
struct YarnScaling {
  double factor = 1.0;
  double original_max_positions = 0;  // rope_scaling's, else max_position_embeddings
  double beta_fast = 32.0;
  double beta_slow = 1.0;
  bool truncate = true;  // floor/ceil the ramp's ends
  double attention_factor = 1.0;
};

class RopeTable {
 public:
  // Covers positions [0, positions). head_dim must be even. `yarn`: YaRN's frequencies and
  // attention factor instead of the plain theta^(-2j/d).
  RopeTable(size_t head_dim, double theta, size_t positions,
            const std::optional<YarnScaling>& yarn = std::nullopt);

  size_t head_dim() const { return head_dim_; }
  size_t positions() const { return positions_; }
  const std::vector<float>& inv_freq() const { return inv_freq_; }
  // head_dim / 2 values for position `pos` (the second half of the rotation repeats them).
  const float* cos(size_t pos) const { return cos_.data() + pos * (head_dim_ / 2); }
  const float* sin(size_t pos) const { return sin_.data() + pos * (head_dim_ / 2); }

 private:
  size_t head_dim_;
  size_t positions_;
  std::vector<float> inv_freq_;
  std::vector<float> cos_;
  std::vector<float> sin_;
};

// Rotates x [n, heads * head_dim] in place; row t gets position first_position + t.
// `cast_tables`: the Llama-style rounding above (bf16 only).
template <class Math>
void apply_rope(MatrixRef x, size_t heads, const RopeTable& table, size_t first_position = 0,
                bool cast_tables = false);

}  // namespace moeslice::kernels
