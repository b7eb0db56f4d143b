// What a run of Inpaint Selection needs, for both GIMPs: the procedure's arguments (one
// table: GIMP 2.10 registers the first ones as its positional PDB parameters, GIMP 3 all
// of them as named arguments with ranges and defaults) and the Settings they fill in.
#pragma once
#include <cstdint>
#include <string>

namespace inpaint::plugin {

constexpr const char* kProcedure = "plug-in-inpaint";
constexpr const char* kBinary = "inpaint-gimp";
constexpr const char* kMenuLabel = "Inpaint _Selection...";
constexpr const char* kMenuPath = "<Image>/Filters/Inpaint";
constexpr const char* kBlurb = "Repaint the selection with Stable Diffusion inpainting";
constexpr const char* kHelp =
    "Repaints the selected area of the layer from a text prompt, on the CPU. The result is a new layer above it, "
    "covering the selection, with the selection (soft edges included) as its alpha. Pixels outside the selection "
    "never change.";
// The scheduler argument's value for "the model's own" (GIMP 3's choice needs a name).
constexpr const char* kModelScheduler = "default";

enum class ArgType { Text, Int, Double, Choice, Boolean };
struct Argument {
  ArgType type;
  const char* name;   // the PDB / Script-Fu name
  const char* label;  // the dialog's
  const char* description;
  double min, max, number;  // range and default of numbers (booleans: 0 or 1)
  const char* text;         // default of texts and choices
  bool gimp2;               // one of GIMP 2.10's positional parameters (after run-mode, image, drawable)
  const char* choices = "";  // a choice's values, space-separated; "": the engine's schedulers
};

// Scripts rely on this order: new arguments go at the end.
constexpr Argument kArguments[] = {
    {ArgType::Text, "prompt", "_Prompt", "What should be in the selection", 0, 0, 0, "", true},
    {ArgType::Text, "negative-prompt", "_Negative prompt", "What should not", 0, 0, 0, "", true},
    {ArgType::Text, "model", "_Model",
     "Model folder or .safetensors path, an installed model's name, or \"classic\" (no model: patch-based fill); "
     "empty: the first installed, else classic", 0, 0, 0, "", true},
    {ArgType::Int, "steps", "_Steps", "Denoising steps (1-1000)", 1, 1000, 20, "", true},
    {ArgType::Double, "guidance", "_Guidance", "Classifier-free guidance scale (<= 1: off)", 0, 100, 7.5, "", true},
    {ArgType::Double, "strength", "St_rength", "How much of the selection is re-noised, (0, 1]", 0.01, 1, 1, "", true},
    {ArgType::Int, "seed", "S_eed", "Random seed; -1: a new one each run", -1, 2147483647, -1, "", true},
    {ArgType::Choice, "scheduler", "S_cheduler",
     "ddim, pndm, euler, euler_a, dpmpp_2m, dpmpp_2m_karras, lcm; empty or \"default\": the model's", 0, 0, 0,
     kModelScheduler, true},
    {ArgType::Int, "context", "Context _margin", "Pixels of surroundings the model sees around the selection; -1: automatic",
     -1, 100000, -1, "", true},
    // GIMP 3 only (GIMP 2.10 scripts: INPAINT_LORAS, INPAINT_VAE, INPAINT_MAX_MEMORY; its dialog has them all).
    {ArgType::Text, "lora", "_LoRA",
     "LoRAs to apply: an installed one's name or a .safetensors file, optionally :SCALE; several separated by ';'",
     0, 0, 0, "", false},
    {ArgType::Text, "vae", "Image _encoder/decoder",
     "full (the model's VAE), taesd (fast, approximate; installed by `inpaint models fetch taesd`) or a TAESD folder",
     0, 0, 0, "full", false},
    {ArgType::Text, "max-memory", "Memory _limit", "e.g. 1G or 750M; empty: no limit (fastest)", 0, 0, 0, "", false},
    {ArgType::Int, "resolution", "Working _resolution", "Side of the square the model works at; 0: its own (512 for SD 1.5 and 2, 1024 for SDXL)",
     0, 2048, 0, "", false},
    {ArgType::Int, "grow", "_Grow (px)", "Pixels the repainted area reaches past the selection", 0, 1000, 8, "", false},
    {ArgType::Int, "feather", "_Feather (px)", "Pixels over which the result fades in, inside the selection", 0, 1000, 8,
     "", false},
    {ArgType::Int, "threads", "_Threads", "CPU threads; 0: all cores", 0, 1024, 0, "", false},
    {ArgType::Boolean, "sample-merged", "Sample merged", "Repaint from the visible image rather than the layer alone",
     0, 1, 0, "", false},
    {ArgType::Choice, "precision", "_Precision",
     "auto: bf16 where the processor multiplies bf16 natively (AMX, AVX512-BF16; up to 4x faster, less exact), "
     "else fp32; fp32; bf16", 0, 0, 0, "auto", false, "auto fp32 bf16"},
};
constexpr int kArgumentCount = sizeof(kArguments) / sizeof(kArguments[0]);

// Kept with gimp_set_data between runs by GIMP 2.10: plain data only.
struct Settings {
  uint32_t version = 4;
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
  char loras[1024] = "";      // ';'-separated LoRAs: an installed name or a file, optionally :SCALE
  char taesd[1024] = "";       // TAESD instead of the model's VAE: "taesd" (installed) or its folder; "": no
  int32_t grow = 8;
  int32_t feather = 8;
  char precision[8] = "auto";  // auto, fp32 or bf16
};

// Sets the setting of argument `name` (a kArguments name) from a script's or the
// dialog's value: text for Text and Choice, number for the others.
void assign_text(Settings& settings, const std::string& name, const char* value);
void assign_number(Settings& settings, const std::string& name, double value);

// Settings read back from GIMP (the last run's) are trusted only after this: a different
// layout version gives the defaults, strings are cut at their arrays' ends and numbers
// brought into their ranges. Returns whether anything had to change.
bool sanitize(Settings& settings);

}  // namespace inpaint::plugin
