// The inpainting pipeline: diffusers' StableDiffusionInpaintPipeline (SDXL:
// StableDiffusionXLInpaintPipeline), step for step and draw for draw, so that one seed
// gives the same image in both. Networks are loaded in
// turn (text encoder, VAE, UNet, VAE) from the memory-mapped model.
#pragma once
#include <ATen/ATen.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <string>

#include "engine/model_source.h"
#include "models/compute.h"
#include "models/op_profile.h"

namespace inpaint {

struct GenerationOptions {
  std::string prompt, negative_prompt;
  // Whether an empty negative_prompt was given as "" rather than left out. SDXL encodes
  // "" like any prompt but gives zeros where there is none (force_zeros_for_empty_prompt).
  bool negative_prompt_given = false;
  int steps = 20;
  double guidance = 7.5;
  double strength = 1.0;
  uint64_t seed = 0;
  std::string scheduler;  // a name of scheduler_names() or a diffusers class name; empty: the model's
  // A folder with taesd_encoder.safetensors and taesd_decoder.safetensors: encode and
  // decode with TAESD (fast, approximate) instead of the model's VAE. Empty: the VAE.
  std::filesystem::path taesd;
  // A folder where the UNet's and the VAE's packed weights are kept for later runs
  // (engine/packed_cache.h). Empty: packed in memory at every load.
  std::filesystem::path packed_cache;
  // False: the UNet's packed weights are used from packed_cache but not kept there. For a
  // run that merges its LoRAs into the LoRA cache after the picture: later runs read the
  // merged weights, whose packed file is another, and writing this one cost 4 s and
  // 1.5 GB of disk (bf16, Zen 5) for nothing.
  bool keep_unet_packed = true;
};

// Receives stages and steps; returning false from step() (or stage()) cancels.
struct Progress {
  virtual ~Progress() = default;
  virtual bool stage(const std::string& name) { (void)name; return true; }
  virtual bool step(int done, int total, double seconds_per_step) {
    (void)done, (void)total, (void)seconds_per_step;
    return true;
  }
  // The latents after each denoising step (previews, parity checks).
  virtual void latents(int done, const at::Tensor& latents) { (void)done, (void)latents; }
};

class Cancelled : public std::runtime_error {
 public:
  Cancelled() : std::runtime_error("cancelled") {}
};

struct StageTimes {
  std::map<std::string, double> seconds;  // per stage
  std::map<std::string, size_t> peak_rss_after;  // VmHWM when each stage last ended
  double seconds_per_step = 0;
  int unet_steps = 0;        // of the last region
  int unet_steps_total = 0;  // of all regions
  double seconds_to_first_step = 0;  // from process start to the first UNet call
  OpProfile unet_profile;            // with op profiling on: the denoising loops' operations
  // Per network (unet, vae) with GenerationOptions::packed_cache: "used" (mapped from
  // the folder), "written" (packed in memory, kept for the next run) or "missing".
  std::map<std::string, std::string> packed_cache;
};

// Checks options against the model and the limits (steps 1..1000, strength in (0, 1],
// guidance >= 0); throws Error naming the bad value.
void validate(const GenerationOptions& options);

// The text encoders' compute. They run once per prompt: in bf16 each weight is packed at
// its call and dropped after it, as the streamed policy does (no f32 copy of the weights;
// SDXL's two encoders on a prompt and a negative one 1.3-1.6 -> 0.67 s on the Zen 5 EPYC);
// in fp32 widened, not packed, as before.
Compute text_encoder_compute(const Compute& c);

// What the text encoders give the UNet: context [B, 77, dim] and, for SDXL, the pooled
// embedding [B, dim'] (added condition text_embeds). With guidance: [unconditional, prompt].
struct PromptEmbeddings {
  at::Tensor context, pooled;
};

class Pipeline {
 public:
  // `compute`: how its networks compute (engine/memory_plan.h gives the policy).
  explicit Pipeline(const ModelSource& model, const Compute& compute = {});
  // image [1,3,H,W] in [-1,1], mask [1,1,H,W] in [0,1] (H, W multiples of 8).
  // Returns the generated image [1,3,H,W] in [0,1] (not yet composited).
  at::Tensor generate(const at::Tensor& image, const at::Tensor& mask, const GenerationOptions& options,
                      Progress& progress, StageTimes* times = nullptr) const;
  int64_t native_resolution() const;  // the UNet's sample_size x 8

 private:
  PromptEmbeddings prompt_embeddings(const GenerationOptions& options, bool cfg) const;

  const ModelSource& model_;
  Compute compute_;
  // Prompt embeddings by (prompt, negative prompt, guidance on): regions and repeated
  // runs in one process skip the text encoder.
  mutable std::map<std::string, PromptEmbeddings> prompt_cache_;
};

}  // namespace inpaint
