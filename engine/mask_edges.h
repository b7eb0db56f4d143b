// Mask edges: the area the model repaints reaches a little past the mask (so what it
// paints at the mask's edge continues into its surroundings), and the paste-back fades
// in inside the mask (so no seam shows while pixels outside it never change).
#pragma once
#include "engine/image.h"

namespace inpaint {

// The masked pixels (> 0) grown by `by` pixels in every direction, as 0/1.
Mask grow_mask(const Mask& mask, int by);

// The paste-back alpha: the mask times a blur of itself over `radius` pixels. Zero
// wherever the mask is zero; 1 deep inside a hard mask; a soft ramp at its edge.
Mask feather_mask(const Mask& mask, int radius);

// The part of a mask inside `x, y, width, height`; zero where that leaves the mask.
Mask crop_mask(const Mask& mask, int64_t x, int64_t y, int64_t width, int64_t height);

}  // namespace inpaint
