#include "tests/parity_support.h"

#include <doctest/doctest.h>

#include "engine/error.h"
#include "engine/weights.h"

namespace test {

FixtureFile fixture_file(const std::filesystem::path& path) {
  return FixtureFile{inpaint::SafetensorsFile::open(path)};
}

at::Tensor FixtureFile::get(const std::string& key) const {
  const inpaint::TensorInfo* t = file->find(key);
  if (!t) throw inpaint::Error(file->label() + ": no reference tensor '" + key + "'");
  return inpaint::view_of(inpaint::TensorRef{file, t, t->shape, 0}).clone();
}

at::Tensor image_tensor(const inpaint::Image& rgb) {
  return at::from_blob(const_cast<uint8_t*>(rgb.pixels.data()), {rgb.height, rgb.width, 3}, at::kByte)
      .permute({2, 0, 1}).unsqueeze(0).to(at::kFloat).div(255.0);
}

double max_abs_diff(const at::Tensor& a, const at::Tensor& b) {
  REQUIRE(a.sizes() == b.sizes());
  return (a.to(at::kDouble) - b.to(at::kDouble)).abs().max().item<double>();
}

}  // namespace test
