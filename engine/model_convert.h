// `inpaint convert`: any model the loader opens (folder or single file) rewritten as a
// diffusers folder, optionally with f16 floats and/or int8 weights: linear and
// convolution weights quantised symmetrically per output channel, w = q * scale[out],
// q in [-127, 127], the scales stored as F32 `<weight>_scale` beside them.
#pragma once
#include <filesystem>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "engine/model_source.h"

namespace inpaint {

struct ConvertOptions {
  std::filesystem::path out;
  bool half = false;                    // other float tensors as f16
  std::set<std::string> int8;           // components whose matrices become int8
  bool force = false;                   // replace an existing output (one inpaint wrote)
  std::vector<std::filesystem::path> inputs;  // other files read (LoRAs): never overwritten
};

void convert_model(const ModelSource& model, const ConvertOptions& options,
                   const std::function<void(const std::string&)>& progress = {});

// The int8 values and per-output-channel scales of a float weight [out, ...].
std::pair<at::Tensor, at::Tensor> quantize_int8(const at::Tensor& weight);

}  // namespace inpaint
