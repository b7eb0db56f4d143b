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
                   const std::function<void(const std::string&)>& progress, bool checksum = false);
void write_json(const std::filesystem::path& path, const nlohmann::json& j);
// vocab.json and merges.txt from `source`, the other two files for padding with `pad`.
void write_tokenizer(const std::filesystem::path& dir, const std::filesystem::path& source, const std::string& pad);
nlohmann::json model_index_json(bool inpainting, Family family);
// gen-model's and convert's output. An existing one is refused unless `force`, and even
// then unless inpaint wrote it (model_index.json's "_written_by", or a .safetensors file
// whose metadata names an inpaint writer); an output that overlaps one of `inputs` (the
// model being converted, its tokenizer, LoRAs) is always refused. Throws Error.
void check_model_output(const std::filesystem::path& out, bool force, const std::vector<std::filesystem::path>& inputs);
// A fresh name beside `out` to write into (partial_name; refused if it exists).
std::filesystem::path fresh_partial(const std::filesystem::path& out);
// Puts the finished `partial` (file or folder) at `out`, replacing the older output that
// check_model_output allowed: moved aside first, removed once the new one is in place.
void put_in_place(const std::filesystem::path& partial, const std::filesystem::path& out);
// The value of model_index.json's "_written_by" (and of the metadata key "written_by" in
// single files) in what inpaint writes.
constexpr const char* kWrittenBy = "inpaint";

// "diffusion_pytorch_model.safetensors", or "model.safetensors" for the text encoders.
std::string weights_file_name(const std::string& component);

}  // namespace inpaint
