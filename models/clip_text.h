// CLIPTextModel as the SD pipelines use it (last_hidden_state after final_layer_norm),
// and CLIPTextModelWithProjection as SDXL's: the penultimate layer's hidden states and
// the projected pooled output. Parameter names follow transformers' state dict
// (text_model.encoder.layers.N..., text_projection).
#pragma once
#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include "models/layers.h"
#include "models/network_configs.h"

namespace inpaint {

struct ClipTextOutput {
  at::Tensor last_hidden_state;         // [B, L, hidden], after final_layer_norm
  at::Tensor penultimate_hidden_state;  // [B, L, hidden]: hidden_states[-2], not normed (SDXL's)
  // [B, hidden]: last_hidden_state at the end token (the highest id); with a projection,
  // text_projection of it [B, projection_dim] (SDXL's text_embeds).
  at::Tensor pooled;
};

class ClipTextModel {
 public:
  ClipTextModel(const ClipTextConfig& config, ParamLoader& p);
  // input_ids [B, L] int64 -> [B, L, hidden]
  at::Tensor forward(const Compute& compute, const at::Tensor& input_ids) const;
  ClipTextOutput encode(const Compute& compute, const at::Tensor& input_ids) const;
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
  Linear text_projection_;  // CLIPTextModelWithProjection only
};

}  // namespace inpaint
