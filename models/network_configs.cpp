#include "models/network_configs.h"

#include "models/config.h"

namespace inpaint {

UNetConfig UNetConfig::from_json(const nlohmann::json& j, const std::string& label) {
  ConfigReader r{j, label};
  UNetConfig c;
  c.in_channels = r.integer("in_channels", 1, 64);
  c.out_channels = r.integer("out_channels", 1, 64);
  c.sample_size = r.integer("sample_size", 64, 8, 512);
  c.layers_per_block = r.integer("layers_per_block", 1, kMaxLayers);
  c.norm_num_groups = r.integer("norm_num_groups", 32, 1, kMaxGroups);
  c.norm_eps = r.number("norm_eps", 1e-5, 0, 1);
  c.cross_attention_dim = r.integer("cross_attention_dim", 1, kMaxChannels);
  c.block_out_channels = r.integers("block_out_channels", 1, kMaxChannels, kMaxLevels);
  c.down_block_types = r.strings("down_block_types");
  c.up_block_types = r.strings("up_block_types");
  c.use_linear_projection = r.boolean("use_linear_projection", false);
  c.upcast_attention = r.boolean("upcast_attention", false);
  c.flip_sin_to_cos = r.boolean("flip_sin_to_cos", true);
  c.freq_shift = r.number("freq_shift", 0, -16, 16);
  const size_t levels = c.block_out_channels.size();
  if (levels == 0) r.bad("block_out_channels", "is empty");
  if (c.down_block_types.size() != levels || c.up_block_types.size() != levels)
    r.bad("down_block_types", "and up_block_types must have one entry per block_out_channels");
  // diffusers 0.25 reads attention_head_dim as the number of heads.
  if (r.has("num_attention_heads")) r.bad("num_attention_heads", "is not supported (use attention_head_dim)");
  if (j.contains("attention_head_dim") && j["attention_head_dim"].is_array())
    c.heads = r.integers("attention_head_dim", 1, kMaxChannels, kMaxLevels);
  else
    c.heads.assign(levels, r.integer("attention_head_dim", 8, 1, kMaxChannels));
  if (c.heads.size() != levels) r.bad("attention_head_dim", "must have one entry per block");
  for (size_t i = 0; i < levels; ++i) {
    if (c.block_out_channels[i] % c.norm_num_groups != 0)
      r.bad("norm_num_groups", "does not divide block_out_channels");
    if (c.block_out_channels[i] % c.heads[i] != 0)
      r.bad("attention_head_dim", "does not divide block_out_channels");
    const auto& d = c.down_block_types[i];
    const auto& u = c.up_block_types[i];
    if (d != "CrossAttnDownBlock2D" && d != "DownBlock2D")
      r.bad("down_block_types", "has unsupported '" + d + "'");
    if (u != "CrossAttnUpBlock2D" && u != "UpBlock2D")
      r.bad("up_block_types", "has unsupported '" + u + "'");
  }
  if (r.string("mid_block_type", "UNetMidBlock2DCrossAttn") != "UNetMidBlock2DCrossAttn")
    r.bad("mid_block_type", "is not supported");
  // Features of other model families that this UNet does not implement.
  for (const char* k : {"class_embed_type", "time_cond_proj_dim", "encoder_hid_dim", "time_embedding_dim",
                        "reverse_transformer_layers_per_block", "time_embedding_act_fn", "timestep_post_act"})
    if (r.has(k)) r.bad(k, "is not supported");
  if (r.has("addition_embed_type")) {
    if (r.string("addition_embed_type", "") != "text_time")
      r.bad("addition_embed_type", "is '" + r.string("addition_embed_type", "") + "'; supported: text_time (SDXL)");
    c.text_time = true;
    c.addition_time_embed_dim = r.integer("addition_time_embed_dim", 2, kMaxChannels);
    c.projection_class_embeddings_input_dim = r.integer("projection_class_embeddings_input_dim", 1, 16 * kMaxChannels);
    if (c.addition_time_embed_dim % 2 != 0) r.bad("addition_time_embed_dim", "must be even");
    if (c.projection_class_embeddings_input_dim <= 6 * c.addition_time_embed_dim)
      r.bad("projection_class_embeddings_input_dim", "leaves no room for the pooled text embedding "
            "(6 x addition_time_embed_dim are the size conditions)");
  }
  if (r.string("resnet_time_scale_shift", "default") != "default")
    r.bad("resnet_time_scale_shift", "is not supported");
  if (r.has("transformer_layers_per_block") && j["transformer_layers_per_block"].is_array())
    c.transformer_layers = r.integers("transformer_layers_per_block", 1, kMaxLayers, kMaxLevels);
  else
    c.transformer_layers.assign(levels, r.integer("transformer_layers_per_block", 1, 1, kMaxLayers));
  if (c.transformer_layers.size() != levels) r.bad("transformer_layers_per_block", "must have one entry per block");
  if (r.boolean("only_cross_attention", false) || r.boolean("dual_cross_attention", false))
    r.bad("only_cross_attention", "and dual_cross_attention are not supported");
  if (r.integer("conv_in_kernel", 3, 1, 7) != 3 || r.integer("conv_out_kernel", 3, 1, 7) != 3)
    r.bad("conv_in_kernel", "other than 3 is not supported");
  if (r.string("time_embedding_type", "positional") != "positional")
    r.bad("time_embedding_type", "is not supported");
  return c;
}

VaeConfig VaeConfig::from_json(const nlohmann::json& j, const std::string& label) {
  ConfigReader r{j, label};
  VaeConfig c;
  c.in_channels = r.integer("in_channels", 3, 1, 64);
  c.out_channels = r.integer("out_channels", 3, 1, 64);
  c.latent_channels = r.integer("latent_channels", 4, 1, 64);
  c.layers_per_block = r.integer("layers_per_block", 1, 1, kMaxLayers);
  c.norm_num_groups = r.integer("norm_num_groups", 32, 1, kMaxGroups);
  c.block_out_channels = r.integers("block_out_channels", 1, kMaxChannels, kMaxLevels);
  c.scaling_factor = r.number("scaling_factor", 0.18215, 1e-3, 1e3);  // 0 paints black
  for (int64_t ch : c.block_out_channels)
    if (ch <= 0 || ch % c.norm_num_groups != 0)
      r.bad("block_out_channels", "must be positive multiples of norm_num_groups");
  if (r.has("down_block_types"))
    for (const auto& t : r.strings("down_block_types"))
      if (t != "DownEncoderBlock2D") r.bad("down_block_types", "has unsupported '" + t + "'");
  if (r.has("up_block_types"))
    for (const auto& t : r.strings("up_block_types"))
      if (t != "UpDecoderBlock2D") r.bad("up_block_types", "has unsupported '" + t + "'");
  if (!r.boolean("mid_block_add_attention", true))
    r.bad("mid_block_add_attention", "false is not supported");
  return c;
}

ClipTextConfig ClipTextConfig::from_json(const nlohmann::json& j, const std::string& label) {
  ConfigReader r{j, label};
  ClipTextConfig c;
  c.vocab_size = r.integer("vocab_size", 1, 1 << 20);
  c.hidden_size = r.integer("hidden_size", 1, kMaxChannels);
  c.intermediate_size = r.integer("intermediate_size", 1, 4 * kMaxChannels);
  c.num_heads = r.integer("num_attention_heads", 1, 256);
  c.num_layers = r.integer("num_hidden_layers", 1, 4 * kMaxLayers);
  c.max_positions = r.integer("max_position_embeddings", 77, 4096);  // prompts are 77 tokens
  c.hidden_act = r.string("hidden_act", "quick_gelu");
  c.layer_norm_eps = r.number("layer_norm_eps", 1e-5, 0, 1);
  if (c.hidden_size % c.num_heads != 0)
    r.bad("num_attention_heads", "does not divide hidden_size");
  if (c.hidden_act != "quick_gelu" && c.hidden_act != "gelu")
    r.bad("hidden_act", "is '" + c.hidden_act + "'; supported: quick_gelu, gelu");
  if (r.has("architectures")) {
    const auto kinds = r.strings("architectures");
    c.with_projection = kinds.size() == 1 && kinds[0] == "CLIPTextModelWithProjection";
    if (kinds.size() != 1 || (kinds[0] != "CLIPTextModel" && !c.with_projection))
      r.bad("architectures", "must be [\"CLIPTextModel\"] or [\"CLIPTextModelWithProjection\"]");
  }
  if (c.with_projection) c.projection_dim = r.integer("projection_dim", 1, kMaxChannels);
  return c;
}

}  // namespace inpaint
