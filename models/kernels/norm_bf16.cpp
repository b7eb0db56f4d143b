#include "models/kernels/norm_bf16.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <immintrin.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "models/kernels/cpu.h"

namespace inpaint {
namespace {

constexpr int64_t kPixelChunk = 256;  // pixels summed in f32 before their sums join the double ones

#pragma GCC push_options
#pragma GCC target("avx512f,avx512dq,avx512bw,avx512vl,avx512bf16,fma")

#include "models/kernels/avx512_vector.inc"
inline void store_bf16(uint16_t* p, V v) {
  const __m256bh rounded = _mm512_cvtneps_pbh(v);
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), (__m256i)rounded);
}

// silu(y) = y sigmoid(y), with s = e^-|y| <= 1: sigmoid is 1 / (1 + s) for y >= 0 and
// s / (1 + s) below (no overflow either way).
inline V silu(V y) {
  const __m512i sign = _mm512_and_si512((__m512i)y, _mm512_set1_epi32(int32_t(0x80000000u)));
  const V x = (V)_mm512_or_si512((__m512i)y, _mm512_set1_epi32(int32_t(0x80000000u))) * splat(1.4426950408889634f);
  const __mmask16 live = _mm512_cmp_ps_mask(x, splat(-126.0f), _CMP_GE_OQ);
  const V n = _mm512_maskz_roundscale_ps(live, x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const V s = _mm512_maskz_scalef_ps(live, exp2_fraction(x - n), n);
  const __mmask16 negative = _mm512_movepi32_mask(sign);
  const V numerator = _mm512_mask_blend_ps(negative, splat(1.0f), s);
  return y * numerator * reciprocal(splat(1.0f) + s);
}

// 16 channels from f32 or f16.
inline V load_channels(const float* x) { return load(x); }
inline V load_channels(const c10::Half* x) {
  return _mm512_maskz_cvtph_ps(0xFFFF, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x)));
}

// Column sums and sums of squares of `rows` rows of c values (c a multiple of 16).
template <class T>
void column_sums(const T* x, int64_t rows, int64_t c, float* sum, float* squares) {
  for (int64_t j = 0; j < c; j += 16) {
    V s = splat(0.0f), q = splat(0.0f);
    for (int64_t r = 0; r < rows; ++r) {
      const V v = load_channels(x + r * c + j);
      s += v;
      q += v * v;
    }
    store(sum + j, s);
    store(squares + j, q);
  }
}

// One row of c: (x - mean) / sqrt(var + eps) * weight + bias as bf16; mean and variance
// from the row (two passes over it, in L1).
void layer_norm_row(const float* x, int64_t c, const float* weight, const float* bias, float eps, uint16_t* out) {
  V s = splat(0.0f);
  for (int64_t j = 0; j < c; j += 16) s += load(x + j);
  const float mean = lanes_sum(s) / float(c);
  V q = splat(0.0f);
  for (int64_t j = 0; j < c; j += 16) {
    const V d = load(x + j) - splat(mean);
    q += d * d;
  }
  const V rstd = splat(1.0f / std::sqrt(lanes_sum(q) / float(c) + eps));
  for (int64_t j = 0; j < c; j += 16)
    store_bf16(out + j, (load(x + j) - splat(mean)) * rstd * load(weight + j) + load(bias + j));
}

// act(x * scale + shift) of `pixels` pixels of c, each written `repeat` times, as bf16
// (pixels_to_bf16; group_norm_bf16's output).
template <class T>
void pixels_to_bf16_on(const T* x, int64_t pixels, int64_t c, const float* scale, const float* shift,
                       PixelActivation activation, int64_t repeat, uint16_t* out) {
  for (int64_t p = 0; p < pixels; ++p)
    for (int64_t j = 0; j < c; j += 16) {
      V y = load_channels(x + p * c + j);
      if (scale) y = y * load(scale + j) + load(shift + j);
      if (activation == PixelActivation::silu) y = silu(y);
      if (activation == PixelActivation::relu) y = _mm512_maskz_max_ps(0xFFFF, y, splat(0.0f));
      for (int64_t k = 0; k < repeat; ++k) store_bf16(out + (p * repeat + k) * c + j, y);
    }
}

#pragma GCC pop_options

uint16_t* bits(const at::Tensor& t) { return reinterpret_cast<uint16_t*>(t.data_ptr<at::BFloat16>()); }

}  // namespace

bool norm_bf16_available() {
  const CpuFeatures& cpu = cpu_features();
  return cpu.avx512 && cpu.avx512_bf16;
}

