// Configs of the models the generator can write: the real SD architectures and tiny
// ones with the same block structure (matching ../shared/fixtures' tiny models).
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "engine/checkpoint_keys.h"

namespace inpaint {

struct ModelPreset {
  std::string name;
  Family family;
  nlohmann::json unet, vae, text_encoder, scheduler;
  nlohmann::json text_encoder_2;  // SDXL's (CLIPTextModelWithProjection); null otherwise
  const nlohmann::json& config(const std::string& component) const;
};

// The scheduler a family's models ship with (SD: PNDM, SDXL: Euler); for single files.
nlohmann::json default_scheduler_config(Family family);

const ModelPreset& model_preset(const std::string& name);  // throws, listing the names
std::vector<std::string> model_preset_names();

}  // namespace inpaint
