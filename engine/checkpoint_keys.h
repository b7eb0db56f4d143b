// Where each diffusers parameter lives in an original single-file SD checkpoint
// (CompVis / Stability layout). One direction only: readers build the reverse map from
// the network's declared parameters, writers use it as is.
#pragma once
#include <string>
#include <vector>

namespace inpaint {

// SD2: OpenCLIP text encoder. SDXL: two text encoders, a UNet with added conditions.
enum class Family { SD1, SD2, SDXL };

// The networks of a family's models: unet, vae, text_encoder (SDXL: text_encoder_2).
std::vector<std::string> component_names(Family family);
// The padding token of a family's tokenizer (SDXL's second: as SD 2's, "!").
std::string tokenizer_pad(Family family, bool second = false);

struct CheckpointLayout {
  Family family = Family::SD1;
  int layers_per_block = 2;            // UNet
  std::vector<bool> up_block_has_attention;
  int vae_levels = 4;
};

struct OriginalKey {
  std::string name;
  int part = 0, parts = 1;  // dim-0 slice (OpenCLIP's fused in_proj q|k|v)
  bool conv1x1 = false;     // stored as [out, in, 1, 1], used as a [out, in] linear
  bool transposed = false;  // stored as [in, out] (OpenCLIP's text_projection: x @ P)
};

// component: "unet", "vae", "text_encoder" or "text_encoder_2"; name: the diffusers
// parameter name.
// Throws Error for a name the layout does not know.
OriginalKey original_key(const std::string& component, const std::string& name,
                         const CheckpointLayout& layout);

// Prefixes of each component's tensors in the single file.
const char* checkpoint_prefix(const std::string& component, Family family);

}  // namespace inpaint
