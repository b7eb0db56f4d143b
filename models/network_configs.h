// The networks' configs (config.json) as the networks read them, every value checked
// (models/config.h). No libtorch here: ModelSource::open validates with these before
// anything is built, and tests/fuzz fuzzes them.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace inpaint {

// UNet2DConditionModel (models/unet.h).
struct UNetConfig {
  int64_t in_channels, out_channels, sample_size, layers_per_block, norm_num_groups;
  int64_t cross_attention_dim;
  double norm_eps;
  std::vector<int64_t> block_out_channels;
  std::vector<std::string> down_block_types, up_block_types;
  std::vector<int64_t> heads;  // per down block (diffusers' attention_head_dim)
  bool use_linear_projection, upcast_attention, flip_sin_to_cos;
  double freq_shift;
  static UNetConfig from_json(const nlohmann::json& j, const std::string& label);
};

// AutoencoderKL (models/vae.h).
struct VaeConfig {
  int64_t in_channels, out_channels, latent_channels, layers_per_block, norm_num_groups;
  std::vector<int64_t> block_out_channels;
  double scaling_factor;
  static VaeConfig from_json(const nlohmann::json& j, const std::string& label);
};

// CLIPTextModel (models/clip_text.h).
struct ClipTextConfig {
  int64_t vocab_size, hidden_size, intermediate_size, num_heads, num_layers, max_positions;
  std::string hidden_act;  // quick_gelu (SD 1.x) or gelu (SD 2.x)
  double layer_norm_eps;
  static ClipTextConfig from_json(const nlohmann::json& j, const std::string& label);
};

}  // namespace inpaint
