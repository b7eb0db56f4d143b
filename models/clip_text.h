// CLIPTextModel as the SD pipelines use it: last_hidden_state after final_layer_norm.
// Parameter names follow transformers' state dict (text_model.encoder.layers.N...).
#pragma once
#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include "models/layers.h"

namespace inpaint {

struct ClipTextConfig {
  int64_t vocab_size, hidden_size, intermediate_size, num_heads, num_layers, max_positions;
  std::string hidden_act;  // quick_gelu (SD 1.x) or gelu (SD 2.x)
  double layer_norm_eps;
  static ClipTextConfig from_json(const nlohmann::json& j, const std::string& label);
};

class ClipTextModel {
 public:
  ClipTextModel(const ClipTextConfig& config, ParamLoader& p);
  // input_ids [B, L] int64 -> [B, L, hidden]
  at::Tensor forward(const at::Tensor& input_ids) const;
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
