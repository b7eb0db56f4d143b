#include "models/kernels/f16_arithmetic.h"

#include <ATen/Parallel.h>
#include <immintrin.h>

#include <cstdint>

#include "models/kernels/cpu.h"

namespace inpaint {
namespace {

#pragma GCC push_options
#pragma GCC target("avx2,f16c")

constexpr int kRound = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;

__m256 load8(const uint16_t* p) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }

// 0 where s < 0, as libtorch's ReLU of f16 (masked_fill where y < 0): NaN and -0 stay.
__m256 relu8(__m256 s) { return _mm256_andnot_ps(_mm256_cmp_ps(s, _mm256_setzero_ps(), _CMP_LT_OQ), s); }

// y[i] = y[i] + x[i] (x null: y[i]), then ReLU where `relu`, for i < n.
void update_span(uint16_t* y, const uint16_t* x, int64_t n, bool relu) {
  auto eight = [&](const uint16_t* yi, const uint16_t* xi, uint16_t* to) {
    __m256 s = load8(yi);
    if (xi) s = _mm256_add_ps(s, load8(xi));
    if (relu) s = relu8(s);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(to), _mm256_cvtps_ph(s, kRound));
  };
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) eight(y + i, x ? x + i : nullptr, y + i);
  if (i == n) return;
  uint16_t a[8] = {}, b[8] = {};
  for (int64_t j = i; j < n; ++j) a[j - i] = y[j], b[j - i] = x ? x[j] : 0;
  eight(a, x ? b : nullptr, a);
  for (int64_t j = i; j < n; ++j) y[j] = a[j - i];
}

#pragma GCC pop_options

bool applies(const at::Tensor& y) {
  const CpuFeatures& cpu = cpu_features();
  return cpu.avx2 && cpu.f16c && y.scalar_type() == at::kHalf && y.is_non_overlapping_and_dense();
}

// Dense tensors of the same strides hold the same element at the same offset from their
// starts: one span each.
void update(at::Tensor& y, const at::Tensor* x, bool relu) {
  auto* to = reinterpret_cast<uint16_t*>(y.data_ptr<at::Half>());
  const auto* from = x ? reinterpret_cast<const uint16_t*>(x->data_ptr<at::Half>()) : nullptr;
  constexpr int64_t kGrain = 1 << 16;
  at::parallel_for(0, y.numel(), kGrain, [&](int64_t begin, int64_t end) {
    update_span(to + begin, from ? from + begin : nullptr, end - begin, relu);
  });
}

}  // namespace

bool add_f16(at::Tensor& y, const at::Tensor& x, bool relu) {
  if (!applies(y) || x.scalar_type() != at::kHalf || y.sizes() != x.sizes() || y.strides() != x.strides()) return false;
  update(y, &x, relu);
  return true;
}

bool relu_f16(at::Tensor& y) {
  if (!applies(y)) return false;
  update(y, nullptr, true);
  return true;
}

}  // namespace inpaint
