// Exemplar-based hole filling, no model needed: a PatchMatch nearest-neighbour field
// (Barnes et al. 2009) refined coarse to fine, each hole pixel voted from the patches
// that cover it (Wexler et al. 2007) -- what Resynthesizer's "Heal selection" does.
#pragma once
#include <cstdint>
#include <vector>

namespace inpaint {

struct PatchMatchOptions {
  int patch_radius = 3;  // patches of (2r+1)^2 pixels
  uint64_t seed = 0;     // same seed, same picture: same result on any thread count
};

// Fills the pixels of `rgb` (width x height, interleaved RGB) where `hole` is non-zero
// with patches copied from the rest of the picture. Throws Error when too little of the
// picture is left to copy from.
void patchmatch_fill(std::vector<uint8_t>& rgb, const std::vector<uint8_t>& hole, int width, int height,
                     const PatchMatchOptions& options);

}  // namespace inpaint
