#include "models/clip_text.h"

#include <limits>
#include "models/config.h"

namespace inpaint {

ClipTextModel::ClipTextModel(const ClipTextConfig& c, ParamLoader& p) : config_(c) {
  const int64_t d = c.hidden_size;
  token_embedding = p.take("text_model.embeddings.token_embedding.weight", {c.vocab_size, d});
  position_embedding =
      p.take("text_model.embeddings.position_embedding.weight", {c.max_positions, d});
  for (int64_t i = 0; i < c.num_layers; ++i) {
    const std::string n = "text_model.encoder.layers." + std::to_string(i);
    const double eps = c.layer_norm_eps;
    layers_.push_back(Layer{LayerNorm(p, n + ".layer_norm1", d, eps),
                            LayerNorm(p, n + ".layer_norm2", d, eps),
                            Linear(p, n + ".self_attn.q_proj", d, d),
                            Linear(p, n + ".self_attn.k_proj", d, d),
                            Linear(p, n + ".self_attn.v_proj", d, d),
                            Linear(p, n + ".self_attn.out_proj", d, d),
                            Linear(p, n + ".mlp.fc1", d, c.intermediate_size),
                            Linear(p, n + ".mlp.fc2", c.intermediate_size, d)});
  }
  final_layer_norm_ = LayerNorm(p, "text_model.final_layer_norm", d, c.layer_norm_eps);
  if (c.with_projection) text_projection_ = Linear(p, "text_projection", d, c.projection_dim, false);
}

at::Tensor ClipTextModel::forward(const Compute& cp, const at::Tensor& input_ids) const {
  return encode(cp, input_ids).last_hidden_state;
}

ClipTextOutput ClipTextModel::encode(const Compute& cp, const at::Tensor& input_ids) const {
  const int64_t len = input_ids.size(1);
  if (len > config_.max_positions)
    throw Error("text encoder: " + std::to_string(len) + " tokens, at most " +
                std::to_string(config_.max_positions));
  // Rows first, then widen: the whole table in f32 would be 150 MB.
  at::Tensor x = widen(cp, at::embedding(token_embedding, input_ids)) +
                 widen(cp, position_embedding).narrow(0, 0, len);
  // Causal mask: a token sees itself and those before it.
  at::Tensor mask = at::full({len, len}, -std::numeric_limits<float>::infinity()).triu_(1);
  ClipTextOutput out;
  for (const Layer& l : layers_) {
    if (&l == &layers_.back()) out.penultimate_hidden_state = x;
    at::Tensor h = l.layer_norm1(cp, x);
    h = attention(cp, l.q_proj(cp, h), l.k_proj(cp, h), l.v_proj(cp, h), config_.num_heads, mask);
    x = x + l.out_proj(cp, h);
    h = l.fc1(cp, l.layer_norm2(cp, x));
    h = config_.hidden_act == "gelu" ? at::gelu(h) : h * at::sigmoid(h * 1.702);
    x = x + l.fc2(cp, h);
  }
  out.last_hidden_state = final_layer_norm_(cp, x);
  // The end token has the highest id in CLIP's vocabulary (transformers' argmax).
  const at::Tensor end = input_ids.argmax(-1);
  out.pooled = out.last_hidden_state.index({at::arange(input_ids.size(0)), end});
  if (config_.with_projection) out.pooled = text_projection_(cp, out.pooled);
  return out;
}

}  // namespace inpaint
