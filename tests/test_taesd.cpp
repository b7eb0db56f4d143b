// TAESD / TAEF2 (real trained weights in ../shared/assets/taesd) against the upstream
// reference tensors, and the round-trip quality on a real photo.
#include <cmath>

#include "engine/error.h"
#include "engine/image.h"
#include "engine/installed_models.h"
#include "engine/networks.h"
#include "models/kernels/cpu.h"
#include "models/layers.h"
#include "tests/parity_support.h"
#include "tests/test_support.h"

namespace fs = std::filesystem;
using namespace inpaint;

namespace {

constexpr double kTolerance = 1e-4;  // SOURCES.md: float64 recomputation moved results by 1e-5

double psnr(const at::Tensor& a, const at::Tensor& b) {
  const double mse = (a - b).pow(2).mean().item<double>();
  return 10.0 * std::log10(1.0 / mse);
}

}  // namespace

TEST_CASE("TAESD and TAEF2 match the upstream reference (f32 and bf16 weights)") {
  REQUIRE_SHARED(dir, "assets/taesd");
  // At 256x256 the layers at full resolution run in two bands of rows (models/taesd.cpp):
  // the reference checks their seams too (with one row too few around each band, the
  // latent was 0.35 off).
  struct Set {
    const char* encoder;
    const char* decoder;
    const char* reference;
  } sets[] = {{"taesd_encoder.safetensors", "taesd_decoder.safetensors", "taesd_ref_astronaut_256.safetensors"},
              {"taesd_encoder.bf16.safetensors", "taesd_decoder.bf16.safetensors", "taesd_ref_astronaut_256.safetensors"},
              {"taef2_encoder.safetensors", "taef2_decoder.safetensors", "taef2_ref_astronaut_256.safetensors"}};
  for (const auto& s : sets) {
    const std::string name = s.encoder;
    CAPTURE(name);
    const auto taesd = load_taesd(dir / s.encoder, dir / s.decoder);
    const auto ref = test::fixture_file(dir / s.reference);
    const at::Tensor latent = taesd->encoder->forward({}, ref.get("input"));
    const double e_latent = test::max_abs_diff(latent, ref.get("latent"));
    const double e_decoded = test::max_abs_diff(taesd->decoder->forward({}, ref.get("latent")), ref.get("decoded_raw"));
    MESSAGE(name << ": latent max abs error " << e_latent << ", decoded " << e_decoded);
    CHECK(e_latent <= kTolerance);
    CHECK(e_decoded <= kTolerance);
  }
}

TEST_CASE("TAESD under bf16 products (where the processor has them) stays within bf16's rounding of the reference") {
  REQUIRE_SHARED(dir, "assets/taesd");
  if (cpu_features().native_bf16().empty()) {
    MESSAGE("SKIPPED: no native bf16 on " << cpu_features().name << " (bf16 is refused there: test_layers.cpp)");
    return;
  }
  const auto taesd = load_taesd(dir / "taesd_encoder.safetensors", dir / "taesd_decoder.safetensors");
  const auto ref = test::fixture_file(dir / "taesd_ref_astronaut_256.safetensors");
  Compute bf16;
  bf16.precision = Precision::bf16;
  const at::Tensor latent = taesd->encoder->forward(bf16, ref.get("input"));
  const at::Tensor decoded = taesd->decoder->forward(bf16, ref.get("latent"));
  const double e_latent = test::max_abs_diff(latent, ref.get("latent")) / ref.get("latent").abs().max().item<double>();
  const double mean_latent = (latent - ref.get("latent")).abs().mean().item<double>() / ref.get("latent").abs().mean().item<double>();
  const double e_decoded = test::max_abs_diff(decoded, ref.get("decoded_raw"));
  const double mean_decoded = (decoded - ref.get("decoded_raw")).abs().mean().item<double>();
  MESSAGE("bf16: latent max abs error " << e_latent << " of the largest, mean " << mean_latent << " of the mean; decoded max "
                                        << e_decoded << ", mean " << mean_decoded);
  // Each of the ~15 convolutions on a path rounds its input and weight to bf16 (relative
  // error up to 2^-9 each, sums in f32): errors near 2^-8 of the scale per layer, which
  // add up along the path. A worst element: 15 x 2^-9 ~ 3e-2 of the scale; on average
  // they partly cancel, a few times less. Images in [0, 1]: the mean within half an
  // 8-bit level (2e-3). The lower bound shows bf16 really ran (fp32 is within 1.2e-5).
  CHECK(e_latent <= 3e-2);
  CHECK(mean_latent <= 1e-2);
  CHECK(mean_latent > 1e-4);
  CHECK(e_decoded <= 3e-2 * ref.get("decoded_raw").abs().max().item<double>());
  CHECK(mean_decoded <= 2e-3);
}

