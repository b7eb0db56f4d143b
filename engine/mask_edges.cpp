#include "engine/mask_edges.h"

#include <algorithm>

namespace inpaint {
namespace {

// One pass of a separable filter over rows (step 1) or columns (step width):
// out[i] = reduce(in[i - r .. i + r]) clipped at the borders.
template <typename Reduce>
std::vector<float> pass(const std::vector<float>& in, int64_t w, int64_t h, bool rows, int r, Reduce reduce) {
  std::vector<float> out(in.size());
  const int64_t n = rows ? w : h, lines = rows ? h : w;
  const int64_t step = rows ? 1 : w, line_step = rows ? w : 1;
  for (int64_t l = 0; l < lines; ++l) {
    const float* src = in.data() + l * line_step;
    float* dst = out.data() + l * line_step;
    for (int64_t i = 0; i < n; ++i) {
      const int64_t a = std::max<int64_t>(0, i - r), b = std::min<int64_t>(n - 1, i + r);
      dst[i * step] = reduce(src, a, b, step, 2 * r + 1);
    }
  }
  return out;
}

float max_of(const float* s, int64_t a, int64_t b, int64_t step, int) {
  float m = 0.0f;
  for (int64_t i = a; i <= b; ++i) m = std::max(m, s[i * step]);
  return m;
}

// The mean over the pixels inside the picture only: a mask touching the border is not
// faded there, only at its own edge.
float mean_of(const float* s, int64_t a, int64_t b, int64_t step, int) {
  float sum = 0.0f;
  for (int64_t i = a; i <= b; ++i) sum += s[i * step];
  return sum / float(b - a + 1);
}

}  // namespace

Mask grow_mask(const Mask& m, int by) {
  Mask out = m;
  for (float& v : out.values) v = v > 0.0f ? 1.0f : 0.0f;
  if (by <= 0) return out;
  out.values = pass(out.values, m.width, m.height, true, by, max_of);
  out.values = pass(out.values, m.width, m.height, false, by, max_of);
  return out;
}

Mask feather_mask(const Mask& m, int radius) {
  if (radius <= 0) return m;
  // Two box blurs of half the radius: close to a Gaussian, still cheap.
  const int r = std::max(1, radius / 2);
  std::vector<float> blur = m.values;
  for (int k = 0; k < 2; ++k) {
    blur = pass(blur, m.width, m.height, true, r, mean_of);
    blur = pass(blur, m.width, m.height, false, r, mean_of);
  }
  Mask out = m;
  for (size_t i = 0; i < out.values.size(); ++i)
    out.values[i] = std::clamp(m.values[i], 0.0f, 1.0f) * std::clamp(blur[i], 0.0f, 1.0f);
  return out;
}

Mask crop_mask(const Mask& m, int64_t x, int64_t y, int64_t w, int64_t h) {
  Mask out{static_cast<int>(w), static_cast<int>(h), std::vector<float>(static_cast<size_t>(w * h), 0.0f)};
  const int64_t x0 = std::max<int64_t>(x, 0), x1 = std::min<int64_t>(x + w, m.width);
  for (int64_t r = std::max<int64_t>(y, 0); r < std::min<int64_t>(y + h, m.height) && x1 > x0; ++r)
    std::copy_n(m.values.begin() + r * m.width + x0, x1 - x0, out.values.begin() + (r - y) * w + (x0 - x));
  return out;
}

}  // namespace inpaint
