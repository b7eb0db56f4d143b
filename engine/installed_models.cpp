#include "engine/installed_models.h"

#include <algorithm>
#include <cstdlib>

#include "engine/error.h"
#include "engine/networks.h"

namespace fs = std::filesystem;

namespace inpaint {

fs::path models_dir() {
  if (const char* env = std::getenv("INPAINT_MODELS"); env && *env) return env;
  if (const char* xdg = std::getenv("XDG_DATA_HOME"); xdg && *xdg) return fs::path(xdg) / "inpaint" / "models";
  const char* home = std::getenv("HOME");
  return fs::path(home ? home : ".") / ".local" / "share" / "inpaint" / "models";
}

std::vector<std::string> installed_models() {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(models_dir(), ec)) {
    const fs::path& p = entry.path();
    if (entry.is_directory() && fs::exists(p / "model_index.json")) names.push_back(p.filename().string());
    else if (entry.is_regular_file() && p.extension() == ".safetensors") names.push_back(p.filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

fs::path resolve_model(const std::string& name) {
  if (!name.empty() && fs::exists(name)) return name;
  if (name.find('/') != std::string::npos) throw Error(name + ": no such file or folder");
  const auto names = installed_models();
  const std::string how = "put a diffusers folder or a .safetensors checkpoint there (README, \"Models\"), "
                          "or give its path";
  if (name.empty()) {
    if (names.empty()) throw Error("no inpainting model is installed in " + models_dir().string() + ": " + how);
    return models_dir() / names.front();
  }
  for (const auto& n : names)
    if (n == name || fs::path(n).stem() == name) return models_dir() / n;
  for (const fs::path& p : {models_dir() / name, models_dir() / (name + ".safetensors")}) {
    std::error_code ec;
    if (fs::is_symlink(p, ec) && !fs::exists(p, ec))
      throw Error("the installed model '" + name + "' points to " + fs::read_symlink(p, ec).string() +
                  ", which was deleted or moved: add it again, or `inpaint models remove " + name + "`");
    if (fs::is_directory(p, ec))
      throw Error("the model folder " + p.string() + " has no model_index.json (incomplete, or not a diffusers folder)");
  }
  std::string list;
  for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
  throw Error("model '" + name + "' is neither a file nor an installed model (installed: " +
              (list.empty() ? "none" : list) + "); " + how);
}

fs::path resolve_taesd(const std::string& name, Family family) {
  const std::string installed = family == Family::SDXL ? "taesdxl" : "taesd";  // latents differ per family
  const fs::path dir = name == "taesd" ? models_dir() / "taesd" / installed : fs::path(name);
  try {
    taesd_files(dir);
  } catch (const Error& e) {
    if (name != "taesd") throw;
    throw Error(std::string(e.what()) + ": `inpaint models fetch " + installed + "` installs it");
  }
  return dir;
}

LoraSpec resolve_lora(const std::string& spec) {
  LoraSpec lora = parse_lora_spec(spec);
  const std::string name = lora.file.string();
  if (fs::exists(name)) return lora;
  const fs::path dir = models_dir() / "lora" / name;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.path().extension() == ".safetensors") {
      lora.file = e.path();
      return lora;
    }
  throw Error("LoRA '" + name + "': no such file, and no installed LoRA of that name in " + (models_dir() / "lora").string() +
              " (`inpaint models fetch lcm-lora-sd15` installs the LCM-LoRA)");
}

}  // namespace inpaint