TEST_CASE("TAESD with large activations in f16 storage (as under --max-memory) stays close to f32") {
  REQUIRE_SHARED(dir, "assets/taesd");
  const auto taesd = load_taesd(dir / "taesd_encoder.safetensors", dir / "taesd_decoder.safetensors");
  const auto ref = test::fixture_file(dir / "taesd_ref_astronaut_256.safetensors");
  const at::Tensor latent = taesd->encoder->forward({}, ref.get("input")), image = taesd->decoder->forward({}, latent);
  Compute half;
  half.policy.half_storage_above = 1;
  half.policy.conv_tile = 64;  // tiles, whose outputs are what is kept in f16
  const at::Tensor latent_half = taesd->encoder->forward(half, ref.get("input"));
  const at::Tensor image_half = taesd->decoder->forward(half, latent);
  // Images in [0, 1]: 2e-3 is half an 8-bit level.
  MESSAGE("f16 storage: latent max abs error " << test::max_abs_diff(latent_half, latent) << ", image "
                                               << test::max_abs_diff(image_half, image));
  CHECK(test::max_abs_diff(latent_half, latent) <= 2e-3 * latent.abs().max().item<double>());
  CHECK(test::max_abs_diff(image_half, image) <= 2e-3);
}

TEST_CASE("TAESD round trip on a real photo keeps the reference quality") {
  REQUIRE_SHARED(dir, "assets/taesd");
  REQUIRE_SHARED(photo, "assets/images/astronaut.png");
  const auto taesd = load_taesd(dir / "taesd_encoder.safetensors", dir / "taesd_decoder.safetensors");
  const at::Tensor x = test::image_tensor(to_rgb(load_image(photo)));
  const at::Tensor y = taesd->decoder->forward({}, taesd->encoder->forward({}, x)).clamp(0, 1);
  const double db = psnr(x, y);
  MESSAGE("TAESD round trip PSNR on astronaut.png 512x512: " << db << " dB (reference 25.35)");
  CHECK(db > 25.0);
}

TEST_CASE("TAESD: a file that is not TAESD is refused with its name") {
  REQUIRE_SHARED(dir, "assets/taesd");
  REQUIRE_SHARED(unet, "fixtures/A/models/tiny-sd15-inpaint/unet/diffusion_pytorch_model.safetensors");
  try {
    load_taesd(unet, dir / "taesd_decoder.safetensors");
    FAIL("no error");
  } catch (const Error& e) {
    CHECK(std::string(e.what()).find(unet.string()) != std::string::npos);
  }
}

TEST_CASE("--vae taesd picks TAESDXL for SDXL models (taesdxl_* files) and TAESD for the others, saying how to fetch the missing one") {
  REQUIRE_SHARED(dir, "assets/taesd");
  const fs::path models = test::temp_dir("taesd-models");
  fs::create_directories(models / "taesd/taesdxl");
  fs::copy_file(dir / "taesd_encoder.safetensors", models / "taesd/taesdxl/taesdxl_encoder.safetensors");
  fs::copy_file(dir / "taesd_decoder.safetensors", models / "taesd/taesdxl/taesdxl_decoder.safetensors");
  setenv("INPAINT_MODELS", models.c_str(), 1);
  CHECK(resolve_taesd("taesd", Family::SDXL) == models / "taesd/taesdxl");
  CHECK(taesd_files(models / "taesd/taesdxl").first.filename() == "taesdxl_encoder.safetensors");
  try {
    resolve_taesd("taesd", Family::SD1);
    FAIL("no TAESD installed, yet resolved");
  } catch (const Error& e) {
    CHECK(std::string(e.what()).find("models fetch taesd`") != std::string::npos);
  }
  CHECK(resolve_taesd(dir.string(), Family::SDXL) == dir);  // a folder named by the user is taken as it is
  unsetenv("INPAINT_MODELS");
}
