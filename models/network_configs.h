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
  // Transformer blocks per attention of each down block (SDXL: 1, 2, 10); the up blocks
  // take them reversed, the mid block the deepest level's.
  std::vector<int64_t> transformer_layers;
  bool use_linear_projection, upcast_attention, flip_sin_to_cos;
  double freq_shift;
  // SDXL's added conditions (addition_embed_type "text_time"): the pooled text embedding
  // and six size conditions, each of the six embedded sinusoidally in
  // addition_time_embed_dim channels, through add_embedding into the time embedding.
  bool text_time = false;
  int64_t addition_time_embed_dim = 0, projection_class_embeddings_input_dim = 0;
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
  // CLIPTextModelWithProjection (SDXL's second encoder): text_projection of the pooled
  // output, projection_dim wide.
  bool with_projection = false;
  int64_t projection_dim = 0;
  static ClipTextConfig from_json(const nlohmann::json& j, const std::string& label);
};

}  // namespace inpaint
