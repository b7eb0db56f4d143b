// The speed paths compute what the plain ones do: projections through oneDNN equal
// at::linear, and libtorch's parallel loops in our code really use the threads.
#include <ATen/Parallel.h>

#include <mutex>
#include <set>

#include "models/layers.h"
#include "tests/parity_support.h"
#include "tests/test_support.h"

using namespace inpaint;

TEST_CASE("project() equals at::linear: few rows (OpenBLAS) and many (oneDNN), 2-D and 3-D, with and without bias") {
  at::manual_seed(3);
  const at::Tensor w = at::randn({48, 64}), b = at::randn({48});
  for (const std::vector<int64_t>& shape : {std::vector<int64_t>{5, 64}, {300, 64}, {2, 150, 64}, {1, 4096, 64}}) {
    CAPTURE(shape.size());
    CAPTURE(shape[shape.size() - 2]);
    const at::Tensor x = at::randn(shape);
    const at::Tensor expected = at::linear(x, w, b);
    const at::Tensor got = project(x, w, b);
    CHECK(got.sizes() == expected.sizes());
    CHECK(test::max_abs_diff(got, expected) < 1e-5 * expected.abs().max().item<double>());
    CHECK(test::max_abs_diff(project(x, w), at::linear(x, w)) < 1e-5 * expected.abs().max().item<double>());
  }
  // A non-contiguous input (every other token) is read correctly.
  const at::Tensor x = at::randn({1, 600, 64}).slice(1, 0, 600, 2);
  CHECK(test::max_abs_diff(project(x, w, b), at::linear(x, w, b)) < 1e-4);
}

TEST_CASE("at::parallel_for in our code runs on several threads (it is OpenMP in libtorch's headers)") {
  const int saved = at::get_num_threads();
  at::set_num_threads(2);
  std::set<int> threads;
  std::mutex m;
  at::parallel_for(0, 2, 1, [&](int64_t, int64_t) {
    std::lock_guard<std::mutex> lock(m);
    threads.insert(at::get_thread_num());
  });
  at::set_num_threads(saved);
  CHECK(threads.size() == 2);
}
