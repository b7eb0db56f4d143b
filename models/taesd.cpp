#include "models/taesd.h"

#include <algorithm>

namespace inpaint {
namespace {
constexpr int64_t kWidth = 64;
// Sequential indices of the encoder's blocks and convs: conv 0, block 1, then three
// times (stride-2 conv, three blocks), then the latent conv 14.
const int64_t kEncoderStageConvs[] = {2, 6, 10};
// Decoder: clamp 0, conv 1, ReLU 2, blocks 3-5, (upsample, conv, blocks) x 2, upsample 16,
// conv 17, block 18, conv 19.
const int64_t kDecoderUpConvs[] = {7, 12, 17};

bool pool_at(const std::vector<bool>& pools, int64_t index) {
  return index < static_cast<int64_t>(pools.size()) && pools[index];
}

// The layers at full resolution run by bands of this many full-resolution rows: at
// 512x512 their activations are 64 MB each in one piece, memory the process touches for
// the first time before the first step (page faults: 0.8-2.8 s per GB on the VM measured).
constexpr int64_t kBandRows = 128;

// f applied to x by bands of `band` output rows, as it would be to the whole: f makes
// up/down times its input's rows (2/1 or 1/2), and an output row depends on input rows
// at most `reach` from its own. Each band's input has `reach` rows more on each side,
// whose outputs (made on f's zero padding at the band's edges) are left out. Only for
// layers without image-wide statistics (no GroupNorm).
template <class F>
at::Tensor by_row_bands(const at::Tensor& x, int64_t up, int64_t down, int64_t reach, int64_t band, const F& f) {
  const int64_t in_rows = x.size(2), out_rows = in_rows * up / down;
  // Whole where bands would not help, or where the rows do not divide by `down`: a
  // stride-2 conv makes (R + 1) / 2 rows of an odd R, which the band arithmetic below does
  // not follow (the pipeline's images are multiples of 8; other callers may not be).
  if (out_rows <= band || in_rows % down != 0) return f(x);
  at::Tensor out;
  for (int64_t o0 = 0; o0 < out_rows; o0 += band) {
    const int64_t o1 = std::min(out_rows, o0 + band);
    const int64_t i0 = std::max<int64_t>(0, o0 * down / up - reach), i1 = std::min(in_rows, o1 * down / up + reach);
    const at::Tensor y = f(x.narrow(2, i0, i1 - i0));
    if (!out.defined())
      out = at::empty({y.size(0), y.size(1), out_rows, y.size(3)}, y.options().memory_format(y.suggest_memory_format()));
    out.narrow(2, o0, o1 - o0).copy_(y.narrow(2, o0 - i0 * up / down, o1 - o0));
  }
  return out;
}

bool any_pool(const std::vector<TaesdBlock>& blocks) {
  return std::any_of(blocks.begin(), blocks.end(), [](const TaesdBlock& b) { return b.has_pool; });
}
}  // namespace

TaesdConfig TaesdConfig::detect(const TensorMap& encoder, const TensorMap& decoder) {
  TaesdConfig c;
  auto it = encoder.find("14.weight");
  if (it != encoder.end()) c.latent_channels = it->second.shape[0];
  c.encoder_pool.assign(15, false);
  c.decoder_pool.assign(20, false);
  for (int64_t i = 0; i < 20; ++i) {
    const std::string key = std::to_string(i) + ".pool.0.weight";
    if (i < 15 && encoder.count(key)) c.encoder_pool[i] = true;
    if (decoder.count(key)) c.decoder_pool[i] = true;
  }
  return c;
}

TaesdBlock::TaesdBlock(ParamLoader& p, const std::string& n, bool pool)
    : conv0(p, n + ".conv.0", kWidth, kWidth, 3, 1, 1),
      conv2(p, n + ".conv.2", kWidth, kWidth, 3, 1, 1),
      conv4(p, n + ".conv.4", kWidth, kWidth, 3, 1, 1),
      has_pool(pool) {
  if (pool) {
    pool0 = Conv2d(p, n + ".pool.0", kWidth, 4 * kWidth, 1, 1, 0, false);
    pool1 = GroupNorm(p, n + ".pool.1", 4, 4 * kWidth, 1e-5);
    pool3 = Conv2d(p, n + ".pool.3", 4 * kWidth, kWidth, 1, 1, 0, false);
  }
}

at::Tensor TaesdBlock::operator()(const Compute& cp, const at::Tensor& in) const {
  at::Tensor x = has_pool ? in + pool3(cp, relu_in_place(pool1(cp, pool0(cp, in)))) : in;
  // The ReLUs between the convolutions taken by the kernels as they write (bf16 products:
  // bf16 results, read as they are by the next), not passes over 64-channel images.
  const ConvOutput relu_for_products{.relu = true, .bf16 = true};
  at::Tensor h = conv4(cp, conv2(cp, conv0(cp, x, {}, relu_for_products), {}, relu_for_products));
  // In place, with no fresh 64-channel image for the sum nor its ReLU, where h holds the
  // sum's type (not where f16 storage made h f16 and x is f32).
  const bool in_place = at::promote_types(h.scalar_type(), x.scalar_type()) == h.scalar_type();
  return in_place ? add_in_place(h, x, /*relu=*/true) : relu_in_place(h + x);
}

TaesdEncoder::TaesdEncoder(const TaesdConfig& c, ParamLoader& p) {
  stages_.emplace_back(Conv2d(p, "0", 3, kWidth, 3, 1, 1),
                       std::vector<TaesdBlock>{TaesdBlock(p, "1", pool_at(c.encoder_pool, 1))});
  for (int64_t conv : kEncoderStageConvs) {
    std::vector<TaesdBlock> blocks;
    for (int64_t b = conv + 1; b <= conv + 3; ++b)
      blocks.emplace_back(p, std::to_string(b), pool_at(c.encoder_pool, b));
    stages_.emplace_back(Conv2d(p, std::to_string(conv), kWidth, kWidth, 3, 2, 1, false),
                         std::move(blocks));
  }
  conv_out_ = Conv2d(p, "14", kWidth, c.latent_channels, 3, 1, 1);
}

at::Tensor TaesdEncoder::forward(const Compute& cp, const at::Tensor& image) const {
  // Full resolution: conv 0, block 1 and the stride-2 conv after them, five 3x3 convs: an
  // output row depends on input rows at most 5 away (6 taken: even, so that bands start
  // on the stride).
  auto full_resolution = [&](const at::Tensor& rows) {
    at::Tensor y = stages_[0].first(cp, as_activations(cp, rows));
    for (const auto& b : stages_[0].second) y = b(cp, y);
    return stages_[1].first(cp, y);
  };
  const at::Tensor in = as_activations(cp, image);
  at::Tensor x = any_pool(stages_[0].second) ? full_resolution(in) : by_row_bands(in, 1, 2, 6, kBandRows / 2, full_resolution);
  for (size_t s = 1; s < stages_.size(); ++s) {
    if (s > 1) x = stages_[s].first(cp, x);
    for (const auto& b : stages_[s].second) x = b(cp, x);
  }
  return conv_out_(cp, x).contiguous();
}

TaesdDecoder::TaesdDecoder(const TaesdConfig& c, ParamLoader& p) {
  conv_in_ = Conv2d(p, "1", c.latent_channels, kWidth, 3, 1, 1);
  int64_t first = 3;
  for (int64_t conv : kDecoderUpConvs) {
    std::vector<TaesdBlock> blocks;
    for (int64_t b = first; b < conv - 1; ++b)
      blocks.emplace_back(p, std::to_string(b), pool_at(c.decoder_pool, b));
    stages_.push_back(std::move(blocks));
    up_convs_.emplace_back(p, std::to_string(conv), kWidth, kWidth, 3, 1, 1, false);
    first = conv + 1;
  }
  stages_.push_back({TaesdBlock(p, "18", pool_at(c.decoder_pool, 18))});
  conv_out_ = Conv2d(p, "19", kWidth, 3, 3, 1, 1);
}

at::Tensor TaesdDecoder::forward(const Compute& cp, const at::Tensor& latent) const {
  at::Tensor x = relu_in_place(conv_in_(cp, as_activations(cp, at::tanh(latent / 3.0) * 3.0)));
  for (size_t s = 0; s + 1 < stages_.size(); ++s) {
    for (const auto& b : stages_[s]) x = b(cp, x);
    if (s + 1 < up_convs_.size()) x = up_convs_[s](cp, x, {.upsample2x = true});
  }
  // Full resolution: the last upsampling conv, the last block and conv 19. An output row
  // depends on upsampled rows at most 5 away: input rows at most 3 away.
  auto full_resolution = [&](const at::Tensor& rows) {
    at::Tensor y = up_convs_.back()(cp, as_activations(cp, rows), {.upsample2x = true});
    for (const auto& b : stages_.back()) y = b(cp, y);
    return conv_out_(cp, y);
  };
  x = any_pool(stages_.back()) ? full_resolution(x) : by_row_bands(x, 2, 1, 3, kBandRows, full_resolution);
  return x.contiguous();
}

}  // namespace inpaint
