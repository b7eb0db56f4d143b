// Mask-aware regions of interest: where to crop a picture so that the networks only see
// the masked parts plus some context, at about their native resolution. A 24-megapixel
// photo with a small mask then costs what a 512x512 one does.
#pragma once
#include <cstdint>
#include <vector>

#include "engine/image.h"

namespace inpaint {

struct Box {
  int64_t x = 0, y = 0, width = 0, height = 0;
  int64_t right() const { return x + width; }
  int64_t bottom() const { return y + height; }
  bool empty() const { return width <= 0 || height <= 0; }
  bool operator==(const Box& o) const { return x == o.x && y == o.y && width == o.width && height == o.height; }
};

Box unite(const Box& a, const Box& b);
Box intersect(const Box& a, const Box& b);

struct RoiOptions {
  bool enabled = true;     // false: one region, the whole picture at its own size
  int64_t context = -1;    // margin around the mask in pixels; -1: automatic, see below
  double context_fraction = 0.25;  // automatic margin: this fraction of the box's longer side,
  int64_t min_context = 32;        // but at least this
  int64_t resolution = 0;  // side of the square the model works at; 0: its native one
  int max_regions = 4;     // more masked areas than this are merged
};

struct Roi {
  Box crop;                       // in picture pixels
  int64_t work_width, work_height;  // what the model sees: multiples of 8, ~resolution^2 pixels
};

// The regions for `mask`, which covers `mask_box` of a picture of `image_width` x
// `image_height` (a selection's bounds, or the whole picture). Pixels > 0 are masked.
// Empty when nothing is masked.
std::vector<Roi> plan_rois(const Mask& mask, const Box& mask_box, int64_t image_width,
                           int64_t image_height, int64_t native_resolution, const RoiOptions& options);

// Bounding boxes of the 8-connected groups of masked pixels, in mask coordinates.
std::vector<Box> masked_regions(const Mask& mask);

}  // namespace inpaint
