#include "engine/inpaint.h"

#include <cmath>

#include "engine/error.h"
#include "engine/classic_fill.h"
#include "engine/mask_edges.h"

namespace inpaint {
namespace {

// Without regions the whole picture goes through the networks; beyond this the
// activations alone exceed what a small machine has. With regions only the crops do,
// and the picture itself (plus its mask) is what has to fit.
constexpr int64_t kMaxWholePixels = 2048LL * 2048LL;
constexpr int64_t kMaxPixels = int64_t(kMaxImagePixels);

// Stage names with "region i/n: " in front when there are several regions.
class RegionProgress : public Progress {
 public:
  RegionProgress(Progress& inner, size_t index, size_t count) : inner_(inner) {
    if (count > 1) prefix_ = "region " + std::to_string(index + 1) + "/" + std::to_string(count) + ": ";
  }
  bool stage(const std::string& name) override { return inner_.stage(prefix_ + name); }
  bool step(int done, int total, double s) override { return inner_.step(done, total, s); }
  void latents(int done, const at::Tensor& l) override { inner_.latents(done, l); }

 private:
  Progress& inner_;
  std::string prefix_;
};

Image crop_image(const Image& img, const Box& b) {
  Image out{static_cast<int>(b.width), static_cast<int>(b.height), img.channels, {}};
  out.pixels.resize(static_cast<size_t>(b.width * b.height * img.channels));
  for (int64_t r = 0; r < b.height; ++r)
    std::copy_n(img.pixels.begin() + ((b.y + r) * img.width + b.x) * img.channels, b.width * img.channels,
                out.pixels.begin() + r * b.width * img.channels);
  return out;
}

// Blends a repainted region into `img` (any channel count; alpha is kept).
void paste(Image& img, const Box& b, const RegionOutput& region) {
  const int c = img.channels;
  const int colour = (c == 2 || c == 4) ? c - 1 : c;
  for (int64_t r = 0; r < b.height; ++r)
    for (int64_t col = 0; col < b.width; ++col) {
      const int64_t j = r * b.width + col;
      const float a = region.alpha.values[j];
      if (a <= 0.0f) continue;  // untouched: bit-identical to the input
      const float* g = &region.rgb[j * 3];
      uint8_t* p = &img.pixels[((b.y + r) * img.width + b.x + col) * c];
      for (int k = 0; k < colour; ++k) {
        // Grey images take the mean of the generated RGB.
        const float v = c >= 3 ? g[k] : (g[0] + g[1] + g[2]) / 3.0f;
        p[k] = static_cast<uint8_t>(std::lround(std::clamp(p[k] + (v - p[k]) * a, 0.0f, 255.0f)));
      }
    }
}

}  // namespace

void validate(const InpaintOptions& io) {
  if (io.roi.context < -1) throw Error("the context margin (--context) must be -1 (automatic) or a number of pixels");
  if (io.roi.resolution != 0 && (io.roi.resolution < 64 || io.roi.resolution > 2048))
    throw Error("the working resolution (--resolution) must be between 64 and 2048, or 0 for the model's own");
  if (io.grow < 0 || io.feather < 0) throw Error("--grow and --feather must be >= 0");
}

int64_t working_side(const Pipeline& pipeline, const RoiOptions& roi, int64_t width, int64_t height) {
  if (!roi.enabled) return static_cast<int64_t>(std::sqrt(double(width) * double(height)));
  return roi.resolution > 0 ? roi.resolution : pipeline.native_resolution();
}

void check_image_size(int64_t width, int64_t height, bool roi) {
  const std::string size = std::to_string(width) + "x" + std::to_string(height);
  if (width < 8 || height < 8) throw Error("the image is " + size + "; it must be at least 8x8 pixels");
  if (!roi && width * height > kMaxWholePixels)
    throw Error("the image is " + size + "; whole-image inpainting (--roi off) handles at most " +
                std::to_string(kMaxWholePixels / 1000000) + " megapixels (2048x2048): use --roi auto");
  if (width * height > kMaxPixels)
    throw Error("the image is " + size + "; at most " + std::to_string(kMaxPixels / 1000000) +
                " megapixels can be inpainted");
}

RegionOutput inpaint_region(const Pipeline& pipeline, const Image& crop, const Mask& mask, const Roi& roi,
                            const GenerationOptions& options, const InpaintOptions& io, Progress& progress,
                            StageTimes* times) {
  const int64_t w = crop.width, h = crop.height;
  Image rgb = to_rgb(crop);
  const Mask repaint = grow_mask(mask, io.grow);
  if (io.prefill) {
    if (!progress.stage("classic fill")) throw Cancelled();
    classic_fill(rgb, repaint, options.seed);
  }
  at::Tensor x = at::from_blob(const_cast<uint8_t*>(rgb.pixels.data()), {h, w, 3}, at::kByte)
                     .permute({2, 0, 1}).unsqueeze(0).to(at::kFloat).div(255.0);
  at::Tensor m = at::from_blob(const_cast<float*>(repaint.values.data()), {1, 1, h, w}, at::kFloat).clone();
  const bool resized = roi.work_width != w || roi.work_height != h;
  if (resized) {
    x = at::upsample_bicubic2d(x, {roi.work_height, roi.work_width}, false).clamp(0, 1);
    m = at::upsample_bilinear2d(m, {roi.work_height, roi.work_width}, false);
  }
  at::Tensor out = pipeline.generate(x * 2 - 1, m, options, progress, times);
  if (resized) out = at::upsample_bicubic2d(out, {h, w}, false).clamp(0, 1);
  const at::Tensor hwc = out.squeeze(0).permute({1, 2, 0}).mul(255.0).contiguous();
  RegionOutput r;
  r.rgb.assign(hwc.data_ptr<float>(), hwc.data_ptr<float>() + hwc.numel());
  r.alpha = feather_mask(mask, io.feather);
  return r;
}

InpaintResult repaint_regions(Image img, const Mask& mask, std::vector<Roi> regions, Progress& progress,
                              const RegionFill& fill) {
  InpaintResult result;
  result.regions = std::move(regions);
  result.image = std::move(img);  // crops are read from it, results pasted into it
  result.nothing_to_do = result.regions.empty();
  for (size_t i = 0; i < result.regions.size(); ++i) {
    const Box& b = result.regions[i].crop;
    RegionProgress region_progress(progress, i, result.regions.size());
    const RegionOutput out = fill(crop_image(result.image, b), crop_mask(mask, b.x, b.y, b.width, b.height),
                                  result.regions[i], region_progress);
    paste(result.image, b, out);
  }
  return result;
}

void check_inputs(const Image& img, const Mask& mask, const InpaintOptions& io) {
  validate(io);
  if (img.width != mask.width || img.height != mask.height)
    throw Error("the image is " + std::to_string(img.width) + "x" + std::to_string(img.height) +
                " but the mask is " + std::to_string(mask.width) + "x" + std::to_string(mask.height));
  if (img.channels < 1 || img.channels > 4) throw Error("the image has an unsupported channel count");
  check_image_size(img.width, img.height, io.roi.enabled);
}

InpaintResult inpaint_image(const ModelSource& model, const Compute& compute, Image img, const Mask& mask,
                            const GenerationOptions& options, const InpaintOptions& io, Progress& progress) {
  validate(options);
  check_inputs(img, mask, io);
  const Pipeline pipeline(model, compute);
  std::vector<Roi> regions = plan_rois(mask, {0, 0, img.width, img.height}, img.width, img.height,
                                       pipeline.native_resolution(), io.roi);
  StageTimes times;
  InpaintResult result = repaint_regions(std::move(img), mask, std::move(regions), progress,
      [&](const Image& crop, const Mask& m, const Roi& roi, Progress& p) {
        return inpaint_region(pipeline, crop, m, roi, options, io, p, &times);
      });
  result.times = std::move(times);
  return result;
}

}  // namespace inpaint
