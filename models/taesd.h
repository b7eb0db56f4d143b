// TAESD, the tiny autoencoder (madebyollin/taesd): images in [0, 1], latents already in
// the UNet's space (no scaling factor). Also reads TAEF2 (32 latent channels, "pool"
// branches in some blocks). Names follow the upstream nn.Sequential state dicts.
#pragma once
#include <ATen/ATen.h>

#include "models/layers.h"

namespace inpaint {

struct TaesdConfig {
  int64_t latent_channels = 4;
  std::vector<bool> encoder_pool, decoder_pool;  // per Sequential index: block has a pool branch
  // Reads the latent width and the pool branches off the stored tensors.
  static TaesdConfig detect(const TensorMap& encoder, const TensorMap& decoder);
};

struct TaesdBlock {
  Conv2d conv0, conv2, conv4, pool0, pool3;
  GroupNorm pool1;
  bool has_pool = false;
  TaesdBlock() = default;
  TaesdBlock(ParamLoader& p, const std::string& name, bool pool);
  at::Tensor operator()(const Compute& compute, const at::Tensor& x) const;
};

class TaesdEncoder {
 public:
  TaesdEncoder(const TaesdConfig& config, ParamLoader& p);
  // [B,3,H,W] in [0,1] -> [B,C,H/8,W/8]
  at::Tensor forward(const Compute& compute, const at::Tensor& image) const;

 private:
  std::vector<std::pair<Conv2d, std::vector<TaesdBlock>>> stages_;  // conv, then blocks
  Conv2d conv_out_;
};

class TaesdDecoder {
 public:
  TaesdDecoder(const TaesdConfig& config, ParamLoader& p);
  at::Tensor forward(const Compute& compute, const at::Tensor& latent) const;  // -> [B,3,8h,8w], unclamped

 private:
  Conv2d conv_in_, conv_out_;
  std::vector<std::vector<TaesdBlock>> stages_;  // blocks, then upsample + conv (but the last)
  std::vector<Conv2d> up_convs_;
};

}  // namespace inpaint
