// What a run of Inpaint Selection needs: the PDB parameters (one table, so that a GIMP 3
// port can build its arguments from it too) and the settings kept between runs.
#pragma once
#include <cstdint>

namespace inpaint::plugin {

constexpr const char* kProcedure = "plug-in-inpaint";
constexpr const char* kBinary = "inpaint-gimp";

enum class ParamType { Int32, Float, String, Image, Drawable };
struct ParamSpec {
  ParamType type;
  const char* name;
  const char* description;
};

// Scripts rely on this order.
constexpr ParamSpec kParams[] = {
    {ParamType::Int32, "run-mode", "The run mode { RUN-INTERACTIVE (0), RUN-NONINTERACTIVE (1), RUN-WITH-LAST-VALS (2) }"},
    {ParamType::Image, "image", "Input image"},
    {ParamType::Drawable, "drawable", "Input drawable (its selected area is repainted)"},
    {ParamType::String, "prompt", "What should be in the selection"},
    {ParamType::String, "negative-prompt", "What should not"},
    {ParamType::String, "model", "Model folder or .safetensors path, an installed model's name, or \"classic\" (no model: patch-based fill); empty: the first installed, else classic"},
    {ParamType::Int32, "steps", "Denoising steps (1-1000)"},
    {ParamType::Float, "guidance", "Classifier-free guidance scale (<= 1: off)"},
    {ParamType::Float, "strength", "How much of the selection is re-noised, (0, 1]"},
    {ParamType::Int32, "seed", "Random seed; -1: random"},
    {ParamType::String, "scheduler", "ddim, pndm, euler, euler_a, dpmpp_2m, dpmpp_2m_karras, lcm; empty: the model's"},
    {ParamType::Int32, "context", "Margin around the selection in pixels; -1: automatic"},
};
constexpr int kParamCount = sizeof(kParams) / sizeof(kParams[0]);

// Kept with gimp_set_data between runs: plain data only.
struct Settings {
  uint32_t version = 2;
  char prompt[2048] = "";
  char negative_prompt[1024] = "";
  char model[1024] = "";
  char scheduler[64] = "";
  int32_t steps = 20;
  double guidance = 7.5;
  double strength = 1.0;
  uint32_t seed = 0;
  int32_t random_seed = 1;  // a new seed each run
  int32_t context = -1;
  int32_t resolution = 0;   // 0: the model's native one
  char max_memory[32] = "";  // "": no limit
  int32_t threads = 0;      // 0: all cores
  int32_t sample_merged = 0;
  // Dialog and last values only (the PDB parameters above stay as scripts know them):
  char loras[1024] = "";      // ';'-separated LoRAs: an installed name or a file, optionally :SCALE
  char taesd[1024] = "";       // TAESD instead of the model's VAE: "taesd" (installed) or its folder; "": no
};

// Settings read back from GIMP (the last run's) are trusted only after this: a different
// layout version gives the defaults, strings are cut at their arrays' ends and numbers
// brought into their ranges. Returns whether anything had to change.
bool sanitize(Settings& settings);

}  // namespace inpaint::plugin
