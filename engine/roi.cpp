#include "engine/roi.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace inpaint {
namespace {

int64_t round8(double v) { return std::max<int64_t>(8, std::llround(v / 8.0) * 8); }

Box grow(const Box& b, int64_t by) { return {b.x - by, b.y - by, b.width + 2 * by, b.height + 2 * by}; }

// Resizes one side of a box to `size` about its centre, then shifts it inside [0, limit).
void fit_side(int64_t& pos, int64_t& len, int64_t size, int64_t limit) {
  size = std::min(size, limit);
  pos = pos + len / 2 - size / 2;
  len = size;
  pos = std::clamp<int64_t>(pos, 0, limit - len);
}

}  // namespace

Box unite(const Box& a, const Box& b) {
  if (a.empty()) return b;
  if (b.empty()) return a;
  const int64_t x = std::min(a.x, b.x), y = std::min(a.y, b.y);
  return {x, y, std::max(a.right(), b.right()) - x, std::max(a.bottom(), b.bottom()) - y};
}

Box intersect(const Box& a, const Box& b) {
  const int64_t x = std::max(a.x, b.x), y = std::max(a.y, b.y);
  const int64_t r = std::min(a.right(), b.right()), bt = std::min(a.bottom(), b.bottom());
  if (r <= x || bt <= y) return {};
  return {x, y, r - x, bt - y};
}

std::vector<Box> masked_regions(const Mask& mask) {
  const int64_t w = mask.width, h = mask.height;
  std::vector<uint8_t> seen(static_cast<size_t>(w * h), 0);
  std::vector<Box> boxes;
  std::vector<int64_t> stack;
  for (int64_t start = 0; start < w * h; ++start) {
    if (seen[start] || !(mask.values[start] > 0.0f)) continue;
    int64_t x0 = w, y0 = h, x1 = -1, y1 = -1;
    seen[start] = 1;
    stack.push_back(start);
    while (!stack.empty()) {  // flood fill, 8-connected
      const int64_t i = stack.back(), x = i % w, y = i / w;
      stack.pop_back();
      x0 = std::min(x0, x), x1 = std::max(x1, x), y0 = std::min(y0, y), y1 = std::max(y1, y);
      for (int64_t dy = -1; dy <= 1; ++dy)
        for (int64_t dx = -1; dx <= 1; ++dx) {
          const int64_t nx = x + dx, ny = y + dy;
          if (nx < 0 || ny < 0 || nx >= w || ny >= h) continue;
          const int64_t j = ny * w + nx;
          if (!seen[j] && mask.values[j] > 0.0f) {
            seen[j] = 1;
            stack.push_back(j);
          }
        }
    }
    boxes.push_back({x0, y0, x1 - x0 + 1, y1 - y0 + 1});
  }
  return boxes;
}

std::vector<Roi> plan_rois(const Mask& mask, const Box& mask_box, int64_t image_w, int64_t image_h,
                           int64_t native, const RoiOptions& o) {
  std::vector<Box> boxes = masked_regions(mask);
  if (boxes.empty()) return {};
  if (!o.enabled) return {Roi{{0, 0, image_w, image_h}, round8(double(image_w)), round8(double(image_h))}};
  for (Box& b : boxes) b.x += mask_box.x, b.y += mask_box.y;

  auto margin = [&](const Box& b) {
    return o.context >= 0 ? o.context
                          : std::max<int64_t>(o.min_context, static_cast<int64_t>(o.context_fraction * double(std::max(b.width, b.height))));
  };
  // Regions whose context areas touch share one crop.
  for (bool merged = true; merged;) {
    merged = false;
    for (size_t i = 0; i < boxes.size() && !merged; ++i)
      for (size_t j = i + 1; j < boxes.size() && !merged; ++j)
        if (!intersect(grow(boxes[i], margin(boxes[i])), grow(boxes[j], margin(boxes[j]))).empty()) {
          boxes[i] = unite(boxes[i], boxes[j]);
          boxes.erase(boxes.begin() + static_cast<std::ptrdiff_t>(j));
          merged = true;
        }
  }
  // Too many: merge the pair whose union is smallest, until few enough are left.
  while (boxes.size() > static_cast<size_t>(std::max(1, o.max_regions))) {
    size_t bi = 0, bj = 1;
    int64_t best = std::numeric_limits<int64_t>::max();
    for (size_t i = 0; i < boxes.size(); ++i)
      for (size_t j = i + 1; j < boxes.size(); ++j) {
        const Box u = unite(boxes[i], boxes[j]);
        if (u.width * u.height < best) best = u.width * u.height, bi = i, bj = j;
      }
    boxes[bi] = unite(boxes[bi], boxes[bj]);
    boxes.erase(boxes.begin() + static_cast<std::ptrdiff_t>(bj));
  }

  const double side = static_cast<double>(o.resolution > 0 ? o.resolution : native);
  std::vector<Roi> rois;
  for (const Box& b : boxes) {
    Box c = grow(b, margin(b));
    // Square-ish and a multiple of 8 where the picture allows; shifted, not cut, at borders.
    const int64_t square = (std::max(c.width, c.height) + 7) / 8 * 8;
    fit_side(c.x, c.width, square, image_w);
    fit_side(c.y, c.height, square, image_h);
    const double scale = side / std::sqrt(double(c.width) * double(c.height));
    rois.push_back({c, round8(c.width * scale), round8(c.height * scale)});
  }
  return rois;
}

}  // namespace inpaint
