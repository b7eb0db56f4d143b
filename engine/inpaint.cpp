#include "engine/inpaint.h"

#include <cmath>
#include <fstream>

#include "engine/error.h"

namespace inpaint {
namespace {

// Without ROI slicing the whole picture goes through the networks; beyond this the
// activations alone exceed what a small machine has.
constexpr int64_t kMaxPixels = 2048LL * 2048LL;

int64_t round8(int64_t v) { return std::max<int64_t>(8, (v + 4) / 8 * 8); }

}  // namespace

size_t peak_rss_bytes() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmHWM:", 0) == 0) return static_cast<size_t>(std::stoull(line.substr(6))) * 1024;
  return 0;
}

void check_image_size(int64_t width, int64_t height) {
  const std::string size = std::to_string(width) + "x" + std::to_string(height);
  if (width < 8 || height < 8) throw Error("the image is " + size + "; it must be at least 8x8 pixels");
  if (round8(width) * round8(height) > kMaxPixels)
    throw Error("the image is " + size + "; whole-image inpainting handles at most " +
                std::to_string(kMaxPixels / 1000000) + " megapixels (2048x2048)");
}

InpaintResult inpaint_image(const ModelSource& model, const Image& img, const Mask& mask,
                            const GenerationOptions& options, Progress& progress) {
  validate(options);
  if (img.width != mask.width || img.height != mask.height)
    throw Error("the image is " + std::to_string(img.width) + "x" + std::to_string(img.height) +
                " but the mask is " + std::to_string(mask.width) + "x" + std::to_string(mask.height));
  if (img.channels < 1 || img.channels > 4) throw Error("the image has an unsupported channel count");
  InpaintResult result;
  result.image = img;
  bool any = false;
  for (float m : mask.values) any = any || m > 0.0f;
  if (!any) {
    result.nothing_to_do = true;
    return result;
  }
  check_image_size(img.width, img.height);
  const int64_t w = round8(img.width), h = round8(img.height);
  const Image rgb = to_rgb(img);
  at::Tensor x = at::from_blob(const_cast<uint8_t*>(rgb.pixels.data()), {img.height, img.width, 3}, at::kByte)
                     .permute({2, 0, 1}).unsqueeze(0).to(at::kFloat).div(255.0);
  at::Tensor m = at::from_blob(const_cast<float*>(mask.values.data()), {1, 1, img.height, img.width}, at::kFloat).clone();
  const bool resized = w != img.width || h != img.height;
  if (resized) {
    x = at::upsample_bicubic2d(x, {h, w}, false).clamp(0, 1);
    m = at::upsample_bilinear2d(m, {h, w}, false);
  }
  at::Tensor out = Pipeline(model).generate(x * 2 - 1, m, options, progress, &result.times);
  if (resized) out = at::upsample_bicubic2d(out, {img.height, img.width}, false).clamp(0, 1);
  // [H, W, 3] in 0..255 as float, then composite through the soft mask.
  const at::Tensor gen = out.squeeze(0).permute({1, 2, 0}).mul(255.0).contiguous();
  const float* g = gen.data_ptr<float>();
  const int c = img.channels;
  const int colour = (c == 2 || c == 4) ? c - 1 : c;  // alpha stays as it was
  for (int64_t i = 0; i < static_cast<int64_t>(img.width) * img.height; ++i) {
    const float a = std::clamp(mask.values[i], 0.0f, 1.0f);
    if (a <= 0.0f) continue;  // untouched: bit-identical to the input
    for (int k = 0; k < colour; ++k) {
      // Grey images take the mean of the generated RGB.
      const float v = c >= 3 ? g[i * 3 + k] : (g[i * 3] + g[i * 3 + 1] + g[i * 3 + 2]) / 3.0f;
      const float o = img.pixels[i * c + k];
      result.image.pixels[i * c + k] = static_cast<uint8_t>(std::lround(std::clamp(o + (v - o) * a, 0.0f, 255.0f)));
    }
  }
  return result;
}

}  // namespace inpaint
