// AutoencoderKL (diffusers): encoder -> quant_conv -> (mean, std); post_quant_conv ->
// decoder. Images are NCHW in [-1, 1]; latents are unscaled (multiply by scaling_factor
// for the UNet, as the pipelines do).
#pragma once
#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include "models/unet.h"

namespace inpaint {

// The single-head self-attention of the VAE's mid block.
struct VaeAttention {
  GroupNorm group_norm;
  Linear to_q, to_k, to_v, to_out;
  VaeAttention() = default;
  VaeAttention(ParamLoader& p, const std::string& name, int64_t channels, int64_t groups);
  at::Tensor operator()(const Compute& compute, const at::Tensor& x) const;
};

struct VaeMidBlock {
  ResnetBlock resnet0, resnet1;
  VaeAttention attention;
  VaeMidBlock() = default;
  VaeMidBlock(ParamLoader& p, const std::string& name, int64_t channels, int64_t groups);
  at::Tensor operator()(const Compute& compute, const at::Tensor& x) const;
};

struct LatentDistribution {
  at::Tensor mean, std;
};

class AutoencoderKL {
 public:
  AutoencoderKL(const VaeConfig& config, ParamLoader& p);
  LatentDistribution encode(const Compute& compute, const at::Tensor& image) const;
  at::Tensor decode(const Compute& compute, const at::Tensor& latent) const;
  const VaeConfig& config() const { return config_; }

 private:
  struct Level {
    std::vector<ResnetBlock> resnets;
    Conv2d sampler;
    bool has_sampler = false;
  };
  VaeConfig config_;
  Conv2d enc_conv_in_, enc_conv_out_, quant_conv_, post_quant_conv_, dec_conv_in_, dec_conv_out_;
  GroupNorm enc_norm_out_, dec_norm_out_;
  std::vector<Level> down_, up_;
  VaeMidBlock enc_mid_, dec_mid_;
};

}  // namespace inpaint
