// Writing a diffusers model folder: weight files tensor by tensor (never all in memory),
// configs, tokenizer files, model_index.json. gen-model and convert write through this.
#pragma once
#include <ATen/ATen.h>

#include <filesystem>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "engine/checkpoint_keys.h"
#include "engine/safetensors.h"

namespace inpaint {

struct Pending {  // one tensor of the output file, made when its turn comes
  SafetensorsWriter::Entry entry;
  std::function<at::Tensor()> make;
};

at::Tensor in_dtype(const at::Tensor& t, DType dtype);  // contiguous, converted
void write_tensors(const std::filesystem::path& path, const std::vector<Pending>& tensors,
                   const std::map<std::string, std::string>& metadata,
                   const std::function<void(const std::string&)>& progress);
void write_json(const std::filesystem::path& path, const nlohmann::json& j);
// vocab.json and merges.txt from `source`, the other two files for the family.
void write_tokenizer(const std::filesystem::path& dir, const std::filesystem::path& source, Family family);
nlohmann::json model_index_json(bool inpainting);
// "diffusion_pytorch_model.safetensors", or "model.safetensors" for the text encoder.
std::string weights_file_name(const std::string& component);

}  // namespace inpaint
