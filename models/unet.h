// UNet2DConditionModel (diffusers) as SD 1.x / 2.x and SDXL use it: CrossAttnDownBlock2D /
// DownBlock2D, UNetMidBlock2DCrossAttn, UpBlock2D / CrossAttnUpBlock2D, several
// transformer blocks per attention and SDXL's added conditions; 9-channel inpainting and
// plain 4-channel inputs. Parameter names follow diffusers' state dict.
#pragma once
#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include "models/layers.h"
#include "models/network_configs.h"

namespace inpaint {

struct ResnetBlock {
  GroupNorm norm1, norm2;
  Conv2d conv1, conv2, conv_shortcut;
  Linear time_emb_proj;
  bool has_shortcut = false, has_time = false;
  ResnetBlock() = default;
  // temb_channels 0: no time embedding (the VAE's resnets).
  ResnetBlock(ParamLoader& p, const std::string& name, int64_t in, int64_t out,
              int64_t temb_channels, int64_t groups, double eps);
  at::Tensor operator()(const Compute& compute, const at::Tensor& x, const at::Tensor& temb = {}) const;
};

// BasicTransformerBlock: self-attention, cross-attention, GEGLU feed-forward.
struct TransformerBlock {
  LayerNorm norm1, norm2, norm3;
  Linear to_q1, to_k1, to_v1, to_out1, to_q2, to_k2, to_v2, to_out2, ff_proj, ff_out;
  TransformerBlock() = default;
  TransformerBlock(ParamLoader& p, const std::string& name, int64_t channels, int64_t context_dim);
  // t [B, tokens, C], this block's own: the sums go into it in place (or replace it).
  void operator()(const Compute& compute, at::Tensor& t, const at::Tensor& context, int64_t heads) const;

 private:
  void feed_forward(const Compute& compute, at::Tensor& t) const;
};

// Transformer2DModel: BasicTransformerBlocks between a projection in and out.
struct SpatialTransformer {
  GroupNorm norm;
  Linear proj_in_linear, proj_out_linear;
  Conv2d proj_in_conv, proj_out_conv;
  std::vector<TransformerBlock> blocks;
  int64_t heads = 1;
  bool linear = false;
  SpatialTransformer() = default;
  SpatialTransformer(ParamLoader& p, const std::string& name, int64_t channels, int64_t heads,
                     int64_t context_dim, int64_t groups, bool use_linear_projection, int64_t depth = 1);
  at::Tensor operator()(const Compute& compute, const at::Tensor& x, const at::Tensor& context) const;
};

// TimestepEmbedding: linear_1, SiLU, linear_2 (the time embedding, SDXL's add_embedding).
struct TimestepEmbedding {
  Linear linear_1, linear_2;
  TimestepEmbedding() = default;
  TimestepEmbedding(ParamLoader& p, const std::string& name, int64_t in, int64_t out);
  at::Tensor operator()(const Compute& c, const at::Tensor& x) const { return linear_2(c, at::silu(linear_1(c, x))); }
};

// SDXL's added conditions: the pooled text embedding [B, dim] and the size conditions
// [B, 6] = (original h, w, crop top, left, target h, w) in pixels.
struct AddedConditions {
  at::Tensor text_embeds, time_ids;
};

class UNet {
 public:
  UNet(const UNetConfig& config, ParamLoader& p);
  // sample [B, in, h, w], timestep: one value for the batch, context [B, 77, dim];
  // `added` for UNets with text_time conditions (SDXL), which need them.
  at::Tensor forward(const Compute& compute, const at::Tensor& sample, double timestep, const at::Tensor& context,
                     const AddedConditions& added = {}) const;
  const UNetConfig& config() const { return config_; }

 private:
  struct Block {
    std::vector<ResnetBlock> resnets;
    std::vector<SpatialTransformer> attentions;  // empty for plain blocks
    Conv2d sampler;                              // down- or up-sampling conv
    bool has_sampler = false;
  };
  at::Tensor time_embedding(const Compute& compute, double timestep, int64_t batch, const AddedConditions& added) const;

  UNetConfig config_;
  TimestepEmbedding time_embed_, add_embed_;  // add_embed_: text_time only
  Conv2d conv_in_, conv_out_;
  GroupNorm conv_norm_out_;
  std::vector<Block> down_, up_;
  Block mid_;
};

}  // namespace inpaint
