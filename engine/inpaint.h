// Inpainting a picture: checks the inputs, plans regions around the mask (engine/roi.h),
// runs the pipeline on each at the model's resolution, and pastes the results back
// through the soft mask, so pixels outside the mask stay bit-identical.
#pragma once
#include <functional>
#include <vector>

#include "engine/image.h"
#include "engine/pipeline.h"
#include "engine/roi.h"

namespace inpaint {

struct InpaintOptions {
  RoiOptions roi;
  int grow = 8;     // pixels the repainted area reaches past the mask
  int feather = 8;  // pixels over which the paste-back fades in, inside the mask
  // Masked content the diffusion starts from: false keeps the original pixels, true
  // fills them with the classic fill first (matters with strength < 1).
  bool prefill = false;
};

struct InpaintResult {
  Image image;                 // same size and channels as the input
  bool nothing_to_do = false;  // the mask was empty: image is the input
  std::vector<Roi> regions;
  StageTimes times;
};

// Throws Error for mismatched sizes, a too small or too large image; Cancelled on cancel.
// The image is taken by value and repainted in place (move a big one in).
// `compute`: how the networks compute (engine/memory_plan.h gives the policy).
InpaintResult inpaint_image(const ModelSource& model, const Compute& compute, Image image, const Mask& mask,
                            const GenerationOptions& options, const InpaintOptions& inpaint,
                            Progress& progress);

// One region, for callers that keep the pixels themselves (the GIMP plug-in): `rgb` and
// `mask` are the region's crop. Returns the repainted crop (RGB, 0..255 as float,
// interleaved) and the alpha to paste it with.
struct RegionOutput {
  std::vector<float> rgb;
  Mask alpha;
};
RegionOutput inpaint_region(const Pipeline& pipeline, const Image& rgb, const Mask& mask, const Roi& roi,
                            const GenerationOptions& options, const InpaintOptions& inpaint,
                            Progress& progress, StageTimes* times);

// The loop both methods share: each region's crop and mask go through `fill`, and its
// output is pasted back into the picture through its alpha.
using RegionFill = std::function<RegionOutput(const Image& crop, const Mask& mask, const Roi& roi, Progress& progress)>;
InpaintResult repaint_regions(Image image, const Mask& mask, std::vector<Roi> regions, Progress& progress,
                              const RegionFill& fill);

// Throws Error when the picture and mask differ in size, the picture is too small or too
// large, or an option is bad.
void check_inputs(const Image& image, const Mask& mask, const InpaintOptions& options);

// Throws Error naming a bad context margin, working resolution, grow or feather.
void validate(const InpaintOptions& options);

// The side of the square the networks work at for a `width` x `height` picture: the
// region resolution (default the model's native one), or the picture's with regions off.
int64_t working_side(const Pipeline& pipeline, const RoiOptions& roi, int64_t width, int64_t height);

// Throws a clear Error when a picture of this size cannot be inpainted (checked before
// anything is decoded or allocated).
void check_image_size(int64_t width, int64_t height, bool roi);

}  // namespace inpaint
