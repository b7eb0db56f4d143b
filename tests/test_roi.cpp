// Region planning, mask edges, and inpainting through regions.
#include <algorithm>

#include "engine/inpaint.h"
#include "engine/mask_edges.h"
#include "engine/roi.h"
#include "tests/test_support.h"

using namespace inpaint;

namespace {

Mask blank(int w, int h) { return Mask{w, h, std::vector<float>(size_t(w) * h, 0.0f)}; }

void fill(Mask& m, int x, int y, int w, int h, float v = 1.0f) {
  for (int r = y; r < y + h; ++r)
    for (int c = x; c < x + w; ++c) m.values[size_t(r) * m.width + c] = v;
}

bool contains(const Box& outer, const Box& inner) { return intersect(outer, inner) == inner; }

// What every region must satisfy: inside the picture, around its mask, model-sized work.
void check_roi(const Roi& r, int64_t w, int64_t h) {
  CHECK(r.crop.x >= 0);
  CHECK(r.crop.y >= 0);
  CHECK(r.crop.right() <= w);
  CHECK(r.crop.bottom() <= h);
  CHECK(r.work_width % 8 == 0);
  CHECK(r.work_height % 8 == 0);
}

}  // namespace

TEST_CASE("a small mask in a big photo: one square region with context, at native resolution") {
  Mask m = blank(4000, 3000);
  fill(m, 1800, 1400, 100, 60);
  const auto rois = plan_rois(m, {0, 0, 4000, 3000}, 4000, 3000, 512, {});
  REQUIRE(rois.size() == 1);
  const Roi& r = rois[0];
  check_roi(r, 4000, 3000);
  CHECK(contains(r.crop, Box{1800 - 32, 1400 - 32, 100 + 64, 60 + 64}));  // context >= 32 px
  CHECK(r.crop.width == r.crop.height);
  CHECK(r.crop.width % 8 == 0);
  const double area = double(r.work_width) * double(r.work_height);
  CHECK(area == doctest::Approx(512.0 * 512.0).epsilon(0.05));
  CHECK(r.work_width > r.crop.width);  // a small mask is upscaled: more detail
}

TEST_CASE("context option, resolution option and border masks (shifted, not cut)") {
  Mask m = blank(1000, 800);
  fill(m, 0, 700, 50, 100);  // bottom-left corner
  RoiOptions o;
  o.context = 100;
  o.resolution = 384;
  const auto rois = plan_rois(m, {0, 0, 1000, 800}, 1000, 800, 512, o);
  REQUIRE(rois.size() == 1);
  check_roi(rois[0], 1000, 800);
  CHECK(rois[0].crop.x == 0);
  CHECK(rois[0].crop.bottom() == 800);
  // 50x100 + 2 x 100 of context = 250x300 -> a square of the longer side, to x8: 304.
  CHECK(rois[0].crop.width == 304);
  CHECK(rois[0].crop.height == 304);
  CHECK(double(rois[0].work_width) * rois[0].work_height == doctest::Approx(384.0 * 384.0).epsilon(0.1));
}

TEST_CASE("far regions get their own crops, near ones share, many are merged down") {
  Mask m = blank(3000, 2000);
  fill(m, 100, 100, 40, 40);
  fill(m, 2800, 1800, 40, 40);
  fill(m, 180, 120, 30, 30);  // near the first
  auto rois = plan_rois(m, {0, 0, 3000, 2000}, 3000, 2000, 512, {});
  CHECK(rois.size() == 2);
  for (int i = 0; i < 12; ++i) fill(m, 200 + i * 220, 1000, 4, 4);  // 12 specks in a row
  rois = plan_rois(m, {0, 0, 3000, 2000}, 3000, 2000, 512, {});
  CHECK(rois.size() <= 4);
  // Every masked pixel is inside some region.
  for (int y = 0; y < 2000; ++y)
    for (int x = 0; x < 3000; ++x)
      if (m.values[size_t(y) * 3000 + x] > 0) {
        const bool inside = std::any_of(rois.begin(), rois.end(), [&](const Roi& r) {
          return contains(r.crop, Box{x, y, 1, 1});
        });
        REQUIRE(inside);
      }
}

