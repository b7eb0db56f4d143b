// Building a model's networks from its ModelSource: each load checks every tensor and
// throws one Error listing what is missing or wrongly shaped.
#pragma once
#include <memory>

#include "engine/model_source.h"
#include "models/clip_text.h"
#include "models/clip_tokenizer.h"
#include "models/taesd.h"
#include "models/unet.h"
#include "models/vae.h"

namespace inpaint {

// component: text_encoder, or SDXL's text_encoder_2.
std::unique_ptr<ClipTextModel> load_text_encoder(const ModelSource& model, const std::string& component = "text_encoder");
// `packed`, when given, receives the layers' packed-weight slots (engine/packed_cache.h).
std::unique_ptr<UNet> load_unet(const ModelSource& model, PackedSlots* packed = nullptr);
std::unique_ptr<AutoencoderKL> load_vae(const ModelSource& model, PackedSlots* packed = nullptr);
// The first tokenizer, or SDXL's second (text_encoder_2's).
ClipTokenizer load_tokenizer(const ModelSource& model, bool second = false);

// TAESD from an encoder and a decoder .safetensors file.
struct Taesd {
  TensorMap encoder_tensors, decoder_tensors;  // keep the mapped views alive
  std::unique_ptr<TaesdEncoder> encoder;
  std::unique_ptr<TaesdDecoder> decoder;
};
std::unique_ptr<Taesd> load_taesd(const std::filesystem::path& encoder_file,
                                  const std::filesystem::path& decoder_file);
// A TAESD folder's encoder and decoder files: taesd_encoder.safetensors and
// taesd_decoder.safetensors (TAESD, for SD 1.x/2.x), or taesdxl_... (TAESDXL, the same
// network trained on SDXL's latents). Throws Error naming the folder.
std::pair<std::filesystem::path, std::filesystem::path> taesd_files(const std::filesystem::path& dir);

}  // namespace inpaint
