// The classic fill: no model, the picture's own patches fill the mask
// (engine/patchmatch.h), region by region like the diffusion path, with the same grown
// mask and feathered paste-back.
#pragma once
#include <cstdint>

#include "engine/inpaint.h"

namespace inpaint {

// Fills the pixels of `rgb` (3 channels) where `hole` is > 0. Throws Error when too
// little of the picture is left to copy from.
void classic_fill(Image& rgb, const Mask& hole, uint64_t seed);

// The regions for the classic fill, as plan_rois's arguments: wider context than
// diffusion (it is what patches are copied from) and no rescaling (the working size is
// the crop's).
std::vector<Roi> plan_classic_regions(const Mask& mask, const Box& mask_box, int64_t image_width,
                                      int64_t image_height, RoiOptions options);

// Like inpaint_image, without a model. Deterministic for a seed.
InpaintResult classic_fill_image(Image image, const Mask& mask, uint64_t seed, const InpaintOptions& options,
                                 Progress& progress);

// One region's crop (any channel count) and mask: the filled crop and the paste alpha.
RegionOutput classic_fill_region(const Image& crop, const Mask& mask, uint64_t seed, const InpaintOptions& options);

}  // namespace inpaint
