#include "models/kernels/bf16_packing.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>
#include <immintrin.h>

#include "models/kernels/cpu.h"

namespace inpaint {
namespace {

// Where the layout puts things, in bf16 elements: output channel o, pair p, tap (h, w) at
// out + (o / bo) * block + h * row + w * tap + at(p) + (o % bo) * 2.
struct PairLayout {
  int64_t bo, block, row, tap;
  int64_t pairs_per_block, pair_block, pair;  // p's block of pairs and its place in it
  int64_t at(int64_t p) const { return p / pairs_per_block * pair_block + p % pairs_per_block * pair; }
};

// The weight's element (o, c, h, w) at data + o * s[0] + c * s[1] + h * s[2] + w * s[3].
template <class T>
struct Source {
  const T* data;
  int64_t s[4];
  int64_t in, kh, kw;
};

float widen(c10::Half v) { return static_cast<float>(v); }
float widen(float v) { return v; }
float widen(c10::BFloat16 v) { return static_cast<float>(v); }

#pragma GCC push_options
#pragma GCC target("avx512f,avx512dq,avx512bw,avx512vl,avx512bf16,f16c")

// Masked forms with every lane live: GCC 12's unmasked ones warn of uninitialised variables.
constexpr __mmask16 kAll = 0xFFFF;
constexpr __mmask8 kAll8 = 0xFF;

// 32 channels in a row (consecutive in memory) as 16 pairs of bf16.
inline __m512i pairs(const c10::Half* p) {
  const __m256i* halves = reinterpret_cast<const __m256i*>(p);
  const __m512 low = _mm512_maskz_cvtph_ps(kAll, _mm256_loadu_si256(halves)),
               high = _mm512_maskz_cvtph_ps(kAll, _mm256_loadu_si256(halves + 1));
  return (__m512i)_mm512_cvtne2ps_pbh(high, low);  // the second operand's become the lower half
}
inline __m512i pairs(const float* p) { return (__m512i)_mm512_cvtne2ps_pbh(_mm512_loadu_ps(p + 16), _mm512_loadu_ps(p)); }
inline __m512i pairs(const c10::BFloat16* p) { return _mm512_loadu_si512(p); }

// The 16 x 16 32-bit words of r transposed: word j of r[i] becomes word i of r[j].
inline void transpose(__m512i r[16]) {
  __m512i t[16];
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_maskz_unpacklo_epi32(kAll, r[i], r[i + 1]);
    t[i + 1] = _mm512_maskz_unpackhi_epi32(kAll, r[i], r[i + 1]);
  }
  for (int i = 0; i < 16; i += 4) {
    r[i] = _mm512_maskz_unpacklo_epi64(kAll8, t[i], t[i + 2]);
    r[i + 1] = _mm512_maskz_unpackhi_epi64(kAll8, t[i], t[i + 2]);
    r[i + 2] = _mm512_maskz_unpacklo_epi64(kAll8, t[i + 1], t[i + 3]);
    r[i + 3] = _mm512_maskz_unpackhi_epi64(kAll8, t[i + 1], t[i + 3]);
  }
  // Now r[4q + k] holds, in 128-bit lane l, word 4l + k of rows 4q..4q+3.
  for (int half = 0; half < 2; ++half)
    for (int k = 0; k < 4; ++k) {
      const int i = 8 * half + k;
      t[i] = _mm512_maskz_shuffle_i32x4(kAll, r[i], r[i + 4], 0x88);      // lanes 0, 2 of each
      t[i + 4] = _mm512_maskz_shuffle_i32x4(kAll, r[i], r[i + 4], 0xdd);  // lanes 1, 3
    }
  for (int k = 0; k < 8; ++k) {
    r[k] = _mm512_maskz_shuffle_i32x4(kAll, t[k], t[k + 8], 0x88);
    r[k + 8] = _mm512_maskz_shuffle_i32x4(kAll, t[k], t[k + 8], 0xdd);
  }
}

// Output channels o0..o0+15 (one block's), every tap and pair.
template <class T>
void pack_group(const Source<T>& src, const PairLayout& l, int64_t o0, uint16_t* out) {
  const int64_t npairs = src.in / 2, full = npairs / 16 * 16;
  uint16_t* group = out + o0 / l.bo * l.block + o0 % l.bo * 2;
  alignas(64) T gathered[32];
  for (int64_t h = 0; h < src.kh; ++h)
    for (int64_t w = 0; w < src.kw; ++w) {
      uint16_t* tap = group + h * l.row + w * l.tap;
      const T* first = src.data + o0 * src.s[0] + h * src.s[2] + w * src.s[3];
      for (int64_t p0 = 0; p0 < full; p0 += 16) {
        __m512i r[16];
        for (int k = 0; k < 16; ++k) {
          const T* from = first + k * src.s[0] + 2 * p0 * src.s[1];
          if (src.s[1] == 1) {
            r[k] = pairs(from);
          } else {  // channels apart (3x3 kernels: 9 elements): gathered first
            for (int c = 0; c < 32; ++c) gathered[c] = from[c * src.s[1]];
            r[k] = pairs(static_cast<const T*>(gathered));
          }
        }
        transpose(r);
        for (int k = 0; k < 16; ++k) _mm512_storeu_si512(tap + l.at(p0 + k), r[k]);
      }
      for (int64_t p = full; p < npairs; ++p)  // the last pairs, fewer than 16
        for (int k = 0; k < 16; ++k)
          for (int j = 0; j < 2; ++j) {
            const c10::BFloat16 v(widen(first[k * src.s[0] + (2 * p + j) * src.s[1]]));
            tap[l.at(p) + k * 2 + j] = v.x;
          }
    }
}

#pragma GCC pop_options

template <class T>
void pack_all(const at::Tensor& weight, const PairLayout& l, uint16_t* out) {
  Source<T> src{weight.data_ptr<T>(), {weight.stride(0), weight.stride(1), weight.stride(2), weight.stride(3)},
                weight.size(1), weight.size(2), weight.size(3)};
  at::parallel_for(0, weight.size(0) / 16, 1, [&](int64_t begin, int64_t end) {
    for (int64_t g = begin; g < end; ++g) pack_group(src, l, g * 16, out);
  });
}

}  // namespace

