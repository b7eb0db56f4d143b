// The classic fill (no model): reconstructs regular textures, only touches the mask, is
// deterministic for a seed on any thread count, and is what `run` falls back to.
#include <ATen/Parallel.h>

#include <cmath>
#include <fstream>

#include "engine/classic_fill.h"
#include "engine/error.h"
#include "engine/image.h"
#include "tests/test_support.h"

namespace fs = std::filesystem;
using namespace inpaint;

namespace {

// Diagonal stripes of period 12 in three colours: every patch has exact copies elsewhere.
Image stripes(int w, int h) {
  Image img{w, h, 3, std::vector<uint8_t>(size_t(w) * h * 3)};
  const uint8_t colours[3][3] = {{200, 40, 40}, {30, 160, 60}, {20, 40, 190}};
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int k = 0; k < 3; ++k) img.pixels[(size_t(y) * w + x) * 3 + k] = colours[((x + y) / 4) % 3][k];
  return img;
}

Mask rectangle(int w, int h, int x0, int y0, int x1, int y1) {
  Mask m{w, h, std::vector<float>(size_t(w) * h, 0.0f)};
  for (int y = y0; y < y1; ++y)
    for (int x = x0; x < x1; ++x) m.values[size_t(y) * w + x] = 1.0f;
  return m;
}

double mean_abs_error_in(const Image& a, const Image& b, const Mask& m) {
  double sum = 0;
  size_t n = 0;
  for (size_t i = 0; i < m.values.size(); ++i)
    if (m.values[i] >= 1.0f)
      for (int k = 0; k < 3; ++k) sum += std::abs(int(a.pixels[i * 3 + k]) - int(b.pixels[i * 3 + k])), ++n;
  return sum / double(n);
}

}  // namespace

TEST_CASE("classic fill continues a regular texture into the hole") {
  const Image truth = stripes(160, 120);
  const Mask hole = rectangle(160, 120, 60, 40, 100, 80);
  Image img = truth;
  for (size_t i = 0; i < hole.values.size(); ++i)
    if (hole.values[i] > 0) img.pixels[i * 3] = img.pixels[i * 3 + 1] = img.pixels[i * 3 + 2] = 255;
  Image filled = img;
  classic_fill(filled, hole, 1);
  // A flat fill with the mean colour is off by ~70 per channel; copying patches is exact
  // away from a few seams.
  const double err = mean_abs_error_in(filled, truth, hole);
  MESSAGE("mean abs error inside the hole: " << err);
  CHECK(err < 8.0);
}

TEST_CASE("classic fill: only the mask changes; same seed same result on 1 and 2 threads") {
  REQUIRE_SHARED(images, "assets/images");
  const Image photo = load_image(images / "kodim01.png");
  const Mask mask = load_mask(images / "kodim01_mask.png");
  InpaintOptions io;
  Progress quiet;
  const int threads = at::get_num_threads();
  at::set_num_threads(1);
  const InpaintResult one = classic_fill_image(photo, mask, 7, io, quiet);
  at::set_num_threads(2);
  const InpaintResult two = classic_fill_image(photo, mask, 7, io, quiet);
  const InpaintResult other = classic_fill_image(photo, mask, 8, io, quiet);
  at::set_num_threads(threads);
  CHECK(one.image.pixels == two.image.pixels);
  CHECK(one.image.pixels != other.image.pixels);
  size_t changed_inside = 0, changed_outside = 0;
  for (size_t i = 0; i < mask.values.size(); ++i) {
    bool differs = false;
    for (int k = 0; k < photo.channels; ++k) differs |= one.image.pixels[i * 3 + k] != photo.pixels[i * 3 + k];
    (mask.values[i] > 0 ? changed_inside : changed_outside) += differs;
  }
  CHECK(changed_outside == 0);
  CHECK(changed_inside > 10000);
}

TEST_CASE("classic fill: a mask over everything says there is nothing to copy from") {
  Image img = stripes(64, 64);
  Mask all = rectangle(64, 64, 0, 0, 64, 64);
  try {
    classic_fill(img, all, 1);
    FAIL("no error");
  } catch (const Error& e) {
    CHECK(std::string(e.what()).find("copy from") != std::string::npos);
  }
  // Through the regions: the picture edge stays, so a mask touching the border works.
  InpaintOptions io;
  Progress quiet;
  const InpaintResult r = classic_fill_image(img, rectangle(64, 64, 0, 0, 20, 64), 1, io, quiet);
  CHECK(r.regions.size() == 1);
}

TEST_CASE("inpaint run --method classic, and auto without an installed model") {
  REQUIRE_SHARED(images, "assets/images");
  const fs::path d = test::temp_dir("classic-cli");
  const fs::path empty_models = d / "models";
  fs::create_directories(empty_models);
  const std::string args = " run --quiet --image " + (images / "rocket.jpg").string() + " --mask " +
                           (images / "rocket_mask.png").string() + " --seed 3 ";
  std::string out;
  REQUIRE_MESSAGE(test::run(test::inpaint_exe() + args + "--method classic --out " + (d / "a.png").string() +
                            " --report " + (d / "a.json").string(), &out) == 0, out);
  // auto, no model given and none installed: the classic fill, said on stderr.
  REQUIRE_MESSAGE(test::run("INPAINT_MODELS=" + empty_models.string() + " " + test::inpaint_exe() + args +
                            "--out " + (d / "b.png").string(), &out) == 0, out);
  CHECK(out.find("classic fill") != std::string::npos);
  CHECK(load_image(d / "a.png").pixels == load_image(d / "b.png").pixels);
  std::ifstream report(d / "a.json");
  const std::string json((std::istreambuf_iterator<char>(report)), std::istreambuf_iterator<char>());
  CHECK(json.find("\"method\": \"classic\"") != std::string::npos);
  // diffusion asked for explicitly with nothing installed: the error says where models go.
  CHECK(test::run("INPAINT_MODELS=" + empty_models.string() + " " + test::inpaint_exe() + args +
                  "--method diffusion --out " + (d / "c.png").string(), &out) != 0);
  CHECK(out.find(empty_models.string()) != std::string::npos);
  CHECK_FALSE(fs::exists(d / "c.png"));
}

TEST_CASE("masked content 'fill': diffusion starts from the classic fill") {
  REQUIRE_SHARED(model, "fixtures/A/models/tiny-sd15-inpaint");
  REQUIRE_SHARED(images, "assets/images");
  const fs::path d = test::temp_dir("prefill");
  std::string out;
  const std::string args = test::inpaint_exe() + " run --quiet --model " + model.string() + " --image " +
                           (images / "astronaut.png").string() + " --mask " + (images / "astronaut_mask.png").string() +
                           " --steps 2 --strength 0.5 --seed 1 --prompt x ";
  REQUIRE_MESSAGE(test::run(args + "--out " + (d / "orig.png").string(), &out) == 0, out);
  REQUIRE_MESSAGE(test::run(args + "--masked-content fill --out " + (d / "fill.png").string(), &out) == 0, out);
  const Image a = load_image(d / "orig.png"), b = load_image(d / "fill.png"), in = load_image(images / "astronaut.png");
  const Mask m = load_mask(images / "astronaut_mask.png");
  size_t differ = 0, outside = 0;
  for (size_t i = 0; i < m.values.size(); ++i)
    for (int k = 0; k < 3; ++k) {
      differ += a.pixels[i * 3 + k] != b.pixels[i * 3 + k];
      outside += m.values[i] == 0.0f && b.pixels[i * 3 + k] != in.pixels[i * 3 + k];
    }
  CHECK(differ > 1000);
  CHECK(outside == 0);
}
