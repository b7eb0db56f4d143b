#include "engine/model_folder.h"

#include <fstream>

#include "engine/error.h"
#include "engine/weights.h"

namespace fs = std::filesystem;

namespace inpaint {

at::Tensor in_dtype(const at::Tensor& t, DType dtype) { return t.to(scalar_type_of(dtype)).contiguous(); }

void write_tensors(const fs::path& path, const std::vector<Pending>& tensors,
                   const std::map<std::string, std::string>& metadata,
                   const std::function<void(const std::string&)>& progress) {
  std::vector<SafetensorsWriter::Entry> entries;
  for (const auto& t : tensors) entries.push_back(t.entry);
  SafetensorsWriter writer(path, entries, metadata);
  for (const auto& t : tensors) {
    const at::Tensor value = t.make();
    writer.write_next(t.entry.name, value.data_ptr(), value.nbytes());
  }
  writer.finish();
  if (progress) progress("wrote " + path.string());
}

void write_json(const fs::path& path, const nlohmann::json& j) {
  std::ofstream out(path);
  out << j.dump(2) << "\n";
  if (!out) throw Error(path.string() + ": cannot write");
}

void write_tokenizer(const fs::path& dir, const fs::path& source, Family family) {
  fs::create_directories(dir);
  for (const char* f : {"vocab.json", "merges.txt"})
    fs::copy_file(source / f, dir / f, fs::copy_options::overwrite_existing);
  const std::string pad = family == Family::SD2 ? "!" : "<|endoftext|>";
  write_json(dir / "special_tokens_map.json",
             {{"bos_token", "<|startoftext|>"}, {"eos_token", "<|endoftext|>"},
              {"pad_token", pad}, {"unk_token", "<|endoftext|>"}});
  write_json(dir / "tokenizer_config.json",
             {{"tokenizer_class", "CLIPTokenizer"}, {"model_max_length", 77},
              {"do_lower_case", true}, {"bos_token", "<|startoftext|>"},
              {"eos_token", "<|endoftext|>"}, {"pad_token", pad}, {"unk_token", "<|endoftext|>"}});
}

nlohmann::json model_index_json(bool inpainting) {
  return {{"_class_name", inpainting ? "StableDiffusionInpaintPipeline" : "StableDiffusionPipeline"},
          {"_diffusers_version", "0.25.1"},
          {"scheduler", {"diffusers", "PNDMScheduler"}},
          {"text_encoder", {"transformers", "CLIPTextModel"}},
          {"tokenizer", {"transformers", "CLIPTokenizer"}},
          {"unet", {"diffusers", "UNet2DConditionModel"}},
          {"vae", {"diffusers", "AutoencoderKL"}},
          {"requires_safety_checker", false}};
}

std::string weights_file_name(const std::string& component) {
  return component == "text_encoder" ? "model.safetensors" : "diffusion_pytorch_model.safetensors";
}

}  // namespace inpaint
