// Scaled dot-product attention in one pass: a thread takes 256 query rows of a head and
// goes through the keys 512 at a time, computing the scores of a few rows against them,
// updating a running softmax (max, sum, weighted values) and moving on, while those keys
// and values sit in its cache. The heads' score matrices (16 x 4096 x 4096 floats at
// 512x512 with CFG) are never written out.
#pragma once
#include <ATen/core/Tensor.h>

#include <string>

namespace inpaint {

// Head sizes up to this many channels (SD 1.5: 40, 80, 160; SD 2: 64; CLIP: 64).
// Larger ones (the VAE's single 512-channel head) go through batched matrix products.
constexpr int64_t kFusedAttentionMaxHeadDim = 160;

// Whether this processor runs the fused kernel (AVX2 and FMA, or AVX-512) for heads of
// `head_dim` channels; attention() uses batched matrix products otherwise.
bool fused_attention_available(int64_t head_dim);

// The kernel copy in use: "avx512", "avx2", or "" (none: batched products). Tests select
// a lower one than the processor's best to check it too; "" goes back to the best.
std::string fused_attention_isa();
void set_fused_attention_isa(const std::string& isa);

// q [B, nq, heads * d], k and v [B, nk, heads * d] (f32), mask (optional) [nq, nk] added
// to the scores. Returns softmax(q kᵀ / sqrt(d) + mask) v per head, [B, nq, heads * d];
// a row whose keys are all masked (-inf) gets zeros.
at::Tensor fused_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, int64_t heads,
                           const at::Tensor& mask);

}  // namespace inpaint
