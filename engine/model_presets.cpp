#include "engine/model_presets.h"

#include "engine/error.h"

namespace inpaint {
namespace {

using nlohmann::json;

json unet_config(int64_t in, std::vector<int64_t> channels, int64_t groups, json heads,
                 int64_t context, bool linear, int64_t sample) {
  return {{"_class_name", "UNet2DConditionModel"}, {"_diffusers_version", "0.25.1"},
          {"act_fn", "silu"}, {"attention_head_dim", heads},
          {"block_out_channels", channels}, {"center_input_sample", false},
          {"cross_attention_dim", context},
          {"down_block_types", {"CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"}},
          {"downsample_padding", 1}, {"flip_sin_to_cos", true}, {"freq_shift", 0},
          {"in_channels", in}, {"layers_per_block", 2}, {"mid_block_scale_factor", 1},
          {"norm_eps", 1e-5}, {"norm_num_groups", groups}, {"out_channels", 4},
          {"sample_size", sample},
          {"up_block_types", {"UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"}},
          {"upcast_attention", false}, {"use_linear_projection", linear}};
}

json vae_config(std::vector<int64_t> channels, int64_t groups, int64_t sample) {
  return {{"_class_name", "AutoencoderKL"}, {"_diffusers_version", "0.25.1"},
          {"act_fn", "silu"}, {"block_out_channels", channels},
          {"down_block_types", std::vector<std::string>(4, "DownEncoderBlock2D")},
          {"up_block_types", std::vector<std::string>(4, "UpDecoderBlock2D")},
          {"in_channels", 3}, {"out_channels", 3}, {"latent_channels", 4},
          {"layers_per_block", 2}, {"norm_num_groups", groups}, {"sample_size", sample},
          {"scaling_factor", 0.18215}};
}

json text_config(int64_t hidden, int64_t layers, int64_t heads, int64_t inter, const char* act) {
  return {{"architectures", {"CLIPTextModel"}}, {"model_type", "clip_text_model"},
          {"hidden_size", hidden}, {"num_hidden_layers", layers},
          {"num_attention_heads", heads}, {"intermediate_size", inter},
          {"hidden_act", act}, {"layer_norm_eps", 1e-5}, {"max_position_embeddings", 77},
          {"vocab_size", 49408}, {"bos_token_id", 0}, {"eos_token_id", 2},
          {"pad_token_id", 1}, {"projection_dim", hidden}, {"torch_dtype", "float32"}};
}

// SDXL: a DownBlock2D first, transformers of several blocks per level, the size and
// pooled-text conditions (addition_embed_type text_time), two text encoders side by side.
json sdxl_unet_config(int64_t in, std::vector<int64_t> channels, int64_t groups, json heads, json depths, int64_t context,
                      int64_t time_dim, int64_t pooled, int64_t sample) {
  json u = unet_config(in, channels, groups, heads, context, true, sample);
  u["down_block_types"] = {"DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"};
  u["up_block_types"] = {"CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"};
  u.update({{"transformer_layers_per_block", depths}, {"addition_embed_type", "text_time"},
            {"addition_time_embed_dim", time_dim}, {"projection_class_embeddings_input_dim", 6 * time_dim + pooled}});
  return u;
}

json with_projection(json text, int64_t projection) {
  text["architectures"] = {"CLIPTextModelWithProjection"};
  text["projection_dim"] = projection;
  return text;
}

// SDXL base 1.0's scheduler (and the inpainting model's).
json euler_config() {
  return {{"_class_name", "EulerDiscreteScheduler"}, {"_diffusers_version", "0.25.1"},
          {"beta_end", 0.012}, {"beta_schedule", "scaled_linear"}, {"beta_start", 0.00085},
          {"interpolation_type", "linear"}, {"num_train_timesteps", 1000},
          {"prediction_type", "epsilon"}, {"steps_offset", 1}, {"timestep_spacing", "leading"},
          {"trained_betas", nullptr}, {"use_karras_sigmas", false}};
}

json scheduler_config() {
  return {{"_class_name", "PNDMScheduler"}, {"_diffusers_version", "0.25.1"},
          {"beta_end", 0.012}, {"beta_schedule", "scaled_linear"}, {"beta_start", 0.00085},
          {"clip_sample", false}, {"num_train_timesteps", 1000},
          {"prediction_type", "epsilon"}, {"set_alpha_to_one", false},
          {"skip_prk_steps", true}, {"steps_offset", 1}, {"timestep_spacing", "leading"},
          {"trained_betas", nullptr}};
}

std::vector<ModelPreset> make_presets() {
  std::vector<ModelPreset> all;
  for (int64_t in : {9, 4}) {
    const std::string suffix = in == 9 ? "-inpaint" : "";
    all.push_back({"tiny-sd15" + suffix, Family::SD1,
                   unet_config(in, {32, 32, 64, 64}, 8, 8, 64, false, 8),
                   vae_config({32, 32, 64, 64}, 8, 64), text_config(64, 2, 4, 128, "quick_gelu"),
                   scheduler_config(), nullptr});
    all.push_back({"tiny-sd2" + suffix, Family::SD2,
                   unet_config(in, {32, 32, 64, 64}, 8, {2, 2, 4, 4}, 64, true, 8),
                   vae_config({32, 32, 64, 64}, 8, 64), text_config(64, 2, 4, 128, "gelu"),
                   scheduler_config(), nullptr});
    all.push_back({"sd15" + suffix, Family::SD1,
                   unet_config(in, {320, 640, 1280, 1280}, 32, 8, 768, false, 64),
                   vae_config({128, 256, 512, 512}, 32, 512),
                   text_config(768, 12, 12, 3072, "quick_gelu"), scheduler_config(), nullptr});
    // diffusers' SD 2 folders keep 23 of OpenCLIP's 24 text layers (the penultimate output).
    all.push_back({"sd2" + suffix, Family::SD2,
                   unet_config(in, {320, 640, 1280, 1280}, 32, {5, 10, 20, 20}, 1024, true, 64),
                   vae_config({128, 256, 512, 512}, 32, 512),
                   text_config(1024, 23, 16, 4096, "gelu"), scheduler_config(), nullptr});
  }
  // The fixtures' tiny SDXL model (../shared/fixtures/SDXL.md) and the real inpainting one
  // (diffusers/stable-diffusion-xl-1.0-inpainting-0.1).
  json tiny_vae = vae_config({32, 32, 64, 64}, 8, 64), vae = vae_config({128, 256, 512, 512}, 32, 1024);
  tiny_vae["scaling_factor"] = vae["scaling_factor"] = 0.13025;
  for (int64_t in : {9, 4}) {  // the inpainting model, and SDXL base's 4-channel UNet
    const std::string suffix = in == 9 ? "-inpaint" : "";
    all.push_back({"tiny-sdxl" + suffix, Family::SDXL,
                   sdxl_unet_config(in, {32, 48, 64}, 8, {2, 3, 4}, {1, 2, 3}, 80, 16, 48, 8), tiny_vae,
                   text_config(32, 3, 4, 128, "quick_gelu"), euler_config(),
                   with_projection(text_config(48, 4, 3, 192, "gelu"), 48)});
    all.push_back({"sdxl" + suffix, Family::SDXL,
                   sdxl_unet_config(in, {320, 640, 1280}, 32, {5, 10, 20}, {1, 2, 10}, 2048, 256, 1280, 128), vae,
                   text_config(768, 12, 12, 3072, "quick_gelu"), euler_config(),
                   with_projection(text_config(1280, 32, 20, 5120, "gelu"), 1280)});
  }
  return all;
}

const std::vector<ModelPreset>& presets() {
  static const std::vector<ModelPreset> all = make_presets();
  return all;
}

}  // namespace

const json& ModelPreset::config(const std::string& component) const {
  if (component == "unet") return unet;
  if (component == "vae") return vae;
  if (component == "text_encoder") return text_encoder;
  if (component == "text_encoder_2" && !text_encoder_2.is_null()) return text_encoder_2;
  throw Error("preset " + name + " has no " + component);
}

json default_scheduler_config(Family family) {
  return family == Family::SDXL ? euler_config() : scheduler_config();
}

std::vector<std::string> model_preset_names() {
  std::vector<std::string> names;
  for (const auto& p : presets()) names.push_back(p.name);
  return names;
}

const ModelPreset& model_preset(const std::string& name) {
  for (const auto& p : presets())
    if (p.name == name) return p;
  std::string list;
  for (const auto& n : model_preset_names()) list += (list.empty() ? "" : ", ") + n;
  throw Error("unknown preset '" + name + "'; known presets: " + list);
}

}  // namespace inpaint
