#include "models/vae.h"

#include <cmath>
#include "engine/runtime.h"
#include "models/config.h"

namespace inpaint {
namespace {
constexpr double kEps = 1e-6;  // every norm of the SD VAE
}

VaeAttention::VaeAttention(ParamLoader& p, const std::string& n, int64_t c, int64_t groups)
    : group_norm(p, n + ".group_norm", groups, c, kEps),
      to_q(p, n + ".to_q", c, c),
      to_k(p, n + ".to_k", c, c),
      to_v(p, n + ".to_v", c, c),
      to_out(p, n + ".to_out.0", c, c) {}

at::Tensor VaeAttention::operator()(const Compute& cp, const at::Tensor& x) const {
  const int64_t b = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
  const at::Tensor xf = x.to(at::kFloat);  // f16 storage reaches here only in lean policies
  at::Tensor t = group_norm(cp, xf).reshape({b, c, h * w}).transpose(1, 2);
  t = to_out(cp, inpaint::attention(cp, to_q(cp, t), to_k(cp, t), to_v(cp, t), 1));
  return t.transpose(1, 2).reshape({b, c, h, w}) + xf;
}

VaeMidBlock::VaeMidBlock(ParamLoader& p, const std::string& n, int64_t c, int64_t groups)
    : resnet0(p, n + ".resnets.0", c, c, 0, groups, kEps),
      resnet1(p, n + ".resnets.1", c, c, 0, groups, kEps),
      attention(p, n + ".attentions.0", c, groups) {}

at::Tensor VaeMidBlock::operator()(const Compute& cp, const at::Tensor& x) const {
  return resnet1(cp, attention(cp, resnet0(cp, x)));
}

AutoencoderKL::AutoencoderKL(const VaeConfig& c, ParamLoader& p) : config_(c) {
  const auto& ch = c.block_out_channels;
  const int64_t levels = static_cast<int64_t>(ch.size()), g = c.norm_num_groups;
  enc_conv_in_ = Conv2d(p, "encoder.conv_in", c.in_channels, ch[0], 3, 1, 1);
  int64_t out = ch[0];
  for (int64_t i = 0; i < levels; ++i) {
    const std::string n = "encoder.down_blocks." + std::to_string(i);
    const int64_t in = out;
    out = ch[i];
    Level level;
    for (int64_t j = 0; j < c.layers_per_block; ++j)
      level.resnets.emplace_back(p, n + ".resnets." + std::to_string(j), j == 0 ? in : out, out,
                                 0, g, kEps);
    if (i < levels - 1) {
      level.sampler = Conv2d(p, n + ".downsamplers.0.conv", out, out, 3, 2, 0);
      level.has_sampler = true;
    }
    down_.push_back(std::move(level));
  }
  enc_mid_ = VaeMidBlock(p, "encoder.mid_block", ch.back(), g);
  enc_norm_out_ = GroupNorm(p, "encoder.conv_norm_out", g, ch.back(), kEps);
  enc_conv_out_ = Conv2d(p, "encoder.conv_out", ch.back(), 2 * c.latent_channels, 3, 1, 1);
  quant_conv_ = Conv2d(p, "quant_conv", 2 * c.latent_channels, 2 * c.latent_channels, 1);
  post_quant_conv_ = Conv2d(p, "post_quant_conv", c.latent_channels, c.latent_channels, 1);

  dec_conv_in_ = Conv2d(p, "decoder.conv_in", c.latent_channels, ch.back(), 3, 1, 1);
  dec_mid_ = VaeMidBlock(p, "decoder.mid_block", ch.back(), g);
  out = ch.back();
  for (int64_t i = 0; i < levels; ++i) {
    const std::string n = "decoder.up_blocks." + std::to_string(i);
    const int64_t prev = out;
    out = ch[levels - 1 - i];
    Level level;
    for (int64_t j = 0; j <= c.layers_per_block; ++j)
      level.resnets.emplace_back(p, n + ".resnets." + std::to_string(j), j == 0 ? prev : out,
                                 out, 0, g, kEps);
    if (i < levels - 1) {
      level.sampler = Conv2d(p, n + ".upsamplers.0.conv", out, out, 3, 1, 1);
      level.has_sampler = true;
    }
    up_.push_back(std::move(level));
  }
  dec_norm_out_ = GroupNorm(p, "decoder.conv_norm_out", g, ch[0], kEps);
  dec_conv_out_ = Conv2d(p, "decoder.conv_out", ch[0], c.out_channels, 3, 1, 1);
}

LatentDistribution AutoencoderKL::encode(const Compute& cp, const at::Tensor& image) const {
  at::Tensor h = enc_conv_in_(cp, as_activations(cp, image));
  for (const Level& level : down_) {
    for (const auto& r : level.resnets) h = r(cp, h);
    // diffusers pads right and bottom by one, then a stride-2 conv without padding.
    if (level.has_sampler) h = level.sampler(cp, h, {.pad_end = 1});
    if (cp.policy.release_between_levels) release_free_memory();
  }
  h = enc_conv_out_(cp, enc_mid_(cp, h), {&enc_norm_out_, ConvInput::kSilu});
  auto moments = quant_conv_(cp, h).to(at::kFloat).contiguous().chunk(2, 1);
  at::Tensor logvar = at::clamp(moments[1], -30.0, 20.0);
  return {moments[0], at::exp(logvar * 0.5)};
}

at::Tensor AutoencoderKL::decode(const Compute& cp, const at::Tensor& latent) const {
  at::Tensor h = dec_mid_(cp, dec_conv_in_(cp, post_quant_conv_(cp, as_activations(cp, latent))));
  for (const Level& level : up_) {
    for (const auto& r : level.resnets) h = r(cp, h);
    if (level.has_sampler) h = level.sampler(cp, h, {.upsample2x = true});
    // Each level's tensors are larger than the last's: under the lean policy the freed
    // ones are handed back rather than kept for what fits in them (page faults instead).
    if (cp.policy.release_between_levels) release_free_memory();
  }
  return dec_conv_out_(cp, h, {&dec_norm_out_, ConvInput::kSilu}).to(at::kFloat).contiguous();
}

}  // namespace inpaint
