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

double max_abs_diff(const at::Tensor& a, const at::Tensor& b) {
  REQUIRE(a.sizes() == b.sizes());
  return (a.to(at::kDouble) - b.to(at::kDouble)).abs().max().item<double>();
}

}  // namespace test