TEST_CASE("one pixel, everything, a panorama, a selection's box, ROI off") {
  Mask one = blank(640, 480);
  fill(one, 639, 0, 1, 1);
  auto rois = plan_rois(one, {0, 0, 640, 480}, 640, 480, 512, {});
  REQUIRE(rois.size() == 1);
  check_roi(rois[0], 640, 480);
  CHECK(rois[0].crop.width == 72);  // 1 + 2 x 32, to a multiple of 8
  CHECK(rois[0].crop.right() == 640);

  Mask all = blank(640, 480);
  fill(all, 0, 0, 640, 480);
  rois = plan_rois(all, {0, 0, 640, 480}, 640, 480, 512, {});
  REQUIRE(rois.size() == 1);
  CHECK(rois[0].crop == Box{0, 0, 640, 480});

  Mask pano = blank(20000, 300);  // the mask of a 20000x3000 panorama's band, offset
  fill(pano, 15000, 100, 400, 150);
  rois = plan_rois(pano, {0, 2500, 20000, 300}, 20000, 3000, 512, {});
  REQUIRE(rois.size() == 1);
  check_roi(rois[0], 20000, 3000);
  CHECK(contains(rois[0].crop, Box{15000, 2600, 400, 150}));

  RoiOptions off;
  off.enabled = false;
  rois = plan_rois(one, {0, 0, 640, 480}, 640, 480, 512, off);
  REQUIRE(rois.size() == 1);
  CHECK(rois[0].crop == Box{0, 0, 640, 480});
  CHECK(plan_rois(blank(64, 64), {0, 0, 64, 64}, 64, 64, 512, {}).empty());
}

TEST_CASE("mask edges: grow dilates, feather fades in inside the mask only") {
  Mask m = blank(40, 40);
  fill(m, 10, 10, 20, 20);
  const Mask g = grow_mask(m, 3);
  CHECK(g.values[size_t(7) * 40 + 7] == 1.0f);   // 3 px out, diagonally
  CHECK(g.values[size_t(6) * 40 + 10] == 0.0f);  // 4 px out
  const Mask f = feather_mask(m, 8);
  for (size_t i = 0; i < m.values.size(); ++i)
    if (m.values[i] == 0.0f) REQUIRE(f.values[i] == 0.0f);
  CHECK(f.values[size_t(20) * 40 + 20] == doctest::Approx(1.0f));  // deep inside
  const float edge = f.values[size_t(20) * 40 + 10];
  CHECK(edge > 0.2f);
  CHECK(edge < 0.8f);
  const Mask c = crop_mask(m, 25, -5, 10, 10);  // half outside: zeros there
  CHECK(c.values[size_t(7) * 10 + 2] == 0.0f);   // (27, 2): above the mask's square
  CHECK(c.values[size_t(7) * 10 + 4] == 0.0f);   // (29, 2)
  CHECK(c.values[size_t(0) * 10 + 0] == 0.0f);   // (25, -5): outside the picture
  CHECK(crop_mask(m, 25, 10, 10, 10).values[0] == 1.0f);
  CHECK(crop_mask(m, 25, 10, 10, 10).values[5] == 0.0f);  // x = 30: right of the square
  Mask border = blank(40, 40);
  fill(border, 0, 0, 40, 20);  // touching three picture borders
  CHECK(feather_mask(border, 8).values[0] == doctest::Approx(1.0f));
}

TEST_CASE("inpainting through one whole-picture region equals ROI off; regions keep the rest") {
  REQUIRE_SHARED(model_dir, "fixtures/A/models/tiny-sd15-inpaint");
  REQUIRE_SHARED(image_path, "fixtures/A/tiny-sd15-inpaint/img_64x64.png");
  const ModelSource model = ModelSource::open(model_dir);  // native resolution 64
  const Image image = load_image(image_path);
  Mask m = blank(64, 64);
  fill(m, 8, 8, 48, 48);
  GenerationOptions g;
  g.steps = 3;
  g.seed = 9;
  InpaintOptions on, off;
  off.roi.enabled = false;
  Progress quiet;
  const InpaintResult a = inpaint_image(model, {}, image, m, g, on, quiet);
  const InpaintResult b = inpaint_image(model, {}, image, m, g, off, quiet);
  REQUIRE(a.regions.size() == 1);
  CHECK(a.regions[0].crop == Box{0, 0, 64, 64});
  CHECK(a.image.pixels == b.image.pixels);

  // Two far masks in a 256x192 picture: two regions, both repainted, nothing else.
  Image big{256, 192, 3, std::vector<uint8_t>(size_t(256) * 192 * 3)};
  for (size_t i = 0; i < big.pixels.size(); ++i) big.pixels[i] = uint8_t((i * 7) % 251);
  Mask two = blank(256, 192);
  fill(two, 10, 10, 12, 12);
  fill(two, 220, 160, 20, 20, 0.5f);  // soft
  const InpaintResult r = inpaint_image(model, {}, big, two, g, on, quiet);
  CHECK(r.regions.size() == 2);
  size_t changed_a = 0, changed_b = 0;
  for (int y = 0; y < 192; ++y)
    for (int x = 0; x < 256; ++x) {
      const size_t i = size_t(y) * 256 + x;
      bool same = true;
      for (int k = 0; k < 3; ++k) same = same && r.image.pixels[i * 3 + k] == big.pixels[i * 3 + k];
      if (two.values[i] == 0.0f) REQUIRE(same);
      else if (!same) (x < 128 ? changed_a : changed_b)++;
    }
  CHECK(changed_a > 0);
  CHECK(changed_b > 0);
}
