#include "models/taesd.h"

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

namespace {
// ReLU that also takes activations kept in f16 under --max-memory: libtorch 1.13 has no
// f16 relu on the CPU.
at::Tensor relu_stored(const at::Tensor& t) {
  return t.scalar_type() == at::kHalf ? t.masked_fill(t.lt(0), 0) : at::relu(t);
}
}  // namespace

at::Tensor TaesdBlock::operator()(const Compute& cp, const at::Tensor& in) const {
  at::Tensor x = has_pool ? in + pool3(cp, relu_stored(pool1(cp, pool0(cp, in)))) : in;
  const at::Tensor h =
      conv4(cp, conv2(cp, conv0(cp, x), {.activation = ConvInput::kRelu}), {.activation = ConvInput::kRelu});
  return relu_stored(h + x);
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
  at::Tensor x = image.contiguous(cp.activation_format());
  for (const auto& [conv, blocks] : stages_) {
    x = conv(cp, x);
    for (const auto& b : blocks) x = b(cp, x);
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
  at::Tensor x = relu_stored(conv_in_(cp, (at::tanh(latent / 3.0) * 3.0).contiguous(cp.activation_format())));
  for (size_t s = 0; s < stages_.size(); ++s) {
    for (const auto& b : stages_[s]) x = b(cp, x);
    if (s < up_convs_.size())
      x = up_convs_[s](cp, x, {.upsample2x = true});
  }
  return conv_out_(cp, x).contiguous();
}

}  // namespace inpaint
