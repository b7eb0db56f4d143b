#include "engine/networks.h"

#include "engine/error.h"

namespace inpaint {
namespace {

template <class Net, class Config>
std::unique_ptr<Net> load(const ModelSource& model, const std::string& name, PackedSlots* packed = nullptr) {
  const Component& c = model.component(name);
  ParamLoader p(c.tensors, name + " (" + (c.files.empty() ? model.path.string() : c.files[0]) + ")", &c.loras);
  p.collect_packed(packed);
  auto net = std::make_unique<Net>(Config::from_json(c.config, c.config_label), p);
  p.check();
  return net;
}

}  // namespace

std::unique_ptr<ClipTextModel> load_text_encoder(const ModelSource& m, const std::string& component) {
  return load<ClipTextModel, ClipTextConfig>(m, component);
}
std::unique_ptr<UNet> load_unet(const ModelSource& m, PackedSlots* packed) {
  return load<UNet, UNetConfig>(m, "unet", packed);
}
std::unique_ptr<AutoencoderKL> load_vae(const ModelSource& m, PackedSlots* packed) {
  return load<AutoencoderKL, VaeConfig>(m, "vae", packed);
}
ClipTokenizer load_tokenizer(const ModelSource& m, bool second) {
  if (second && m.tokenizer_2_dir.empty()) throw Error(m.path.string() + ": no second tokenizer (not an SDXL model)");
  return second ? ClipTokenizer::load(m.tokenizer_2_dir, m.tokenizer_2_pad) : ClipTokenizer::load(m.tokenizer_dir, m.tokenizer_pad);
}

std::pair<std::filesystem::path, std::filesystem::path> taesd_files(const std::filesystem::path& dir) {
  for (const char* name : {"taesd", "taesdxl"}) {
    const auto encoder = dir / (std::string(name) + "_encoder.safetensors"), decoder = dir / (std::string(name) + "_decoder.safetensors");
    if (std::filesystem::exists(encoder) && std::filesystem::exists(decoder)) return {encoder, decoder};
  }
  throw Error(dir.string() + " has no TAESD encoder and decoder (taesd_encoder.safetensors and taesd_decoder.safetensors, "
              "or taesdxl_...)");
}

std::unique_ptr<Taesd> load_taesd(const std::filesystem::path& encoder_file,
                                  const std::filesystem::path& decoder_file) {
  auto t = std::make_unique<Taesd>();
  t->encoder_tensors = tensors_of(SafetensorsFile::open(encoder_file));
  t->decoder_tensors = tensors_of(SafetensorsFile::open(decoder_file));
  const TaesdConfig config = TaesdConfig::detect(t->encoder_tensors, t->decoder_tensors);
  ParamLoader pe(t->encoder_tensors, "TAESD encoder (" + encoder_file.string() + ")");
  t->encoder = std::make_unique<TaesdEncoder>(config, pe);
  pe.check();
  ParamLoader pd(t->decoder_tensors, "TAESD decoder (" + decoder_file.string() + ")");
  t->decoder = std::make_unique<TaesdDecoder>(config, pd);
  pd.check();
  for (auto* p : {&pe, &pd})
    if (!p->unexpected().empty())
      throw Error("TAESD: unexpected tensor '" + p->unexpected()[0] + "' (not a TAESD file?)");
  return t;
}

}  // namespace inpaint
