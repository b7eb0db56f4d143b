#include "models/unet.h"

#include <cmath>

#include "models/config.h"
#include "models/kernels/geglu.h"
#include "models/op_profile.h"

namespace inpaint {

ResnetBlock::ResnetBlock(ParamLoader& p, const std::string& n, int64_t in, int64_t out,
                         int64_t temb, int64_t groups, double eps)
    : norm1(p, n + ".norm1", groups, in, eps),
      norm2(p, n + ".norm2", groups, out, eps),
      conv1(p, n + ".conv1", in, out, 3, 1, 1),
      conv2(p, n + ".conv2", out, out, 3, 1, 1) {
  if (temb > 0) {
    time_emb_proj = Linear(p, n + ".time_emb_proj", temb, out);
    has_time = true;
  }
  if (in != out) {
    conv_shortcut = Conv2d(p, n + ".conv_shortcut", in, out, 1);
    has_shortcut = true;
  }
}

at::Tensor ResnetBlock::operator()(const Compute& compute, const at::Tensor& x, const at::Tensor& temb) const {
  // In place where possible: at decoder resolutions each full-size tensor is 100+ MB.
  at::Tensor h = conv1(compute, x, {&norm1, ConvInput::kSilu});
  if (has_time) h.add_(time_emb_proj(compute, at::silu(temb)).unsqueeze(-1).unsqueeze(-1));
  h = conv2(compute, h, {&norm2, ConvInput::kSilu});
  return add_in_place(h, has_shortcut ? conv_shortcut(compute, x) : x);
}

SpatialTransformer::SpatialTransformer(ParamLoader& p, const std::string& n, int64_t c, int64_t heads_,
                                       int64_t ctx, int64_t groups, bool lin, int64_t depth)
    : norm(p, n + ".norm", groups, c, 1e-6), heads(heads_), linear(lin) {
  if (linear)
    proj_in_linear = Linear(p, n + ".proj_in", c, c);
  else
    proj_in_conv = Conv2d(p, n + ".proj_in", c, c, 1);
  for (int64_t i = 0; i < depth; ++i) blocks.emplace_back(p, n + ".transformer_blocks." + std::to_string(i), c, ctx);
  if (linear)
    proj_out_linear = Linear(p, n + ".proj_out", c, c);
  else
    proj_out_conv = Conv2d(p, n + ".proj_out", c, c, 1);
}

TransformerBlock::TransformerBlock(ParamLoader& p, const std::string& b, int64_t c, int64_t ctx)
    : norm1(p, b + ".norm1", c, 1e-5),
      norm2(p, b + ".norm2", c, 1e-5),
      norm3(p, b + ".norm3", c, 1e-5),
      to_q1(p, b + ".attn1.to_q", c, c, false),
      to_k1(p, b + ".attn1.to_k", c, c, false),
      to_v1(p, b + ".attn1.to_v", c, c, false),
      to_out1(p, b + ".attn1.to_out.0", c, c),
      to_q2(p, b + ".attn2.to_q", c, c, false),
      to_k2(p, b + ".attn2.to_k", ctx, c, false),
      to_v2(p, b + ".attn2.to_v", ctx, c, false),
      to_out2(p, b + ".attn2.to_out.0", c, c),
      ff_proj(p, b + ".ff.net.0.proj", c, c * 8),  // GEGLU: value and gate
      ff_out(p, b + ".ff.net.2", c * 4, c) {}

namespace {

// GEGLU: the projection's first half times gelu of its second. libtorch's gelu of the
// half as it is (a strided view) is 3-4x slower than of a contiguous copy, in place:
// 24 against 9 ms at 2 x 4096 x 1280, copy and product included.
at::Tensor geglu(const at::Tensor& projected) {
  const auto parts = projected.chunk(2, -1);
  at::Tensor gate = parts[1].contiguous();
  at::gelu_(gate);
  return gate.mul_(parts[0]);
}

}  // namespace

void TransformerBlock::operator()(const Compute& cp, at::Tensor& t, const at::Tensor& context, int64_t heads) const {
  // Queries, keys and values in the type attention rounds them to (bf16 with native bf16).
  const at::ScalarType qkv = attention_input_type(cp, t.size(2) / heads);
  at::Tensor n = norm1.for_products(cp, t);
  to_out1.add_to(cp, attention(cp, to_q1(cp, n, qkv), to_k1(cp, n, qkv), to_v1(cp, n, qkv), heads), t);
  n = norm2.for_products(cp, t);
  to_out2.add_to(cp, attention(cp, to_q2(cp, n, qkv), to_k2(cp, context, qkv), to_v2(cp, context, qkv), heads), t);
  feed_forward(cp, t);
}

void TransformerBlock::feed_forward(const Compute& cp, at::Tensor& t) const {
  const int64_t rows = t.size(0) * t.size(1);
  // GEGLU, token-wise: chunked, its hidden layer is 2 x 4096 x 10240 floats at 512^2.
  const int64_t hidden = ff_proj.weight.size(0);
  // Leanest: weights widened again for every chunk. bf16 products read the packed bf16
  // weight as it is (a third of the widened f32 one): packed once for all chunks then.
  if (cp.policy.ff_widen_per_chunk && cp.precision != Precision::bf16) {
    t = t + over_token_chunks(cp, norm3.for_products(cp, t), hidden, [&](const at::Tensor& n3) {
          return ff_out(cp, geglu(ff_proj(cp, n3)));
        });
  } else {  // packed, or widened once for all chunks (78 MB at the widest level)
    const StreamedPacking once1(cp, ff_proj.packed), once2(cp, ff_out.packed);  // packed once for all chunks
    const bool lora1 = lora_on_input(cp, ff_proj.lora, ff_proj.weight, rows);
    const bool lora2 = lora_on_input(cp, ff_out.lora, ff_out.weight, rows);
    const bool packed1 = ff_proj.packable(cp, lora1), packed2 = ff_out.packable(cp, lora2);
    const at::Tensor w1 = packed1 ? at::Tensor() : ff_proj.wide_weight(cp, !lora1), b1 = widen(cp, ff_proj.bias);
    const at::Tensor w2 = packed2 ? at::Tensor() : ff_out.wide_weight(cp, !lora2), b2 = widen(cp, ff_out.bias);
    // bf16 products: GEGLU's product rounded to bf16 at once (a LoRA on the input takes
    // f32), from the projection in bf16 where it too goes without a LoRA on its input.
    const bool bf16_product = cp.precision == Precision::bf16 && packed2 && !lora2 && geglu_bf16_available();
    const at::ScalarType h1_type = bf16_product && packed1 && !lora1 ? at::kBFloat16 : at::kFloat;
    // In bf16, 512 tokens at a time: the projection's output (2.6 MB at 64x64), GEGLU's and
    // the second projection's reads of it stay in the cache (linear layers 0.35 -> 0.32 s
    // per step here); f32 chunks only to bound memory.
    constexpr int64_t kCachedTokens = 512;
    const int64_t width = bf16_product ? std::max<int64_t>(hidden, cp.policy.work_floats / kCachedTokens) : hidden;
    add_over_token_chunks(cp, norm3.for_products(cp, t), width, [&](const at::Tensor& n3) {
          // n3 in f32 where a product takes no bf16 (as Linear::operator()).
          const at::Tensor wide = !packed1 || lora1 ? n3.to(at::kFloat) : n3;
          at::Tensor h1;
          {
            OpTimer timer(OpClass::linear, 2.0 * double(n3.numel()) * double(ff_proj.weight.size(0)));
            h1 = packed1 ? ff_proj.packed_product(cp, n3, h1_type) : project(wide, w1, b1);
          }
          if (lora1) ff_proj.add_lora(wide, h1);
          const at::Tensor g = bf16_product ? geglu_bf16(h1) : geglu(h1);
          at::Tensor out;
          {
            OpTimer timer(OpClass::linear, 2.0 * double(g.numel()) * double(ff_out.weight.size(0)));
            out = packed2 ? ff_out.packed_product(cp, g) : project(g, w2, b2);
          }
          if (lora2) ff_out.add_lora(g, out);
          return out;
        }, t);
  }
}

at::Tensor SpatialTransformer::operator()(const Compute& compute, const at::Tensor& x, const at::Tensor& context) const {
  const Compute& cp = compute;
  const int64_t b = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
  // The convolution normalises its input itself (in one pass with bf16 products).
  at::Tensor t = linear ? norm(cp, x) : proj_in_conv(cp, x, {&norm});
  t = t.permute({0, 2, 3, 1}).reshape({b, h * w, c});
  if (linear) t = proj_in_linear(cp, t);
  // The residual stream t is this transformer's own (proj_in's output).
  for (const TransformerBlock& block : blocks) block(cp, t, context, heads);

  if (linear) t = proj_out_linear(cp, t);
  t = t.reshape({b, h, w, c}).permute({0, 3, 1, 2}).contiguous(x.suggest_memory_format());  // a view if NHWC
  if (!linear) t = proj_out_conv(cp, t);
  return t + x;
}

TimestepEmbedding::TimestepEmbedding(ParamLoader& p, const std::string& name, int64_t in, int64_t out)
    : linear_1(p, name + ".linear_1", in, out), linear_2(p, name + ".linear_2", out, out) {}

UNet::UNet(const UNetConfig& c, ParamLoader& p) : config_(c) {
  const auto& ch = c.block_out_channels;
  const int64_t levels = static_cast<int64_t>(ch.size());
  const int64_t temb = ch[0] * 4, g = c.norm_num_groups, ctx = c.cross_attention_dim;
  const double eps = c.norm_eps;
  const bool lin = c.use_linear_projection;
  time_embed_ = TimestepEmbedding(p, "time_embedding", ch[0], temb);
  if (c.text_time) add_embed_ = TimestepEmbedding(p, "add_embedding", c.projection_class_embeddings_input_dim, temb);
  conv_in_ = Conv2d(p, "conv_in", c.in_channels, ch[0], 3, 1, 1);

  int64_t out = ch[0];
  for (int64_t i = 0; i < levels; ++i) {
    const std::string n = "down_blocks." + std::to_string(i);
    const int64_t in = out;
    out = ch[i];
    Block block;
    for (int64_t j = 0; j < c.layers_per_block; ++j) {
      const std::string s = std::to_string(j);
      block.resnets.emplace_back(p, n + ".resnets." + s, j == 0 ? in : out, out, temb, g, eps);
      if (c.down_block_types[i] == "CrossAttnDownBlock2D")
        block.attentions.emplace_back(p, n + ".attentions." + s, out, c.heads[i], ctx, g, lin, c.transformer_layers[i]);
    }
    if (i < levels - 1) {
      block.sampler = Conv2d(p, n + ".downsamplers.0.conv", out, out, 3, 2, 1);
      block.has_sampler = true;
    }
    down_.push_back(std::move(block));
  }

  const int64_t top = ch.back();
  mid_.resnets.emplace_back(p, "mid_block.resnets.0", top, top, temb, g, eps);
  mid_.attentions.emplace_back(p, "mid_block.attentions.0", top, c.heads.back(), ctx, g, lin, c.transformer_layers.back());
  mid_.resnets.emplace_back(p, "mid_block.resnets.1", top, top, temb, g, eps);

  out = top;
  for (int64_t i = 0; i < levels; ++i) {
    const std::string n = "up_blocks." + std::to_string(i);
    const int64_t prev = out;
    out = ch[levels - 1 - i];
    const int64_t skip_in = ch[std::max<int64_t>(levels - 2 - i, 0)];
    const int64_t heads = c.heads[levels - 1 - i], depth = c.transformer_layers[levels - 1 - i];
    Block block;
    for (int64_t j = 0; j <= c.layers_per_block; ++j) {
      const std::string s = std::to_string(j);
      const int64_t res_in = (j == 0 ? prev : out) + (j == c.layers_per_block ? skip_in : out);
      block.resnets.emplace_back(p, n + ".resnets." + s, res_in, out, temb, g, eps);
      if (c.up_block_types[i] == "CrossAttnUpBlock2D")
        block.attentions.emplace_back(p, n + ".attentions." + s, out, heads, ctx, g, lin, depth);
    }
    if (i < levels - 1) {
      block.sampler = Conv2d(p, n + ".upsamplers.0.conv", out, out, 3, 1, 1);
      block.has_sampler = true;
    }
    up_.push_back(std::move(block));
  }
  conv_norm_out_ = GroupNorm(p, "conv_norm_out", g, ch[0], eps);
  conv_out_ = Conv2d(p, "conv_out", ch[0], c.out_channels, 3, 1, 1);
}

namespace {

// diffusers' get_timestep_embedding: `values` [N] -> [N, dim], float32 throughout.
at::Tensor sinusoidal(const at::Tensor& values, int64_t dim, bool flip_sin_to_cos, double freq_shift) {
  const int64_t half = dim / 2;
  at::Tensor exponent = at::arange(0, half, at::kFloat) * static_cast<float>(-std::log(10000.0));
  exponent = exponent / static_cast<float>(half - freq_shift);
  const at::Tensor arg = values.to(at::kFloat).unsqueeze(1) * at::exp(exponent).unsqueeze(0);
  at::Tensor emb = flip_sin_to_cos ? at::cat({at::cos(arg), at::sin(arg)}, -1) : at::cat({at::sin(arg), at::cos(arg)}, -1);
  if (dim % 2 == 1) emb = at::constant_pad_nd(emb, {0, 1});
  return emb;
}

}  // namespace

at::Tensor UNet::time_embedding(const Compute& compute, double timestep, int64_t batch, const AddedConditions& added) const {
  const UNetConfig& c = config_;
  const at::Tensor t = at::full({batch}, static_cast<float>(timestep));
  const at::Tensor emb = time_embed_(compute, sinusoidal(t, c.block_out_channels[0], c.flip_sin_to_cos, c.freq_shift));
  if (!c.text_time) return emb;
  // SDXL: each size condition embedded as a timestep, after the pooled text embedding.
  const at::Tensor& text = added.text_embeds;
  const at::Tensor& ids = added.time_ids;
  if (!text.defined() || !ids.defined())
    throw Error("UNet: this model (SDXL) needs the pooled text embedding and the size conditions");
  const int64_t width = c.projection_class_embeddings_input_dim;
  if (text.dim() != 2 || ids.dim() != 2 || text.size(0) != batch || ids.size(0) != batch ||
      text.size(1) + ids.size(1) * c.addition_time_embed_dim != width)
    throw Error("UNet: added conditions of shapes " + std::to_string(text.size(-1)) + " + " +
                std::to_string(ids.size(-1)) + " x " + std::to_string(c.addition_time_embed_dim) +
                " do not make projection_class_embeddings_input_dim " + std::to_string(width));
  const at::Tensor sizes = sinusoidal(ids.flatten(), c.addition_time_embed_dim, c.flip_sin_to_cos, c.freq_shift);
  const at::Tensor conditions = at::cat({text.to(at::kFloat), sizes.reshape({batch, -1})}, -1);
  return emb + add_embed_(compute, conditions);
}

at::Tensor UNet::forward(const Compute& compute, const at::Tensor& sample, double timestep,
                         const at::Tensor& context, const AddedConditions& added) const {
  const Compute& cp = compute;
  const at::Tensor temb = time_embedding(cp, timestep, sample.size(0), added);
  at::Tensor h = conv_in_(cp, as_activations(cp, sample));
  std::vector<at::Tensor> skips{h};
  for (const Block& block : down_) {
    for (size_t j = 0; j < block.resnets.size(); ++j) {
      h = block.resnets[j](cp, h, temb);
      if (!block.attentions.empty()) h = block.attentions[j](cp, h, context);
      skips.push_back(h);
    }
    if (block.has_sampler) {
      h = block.sampler(cp, h);
      skips.push_back(h);
    }
  }
  h = mid_.resnets[0](cp, h, temb);
  h = mid_.attentions[0](cp, h, context);
  h = mid_.resnets[1](cp, h, temb);
  for (const Block& block : up_) {
    for (size_t j = 0; j < block.resnets.size(); ++j) {
      h = block.resnets[j](cp, at::cat({h, skips.back()}, 1), temb);
      skips.pop_back();
      if (!block.attentions.empty()) h = block.attentions[j](cp, h, context);
    }
    if (block.has_sampler) {
      // Upsample to the size of the next skip (odd latent sizes), as diffusers does.
      const at::Tensor& next = skips.back();
      h = at::upsample_nearest2d(h, {next.size(2), next.size(3)});
      h = block.sampler(cp, h);
    }
  }
  return conv_out_(cp, h, {&conv_norm_out_, ConvInput::kSilu}).contiguous();
}

}  // namespace inpaint
