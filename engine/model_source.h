// Opening a model: a diffusers folder or a single-file .safetensors checkpoint. Either
// way the result is the same: per component a config and a map from diffusers parameter
// names to zero-copy tensor views. Nothing is read beyond headers and configs.
#pragma once
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "engine/checkpoint_keys.h"
#include "engine/weights.h"

namespace inpaint {

struct Component {
  std::string name;            // unet, vae, text_encoder
  nlohmann::json config;
  std::string config_label;    // where the config came from, for messages
  TensorMap tensors;           // by diffusers parameter name
  LoraMap loras;  // LoRA factors by weight name (engine/lora.h)
  std::vector<std::string> files;
  std::vector<std::string> unexpected;  // single file: under the component's prefix, unused
};

struct OpenOptions {
  bool prefer_fp16 = false;              // pick *.fp16.safetensors when both exist
  std::filesystem::path tokenizer_dir;   // for single files (vocab.json + merges.txt)
};

struct ModelSource {
  std::filesystem::path path;
  bool single_file = false;
  Family family = Family::SD1;
  std::map<std::string, Component> components;  // "unet", "vae", "text_encoder" (SDXL: "text_encoder_2")
  nlohmann::json scheduler_config;
  std::filesystem::path tokenizer_dir, tokenizer_2_dir;  // the second: SDXL's
  std::string tokenizer_pad;      // set for single files (no tokenizer_config.json)
  std::string tokenizer_2_pad;
  // SDXL (model_index.json): no negative prompt gives zeros, not the empty prompt's
  // encoding, for the unconditional inputs.
  bool force_zeros_for_empty_prompt = false;
  std::vector<std::string> ignored;  // single file: tensors outside the networks (EMA, buffers)

  static ModelSource open(const std::filesystem::path& path, const OpenOptions& options = {});
  const Component& component(const std::string& name) const;
  int64_t unet_in_channels() const;
  bool inpainting() const { return unet_in_channels() == 9; }
  bool has(const std::string& component) const { return components.count(component) > 0; }
  std::string architecture() const;  // e.g. "SD 1.x inpainting (9-channel UNet)"
};

// Builds the component's network against `p` (loading or declaring mode) and drops it:
// what is missing or misshapen is then in `p`.
void declare_network(const std::string& component, const nlohmann::json& config,
                     const std::string& label, ParamLoader& p);
// The networks' declared parameters for a config (no weights needed).
std::vector<ParamSpec> declared_params(const std::string& component,
                                       const nlohmann::json& config);
// The layout of a single-file checkpoint for these configs.
CheckpointLayout checkpoint_layout(Family family, const nlohmann::json& unet_config,
                                   const nlohmann::json& vae_config);

// CLIP tokenizer files (vocab.json + merges.txt): the first folder holding them of
// `given`, $INPAINT_TOKENIZER, `beside`, $XDG_DATA_HOME/inpaint/tokenizer, then the
// program's own copy (shipped_tokenizer_dirs()). Otherwise throws an Error starting
// with `what` and listing where it looked.
std::filesystem::path find_tokenizer_dir(const std::filesystem::path& given,
                                         const std::filesystem::path& beside, const std::string& what);
// Where the CLIP vocabulary shipped with the program (share/clip/) is looked for: clip/
// beside the executable (the GIMP plug-in's folder), PREFIX/share/inpaint/clip, the
// source tree's share/clip.
std::vector<std::filesystem::path> shipped_tokenizer_dirs();

// Refuses pickle files (.ckpt/.pt/.pth/.bin) with the way to convert them.
void refuse_pickle(const std::filesystem::path& path);

}  // namespace inpaint
