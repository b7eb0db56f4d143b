// Weights packed for oneDNN kept on disk (engine/packed_cache.h): the next load maps them
// and computes the same numbers without packing anything; a damaged file is refused.
#include "engine/networks.h"
#include "engine/packed_cache.h"
#include "models/packed_conv.h"
#include "tests/parity_support.h"
#include "tests/test_support.h"

namespace fs = std::filesystem;
using namespace inpaint;

namespace {
size_t packed_count(const PackedSlots& slots) {
  size_t n = 0;
  for (const auto& [name, slot] : slots) {
    at::Tensor data;
    std::string layout;
    n += packed_contents(*slot, data, layout) ? 1 : 0;
  }
  return n;
}
}  // namespace

TEST_CASE("packed weights kept on disk: mapped at the next load, same output, nothing packed again; "
          "a damaged file is refused; the files used last are kept") {
  REQUIRE_SHARED(model_dir, "fixtures/A/models/tiny-sd15-inpaint");
  const fs::path d = test::temp_dir("packed-cache");
  const ModelSource model = ModelSource::open(model_dir);
  const auto un = test::fixture_file(test::shared("fixtures/A/tiny-sd15-inpaint") / "unet.safetensors");
  const at::Tensor x = un.get("sample0"), ctx = un.get("encoder_hidden_states");
  at::NoGradGuard no_grad;
  const fs::path file = packed_cache_file(d, model.component("unet"));

  PackedSlots first;
  const at::Tensor in_memory = load_unet(model, &first)->forward(x, 981, ctx);
  CHECK(use_packed_cache(file, first) == 0);  // nothing kept yet
  CHECK(packed_in_memory(first));
  const size_t packed = packed_count(first);
  MESSAGE(packed << " of the tiny UNet's " << first.size() << " convolution and linear weights packed");
  CHECK(packed > first.size() / 2);
  REQUIRE(write_packed_cache(file, first));
  CHECK(fs::exists(file));

  PackedSlots second;
  const auto unet = load_unet(model, &second);
  CHECK(use_packed_cache(file, second) == packed);
  CHECK(at::equal(unet->forward(x, 981, ctx), in_memory));
  CHECK_FALSE(packed_in_memory(second));

  // Damaged: refused, packed in memory again with the same result.
  fs::resize_file(file, fs::file_size(file) / 2);
  PackedSlots third;
  const auto again = load_unet(model, &third);
  CHECK(use_packed_cache(file, third) == 0);
  CHECK(at::equal(again->forward(x, 981, ctx), in_memory));
  CHECK(packed_in_memory(third));

  // Another model's file is another name; four files are kept, the oldest goes.
  CHECK(packed_cache_file(d, model.component("vae")) != file);
  REQUIRE(write_packed_cache(file, third));
  for (int i = 0; i < 4; ++i) REQUIRE(write_packed_cache(d / ("other-" + std::to_string(i) + ".safetensors"), third));
  CHECK_FALSE(fs::exists(file));
  CHECK(std::distance(fs::directory_iterator(d), fs::directory_iterator()) == 4);
}
