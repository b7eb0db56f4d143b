#include "engine/classic_fill.h"

#include "engine/error.h"
#include "engine/mask_edges.h"
#include "engine/patchmatch.h"

namespace inpaint {

void classic_fill(Image& rgb, const Mask& hole, uint64_t seed) {
  if (rgb.channels != 3) throw Error("classic_fill: needs an RGB picture");
  std::vector<uint8_t> h(hole.values.size());
  for (size_t i = 0; i < h.size(); ++i) h[i] = hole.values[i] > 0.0f;
  PatchMatchOptions o;
  o.seed = seed;
  patchmatch_fill(rgb.pixels, h, rgb.width, rgb.height, o);
}

std::vector<Roi> plan_classic_regions(const Mask& mask, const Box& mask_box, int64_t image_width,
                                      int64_t image_height, RoiOptions o) {
  // Half the mask's size around it: enough surroundings to copy from, and the search
  // stays proportional to the mask rather than to the photo.
  o.context_fraction = 0.5;
  o.min_context = 48;
  // The native resolution only sets the working size, replaced by the crop's below.
  std::vector<Roi> regions = plan_rois(mask, mask_box, image_width, image_height, 512, o);
  for (Roi& r : regions) r.work_width = r.crop.width, r.work_height = r.crop.height;
  return regions;
}

RegionOutput classic_fill_region(const Image& crop, const Mask& mask, uint64_t seed, const InpaintOptions& io) {
  Image rgb = to_rgb(crop);
  classic_fill(rgb, grow_mask(mask, io.grow), seed);
  RegionOutput out;
  out.rgb.assign(rgb.pixels.begin(), rgb.pixels.end());
  out.alpha = feather_mask(mask, io.feather);
  return out;
}

InpaintResult classic_fill_image(Image img, const Mask& mask, uint64_t seed, const InpaintOptions& io,
                                 Progress& progress) {
  check_inputs(img, mask, io);
  std::vector<Roi> regions = plan_classic_regions(mask, {0, 0, img.width, img.height}, img.width, img.height, io.roi);
  return repaint_regions(std::move(img), mask, std::move(regions), progress,
                         [&](const Image& crop, const Mask& m, const Roi&, Progress& p) {
                           if (!p.stage("classic fill")) throw Cancelled();
                           return classic_fill_region(crop, m, seed, io);
                         });
}

}  // namespace inpaint
