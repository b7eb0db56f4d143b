// CLIPTextModel as the SD pipelines use it: last_hidden_state after final_layer_norm.
// Parameter names follow transformers' state dict (text_model.encoder.layers.N...).
#pragma once
#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include "models/layers.h"
#include "models/network_configs.h"

namespace inpaint {

class ClipTextModel {
 public:
  ClipTextModel(const ClipTextConfig& config, ParamLoader& p);
  // input_ids [B, L] int64 -> [B, L, hidden]
  at::Tensor forward(const Compute& compute, const at::Tensor& input_ids) const;
  const ClipTextConfig& config() const { return config_; }

 private:
  struct Layer {
    LayerNorm layer_norm1, layer_norm2;
    Linear q_proj, k_proj, v_proj, out_proj, fc1, fc2;
  };
  ClipTextConfig config_;
  at::Tensor token_embedding, position_embedding;
  std::vector<Layer> layers_;
  LayerNorm final_layer_norm_;
};

}  // namespace inpaint