bool channel_sums(const at::Tensor& x, std::vector<double>& sums, std::vector<double>& squares) {
  if (!norm_bf16_available() || x.dim() != 4 || (x.scalar_type() != at::kFloat && x.scalar_type() != at::kHalf) ||
      !x.is_contiguous(at::MemoryFormat::ChannelsLast) || x.size(1) % 16 != 0)
    return false;
  const int64_t b = x.size(0), c = x.size(1), pixels = x.size(2) * x.size(3);
  const int64_t chunks = (pixels + kPixelChunk - 1) / kPixelChunk;
  // Per chunk of pixels: f32 sums of each channel and of its squares (pixels in a chunk
  // add up in f32, chunks in double: the error does not grow with the image).
  std::vector<float> partial(size_t(b * chunks * 2 * c));
  const bool f16 = x.scalar_type() == at::kHalf;
  at::parallel_for(0, b * chunks, 1, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      const int64_t batch = t / chunks, p0 = t % chunks * kPixelChunk, rows = std::min(kPixelChunk, pixels - p0);
      const int64_t offset = (batch * pixels + p0) * c;
      float* part = partial.data() + t * 2 * c;
      if (f16) column_sums(x.data_ptr<at::Half>() + offset, rows, c, part, part + c);
      else column_sums(x.data_ptr<float>() + offset, rows, c, part, part + c);
    }
  });
  sums.assign(size_t(b * c), 0.0);
  squares.assign(size_t(b * c), 0.0);
  for (int64_t t = 0; t < b * chunks; ++t) {
    const float* part = partial.data() + t * 2 * c;
    double* s = sums.data() + t / chunks * c;
    double* q = squares.data() + t / chunks * c;
    for (int64_t j = 0; j < c; ++j) {
      s[j] += part[j];
      q[j] += part[c + j];
    }
  }
  return true;
}

at::Tensor group_norm_bf16(const at::Tensor& x, int64_t groups, const at::Tensor& weight, const at::Tensor& bias,
                           double eps, bool silu) {
  if (x.dim() != 4 || x.scalar_type() != at::kFloat || x.size(1) % groups != 0) return {};
  std::vector<double> sums, squares;
  if (!channel_sums(x, sums, squares)) return {};
  const int64_t b = x.size(0), c = x.size(1), pixels = x.size(2) * x.size(3);
  const int64_t chunks = (pixels + kPixelChunk - 1) / kPixelChunk;
  const float* in = x.data_ptr<float>();
  const at::Tensor w = weight.to(at::kFloat).contiguous(), bi = bias.to(at::kFloat).contiguous();
  std::vector<float> scale(size_t(b * c)), shift(size_t(b * c));
  const int64_t per_group = c / groups;
  const double count = double(pixels) * double(per_group);
  for (int64_t batch = 0; batch < b; ++batch)
    for (int64_t g = 0; g < groups; ++g) {
      double s = 0, q = 0;
      for (int64_t j = g * per_group; j < (g + 1) * per_group; ++j) {
        s += sums[size_t(batch * c + j)];
        q += squares[size_t(batch * c + j)];
      }
      const double mean = s / count, var = std::max(0.0, q / count - mean * mean);
      const double rstd = 1.0 / std::sqrt(var + eps);
      for (int64_t j = g * per_group; j < (g + 1) * per_group; ++j) {
        const double sc = rstd * double(w.data_ptr<float>()[j]);
        scale[size_t(batch * c + j)] = float(sc);
        shift[size_t(batch * c + j)] = float(double(bi.data_ptr<float>()[j]) - mean * sc);
      }
    }
  at::Tensor out = at::empty(x.sizes(), at::TensorOptions().dtype(at::kBFloat16).memory_format(at::MemoryFormat::ChannelsLast));
  uint16_t* to = bits(out);
  at::parallel_for(0, b * chunks, 1, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      const int64_t batch = t / chunks, p0 = t % chunks * kPixelChunk, offset = (batch * pixels + p0) * c;
      pixels_to_bf16_on(in + offset, std::min(kPixelChunk, pixels - p0), c, scale.data() + batch * c,
                        shift.data() + batch * c, silu ? PixelActivation::silu : PixelActivation::none, 1, to + offset);
    }
  });
  return out;
}

void pixels_to_bf16(const void* x, bool f16, int64_t pixels, int64_t c, const float* scale, const float* shift,
                    PixelActivation activation, int64_t repeat, uint16_t* out) {
  if (f16) pixels_to_bf16_on(static_cast<const c10::Half*>(x), pixels, c, scale, shift, activation, repeat, out);
  else pixels_to_bf16_on(static_cast<const float*>(x), pixels, c, scale, shift, activation, repeat, out);
}

at::Tensor layer_norm_bf16(const at::Tensor& x_in, const at::Tensor& weight, const at::Tensor& bias, double eps) {
  const int64_t c = x_in.size(-1);
  if (!norm_bf16_available() || x_in.scalar_type() != at::kFloat || c % 16 != 0) return {};
  const at::Tensor x = x_in.contiguous();
  const at::Tensor w = weight.to(at::kFloat).contiguous(), bi = bias.to(at::kFloat).contiguous();
  at::Tensor out = at::empty(x.sizes(), at::kBFloat16);
  const float* in = x.data_ptr<float>();
  uint16_t* to = bits(out);
  at::parallel_for(0, x.numel() / c, 64, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r)
      layer_norm_row(in + r * c, c, w.data_ptr<float>(), bi.data_ptr<float>(), float(eps), to + r * c);
  });
  return out;
}

}  // namespace inpaint
