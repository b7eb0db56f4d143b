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

// 1 + erf(z). With a = |z|, t = 1 / (1 + p a): erfc(a) = t (a1 + t (a2 + ... + t a5)) e^(-a^2)
// (Abramowitz and Stegun 7.1.26: within 1.5e-7); 1 + erf(z) is erfc(a) for z < 0 (taken
// as it is: 1 - erf(a) would cancel), 2 - erfc(a) for z >= 0.
inline V one_plus_erf(V z) {
  const __m512i sign = _mm512_and_si512((__m512i)z, _mm512_set1_epi32(int32_t(0x80000000u)));
  const V a = (V)_mm512_xor_si512((__m512i)z, sign);
  const V t = reciprocal(splat(1.0f) + splat(0.3275911f) * a);
  V poly = splat(1.061405429f);
  poly = poly * t + splat(-1.453152027f);
  poly = poly * t + splat(1.421413741f);
  poly = poly * t + splat(-0.284496736f);
  poly = poly * t + splat(0.254829592f);
  poly = poly * t;
  // e^(-a^2) = 2^x, x = -a^2 log2(e) <= 0; 0 below -126.
  const V x = -(a * a) * splat(1.4426950408889634f);
  const __mmask16 live = _mm512_cmp_ps_mask(x, splat(-126.0f), _CMP_GE_OQ);
  const V n = _mm512_maskz_roundscale_ps(live, x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const V erfc = poly * _mm512_maskz_scalef_ps(live, exp2_fraction(x - n), n);
  const __mmask16 negative = _mm512_cmp_ps_mask(z, splat(0.0f), _CMP_LT_OQ);
  return _mm512_mask_blend_ps(negative, splat(2.0f) - erfc, erfc);
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
    const V gelu = splat(0.5f) * g * one_plus_erf(g * splat(0.7071067811865476f));
    const __m256bh rounded = _mm512_cvtneps_pbh(v * gelu);
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
