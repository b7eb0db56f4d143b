// LoRA files applied to a model's weights: W' = W + scale * alpha/rank * up @ down for
// every layer the file adapts (linear and convolution weights of the UNet and the
// text encoder). Formats: kohya / webui ("lora_unet_down_blocks_0_..._to_q.lora_down.weight",
// ".lora_up.weight", ".alpha"; "lora_te_..." for the text encoder), diffusers/PEFT
// ("unet.<module>.lora_A.weight" / "lora_B.weight", "text_encoder.<module>..."), and the
// older diffusers attention-processor one ("...attn1.processor.to_q_lora.down.weight").
#pragma once
#include <filesystem>
#include <string>
#include <vector>

#include "engine/model_source.h"

namespace inpaint {

struct LoraSpec {
  std::filesystem::path file;
  double scale = 1.0;
};

// "file.safetensors" or "file.safetensors:0.8". Throws Error for a bad scale.
LoraSpec parse_lora_spec(const std::string& text);

struct LoraReport {
  int layers = 0;  // weights changed
  std::vector<std::string> ignored;  // LoRA keys that match nothing of this model
};

// Adds the file's factors to model.components[...].loras, kept low-rank: the networks
// add up @ down where they widen each weight (about 14 % more arithmetic for an
// LCM-LoRA of rank 64, no full-size copies of the weights), `convert --lora` for good.
// Throws Error naming the file when it is not a LoRA for this model.
LoraReport apply_lora(ModelSource& model, const LoraSpec& lora);

// W + up @ down, in W's stored dtype: the weight `convert --lora` and the LoRA cache
// (engine/lora_cache.h) write.
at::Tensor merged_weight(const TensorRef& ref, const LoraFactors& lora);

}  // namespace inpaint
