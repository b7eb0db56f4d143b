#include "models/kernels/geglu.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "models/kernels/cpu.h"

namespace inpaint {
namespace {

#pragma GCC push_options
#pragma GCC target("avx512f,avx512dq,avx512bw,avx512vl,avx512bf16,fma")

#include "models/kernels/avx512_vector.inc"

// gelu(g) = g Phi(g), Phi the normal distribution. With a = |g| and P(a) = 1 + b1 a + ...
// + b6 a^6: erfc(a / sqrt 2) = P(a)^-16 within 3e-7 (Abramowitz and Stegun 7.1.28, its
// coefficients divided by sqrt(2)^k to take a itself). Phi(g) = erfc / 2 for g < 0 (taken
// as it is: 1 - Phi(|g|) would cancel), 1 - erfc / 2 for g >= 0. In f32 (P's rounding,
// raised to the 16th, dominates) Phi is within 1e-6, and gelu within 3e-4 relative where
// |gelu| > 1e-3: an eighth of the bf16 rounding after it. About 20 vector operations per
// 16 values where erf's polynomial and 2^x took 30: a 64x64 block's GEGLU (8192 x 1280,
// bf16) 2.18-2.21 -> 1.69-1.70 ms on Zen 5, 2 threads.
inline V gelu(V g) {
  // |g| above 16: Phi there is 1 or 0 in f32 all the same, and P(a)^16 would overflow
  // (from a ~ 19: infinity times its reciprocal 0, NaN).
  const V a = _mm512_maskz_min_ps(0xFFFF, _mm512_abs_ps(g), splat(16.0f));  // masked: GCC 12 warns of the unmasked form
  V p = splat(4.30638e-5f / 8.0f);
  p = p * a + splat(2.765672e-4f / 5.656854249492381f);
  p = p * a + splat(1.520143e-4f / 4.0f);
  p = p * a + splat(9.2705272e-3f / 2.8284271247461903f);
  p = p * a + splat(4.22820123e-2f / 2.0f);
  p = p * a + splat(7.05230784e-2f / 1.4142135623730951f);
  p = p * a + splat(1.0f);
  p = p * p;
  p = p * p;
  p = p * p;
  p = p * p;
  // erfc / 2 = 0.5 / p: an estimate r (14 bits), then r (1 - p r / 2) (Newton's step, halved).
  const V r = _mm512_maskz_rcp14_ps(0xFFFF, p);
  const V half_erfc = r * (splat(1.0f) - splat(0.5f) * (p * r));
  const V m = g * half_erfc;  // g Phi(g) for g < 0; g - m for g >= 0
  return _mm512_mask_sub_ps(m, _mm512_cmp_ps_mask(g, splat(0.0f), _CMP_GE_OQ), g, m);
}

// 16 values (fewer where `live` says) from f32 or bf16 (widened: bf16 is f32's upper half).
inline V load(const float* p, __mmask16 live) { return _mm512_maskz_loadu_ps(live, p); }
inline V load(const uint16_t* p, __mmask16 live) {
  const __mmask16 all = 0xFFFF;  // masked forms: GCC 12's unmasked ones warn of uninitialised variables
  return (V)_mm512_maskz_slli_epi32(all, _mm512_maskz_cvtepu16_epi32(all, _mm256_maskz_loadu_epi16(live, p)), 16);
}

// out[i] = value[i] * gelu(gate[i]) for i < n, rounded to bf16.
template <class T>
void geglu_row(const T* value, const T* gate, int64_t n, uint16_t* out) {
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 live = i + 16 <= n ? __mmask16(0xFFFF) : __mmask16((1u << (n - i)) - 1);
    const V v = load(value + i, live), g = load(gate + i, live);
    const __m256bh rounded = _mm512_cvtneps_pbh(v * gelu(g));
    _mm256_mask_storeu_epi16(out + i, live, (__m256i)rounded);
  }
}

#pragma GCC pop_options

}  // namespace

bool geglu_bf16_available() {
  const CpuFeatures& cpu = cpu_features();
  return cpu.avx512 && cpu.avx512_bf16;
}

at::Tensor geglu_bf16(const at::Tensor& projected) {
  TORCH_CHECK(geglu_bf16_available(), "geglu_bf16: this processor has no AVX512-BF16");
  const at::Tensor x = projected.contiguous();
  const int64_t width = x.size(-1), h = width / 2, rows = x.numel() / width;
  std::vector<int64_t> shape = x.sizes().vec();
  shape.back() = h;
  at::Tensor out = at::empty(shape, at::kBFloat16);
  uint16_t* to = reinterpret_cast<uint16_t*>(out.data_ptr<at::BFloat16>());
  auto rows_of = [&](auto* in) {
    at::parallel_for(0, rows, 16, [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) geglu_row(in + r * width, in + r * width + h, h, to + r * h);
    });
  };
  if (x.scalar_type() == at::kBFloat16)
    rows_of(reinterpret_cast<const uint16_t*>(x.data_ptr<at::BFloat16>()));
  else
    rows_of(x.data_ptr<float>());
  return out;
}

}  // namespace inpaint
