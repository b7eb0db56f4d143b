// Writes random-weight models with real configs (tests and benchmarks): a diffusers
// folder, or a single-file checkpoint with the original key names.
#pragma once
#include <ATen/ATen.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>

#include "engine/safetensors.h"

namespace inpaint {

struct GenerateOptions {
  std::string preset;
  DType dtype = DType::F32;
  uint64_t seed = 0;
  std::filesystem::path out;            // folder; with single_file, the .safetensors path
  bool single_file = false;
  bool force = false;                   // replace an existing output
  std::filesystem::path tokenizer_dir;  // vocab.json + merges.txt to copy
};

void generate_model(const GenerateOptions& options,
                    const std::function<void(const std::string&)>& progress = {});

// The value generate_model gives a parameter: depends only on seed and name, so a
// folder and a single file of the same preset and seed hold the same numbers.
at::Tensor random_parameter(const std::string& name, const std::vector<int64_t>& shape,
                            uint64_t seed);

// The names, dtypes and shapes of the tensors a single-file checkpoint of `preset` holds.
std::vector<SafetensorsWriter::Entry> single_file_entries(const std::string& preset, DType dtype);

// A random kohya-format LoRA of `rank` for every linear and convolution weight of the
// preset's UNet (the layers LCM-LoRA adapts, at its size), for tests and benchmarks.
void generate_lora(const std::string& preset, int64_t rank, uint64_t seed, const std::filesystem::path& out);

}  // namespace inpaint
