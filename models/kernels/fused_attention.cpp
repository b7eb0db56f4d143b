#include "models/kernels/fused_attention.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

namespace inpaint {
namespace {

constexpr int64_t kKeyBlock = 512;     // keys per block: their K and V (~180 KB at d = 40) stay in L2
constexpr int64_t kKeyAlign = 32;      // scores are computed for whole groups of 32 keys
constexpr int64_t kRowsPerTask = 256;  // query rows that share each key block
constexpr int64_t kMaxRows = 8;        // query rows whose scores are computed together, at most
constexpr float kMinusInf = -std::numeric_limits<float>::infinity();
constexpr double kLog2e = 1.4426950408889634;

struct Head {
  const float* q;     // row r at q + r * q_stride, d channels
  const float* kt;    // [key blocks][d][kKeyBlock]: keys transposed block by block, times the scale
  const float* v;     // [nk][dp], zero past d
  const float* mask;  // [nq][nk] or null
  float* out;         // row r at out + r * out_stride
  int64_t q_stride, out_stride, nk, d, dp;
};

// The running softmax of a task's query rows over the key blocks seen so far.
struct Running {
  float* acc;  // [rows][dp]: sum of e^(score - max) * value
  float* max;  // [rows]
  float* sum;  // [rows]: sum of e^(score - max)
};

size_t work_floats(int64_t dp) { return size_t(kMaxRows * kKeyBlock + kRowsPerTask * (dp + 2)); }

// One copy of the kernel per instruction set: 16-lane registers (32 of them) with
// AVX-512, 8-lane ones (16 of them, hence fewer rows at a time) with AVX2.
#pragma GCC push_options
#pragma GCC target("avx512f,avx512dq,avx512bw,avx512vl,fma")
namespace avx512 {
using V = __m512;
inline V splat(float x) { return _mm512_set1_ps(x); }
constexpr int kRows = 8, kValueVectors = 3;
#include "models/kernels/fused_attention_kernel.inc"
// 2^x = 2^n 2^f with n = round(x): AVX-512 rounds and scales in one instruction each.
inline V exp2_nonpositive(V x) {
  const __mmask16 live = _mm512_cmp_ps_mask(x, splat(-126.0f), _CMP_GE_OQ);
  const V n = _mm512_maskz_roundscale_ps(live, x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  return _mm512_maskz_scalef_ps(live, exp2_fraction(x - n), n);
}
}  // namespace avx512
#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target("avx2,fma")
namespace avx2 {
using V = __m256;
inline V splat(float x) { return _mm256_set1_ps(x); }
constexpr int kRows = 4, kValueVectors = 2;
#include "models/kernels/fused_attention_kernel.inc"
// 2^x = 2^n 2^f: n = round(x) by adding and taking away 1.5 * 2^23, 2^n put into the
// exponent bits.
inline V exp2_nonpositive(V x) {
  using I = int32_t __attribute__((vector_size(sizeof(V))));
  const V round = splat(12582912.0f);
  const V t = x + round;
  const V n = t - round;
  const I exponent = (((I)t - (I)round) + 127) << 23;
  return x < splat(-126.0f) ? splat(0.0f) : exp2_fraction(x - n) * (V)exponent;
}
}  // namespace avx2
#pragma GCC pop_options

using RowsFunction = void (*)(const Head&, int64_t, int64_t, float*);

bool cpu_has(const std::string& isa) {
  if (isa == "avx512")
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
           __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
  return isa == "avx2" && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

struct Kernel {
  std::string isa;  // "" for none
  RowsFunction rows = nullptr;
};

Kernel best_kernel() {
  if (cpu_has("avx512")) return {"avx512", avx512::attend_rows};
  if (cpu_has("avx2")) return {"avx2", avx2::attend_rows};
  return {};
}

Kernel& kernel() {
  static Kernel k = best_kernel();
  return k;
}

}  // namespace

std::string fused_attention_isa() { return kernel().isa; }

void set_fused_attention_isa(const std::string& isa) {
  if (isa.empty()) {
    kernel() = best_kernel();
    return;
  }
  TORCH_CHECK(cpu_has(isa), "fused attention: this processor cannot run the ", isa, " kernel");
  kernel() = {isa, isa == "avx512" ? avx512::attend_rows : avx2::attend_rows};
}

bool fused_attention_available(int64_t head_dim) {
  return kernel().rows != nullptr && head_dim <= kFusedAttentionMaxHeadDim;
}

at::Tensor fused_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, int64_t heads,
                           const at::Tensor& mask) {
  const int64_t b = q.size(0), nq = q.size(1), nk = k.size(1), c = q.size(2), d = c / heads;
  TORCH_CHECK(fused_attention_available(d), "fused_attention: head size ", d);
  const RowsFunction attend = kernel().rows;
  const int64_t blocks = (nk + kKeyBlock - 1) / kKeyBlock, dp = (d + 15) / 16 * 16;
  const at::Tensor qc = q.contiguous();
  // Keys: [b * heads, blocks, d, kKeyBlock], scaled by log2(e) / sqrt(d) (scores in base
  // 2, see the kernel), so that a block's d rows are 2 KB apart (rows nk floats apart
  // would, at 4096 keys, all fall in the same cache sets).
  at::Tensor padded_keys = at::zeros({b, blocks * kKeyBlock, heads, d});
  padded_keys.narrow(1, 0, nk).copy_(k.reshape({b, nk, heads, d})).mul_(kLog2e / std::sqrt(double(d)));
  const at::Tensor kt = padded_keys.view({b, blocks, kKeyBlock, heads, d}).permute({0, 3, 1, 4, 2}).contiguous();
  at::Tensor vp = at::zeros({b, heads, nk, dp});
  vp.narrow(3, 0, d).copy_(v.reshape({b, nk, heads, d}).transpose(1, 2));
  const at::Tensor m = mask.defined() ? (mask.to(at::kFloat) * kLog2e).expand({nq, nk}).contiguous() : at::Tensor();
  at::Tensor out = at::empty({b, nq, c});
  const int64_t tasks_per_head = (nq + kRowsPerTask - 1) / kRowsPerTask;
  // Work buffers made here, one per thread: a worker thread's own allocation would give
  // it a glibc heap of its own, which keeps freed memory apart from the main one.
  std::vector<float> work(work_floats(dp) * size_t(at::get_num_threads()));
  at::parallel_for(0, b * heads * tasks_per_head, 1, [&](int64_t begin, int64_t end) {
    float* own = work.data() + work_floats(dp) * size_t(at::get_thread_num());
    for (int64_t t = begin; t < end; ++t) {
      const int64_t bh = t / tasks_per_head, batch = bh / heads, head = bh % heads;
      const int64_t row0 = t % tasks_per_head * kRowsPerTask;
      const Head h{qc.data_ptr<float>() + (batch * nq + row0) * c + head * d,
                   kt.data_ptr<float>() + bh * blocks * kKeyBlock * d,
                   vp.data_ptr<float>() + bh * nk * dp,
                   m.defined() ? m.data_ptr<float>() + row0 * nk : nullptr,
                   out.data_ptr<float>() + (batch * nq + row0) * c + head * d,
                   c, c, nk, d, dp};
      attend(h, 0, std::min(kRowsPerTask, nq - row0), own);
    }
  });
  return out;
}

}  // namespace inpaint
