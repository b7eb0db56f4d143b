// Where installed models live and how a name or a path becomes a model to open.
// install/ puts models in models_dir(); the CLI and the plug-in resolve names there.
#pragma once
#include <filesystem>
#include <string>
#include <vector>

#include "engine/checkpoint_keys.h"
#include "engine/lora.h"

namespace inpaint {

// The model name that stands for the classic fill (no model): CLI, plug-in, settings.
constexpr const char* kClassicFill = "classic";

// $INPAINT_MODELS, else $XDG_DATA_HOME/inpaint/models, else ~/.local/share/inpaint/models.
std::filesystem::path models_dir();

// Names of the installed models (folders and .safetensors files in models_dir()), sorted.
std::vector<std::string> installed_models();

// An existing path as is; otherwise the installed model of that name; empty: the
// first installed one. Throws Error saying how to install one when there is none.
std::filesystem::path resolve_model(const std::string& name_or_path);

// The TAESD folder for `--vae`: "taesd" is the one `inpaint models fetch taesd` (SDXL
// models: `fetch taesdxl`) installs (models_dir()/taesd/NAME), anything else a folder
// holding an encoder and a decoder (taesd_encoder.safetensors, or taesdxl_...). Throws
// Error saying how to get it.
std::filesystem::path resolve_taesd(const std::string& name_or_folder, Family family);

// A LoRA for `--lora` (and the plug-in's LoRA field): "FILE|NAME[:SCALE]", the file an
// existing path as is, else an installed LoRA's name (models_dir()/lora/NAME, as
// `inpaint models fetch lcm-lora-sd15` puts it). Throws Error.
LoraSpec resolve_lora(const std::string& spec);

}  // namespace inpaint