bool pack_bf16_pairs(const at::Tensor& weight, const BlockedView& view, uint16_t* out) {
  const CpuFeatures& cpu = cpu_features();
  if (!cpu.avx512 || !cpu.avx512_bf16 || weight.dim() != 4 || view.sizes.size() != 4) return false;
  const at::ScalarType t = weight.scalar_type();
  if (t != at::kHalf && t != at::kFloat && t != at::kBFloat16) return false;
  const auto& s = view.sizes;
  const auto& st = view.strides;
  for (int64_t d = 0; d < 4; ++d) {
    int64_t n = 1;
    for (int64_t b : s[d]) n *= b;
    if (n != weight.size(d)) return false;
  }
  // O: [O/bo, bo], bo at stride 2; I: [I/2, 2] or [I/bi, bi/2, 2], pairs at stride 1
  // and, in blocks, one pair after another's bo; KH, KW: unblocked.
  const bool output_blocks = s[0].size() == 2 && st[0][1] == 2 && s[0][1] % 16 == 0;
  if (!output_blocks || s[2].size() != 1 || s[3].size() != 1) return false;
  const int64_t bo = s[0][1];
  const bool single_pairs = s[1].size() == 2 && s[1][1] == 2 && st[1][1] == 1;
  const bool pair_blocks = s[1].size() == 3 && s[1][2] == 2 && st[1][2] == 1 && st[1][1] == 2 * bo;
  if (!single_pairs && !pair_blocks) return false;
  const PairLayout l{bo, st[0][0], st[2][0], st[3][0], single_pairs ? 1 : s[1][1], st[1][0], 2 * bo};
  if (t == at::kHalf) pack_all<c10::Half>(weight, l, out);
  else if (t == at::kFloat) pack_all<float>(weight, l, out);
  else pack_all<c10::BFloat16>(weight, l, out);
  return true;
}

}  // namespace inpaint
