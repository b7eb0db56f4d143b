// Scaled dot-product attention in bf16: the products q kᵀ and p v take bf16 inputs and
// accumulate in f32, on AMX tiles (Xeon from Sapphire Rapids) or with AVX512-BF16's dot
// products (Zen 4/5, Xeon from Cooper Lake); the softmax is f32 (AVX-512). A thread
// takes 32 query rows of a head and goes through the keys in blocks of 256: their
// scores (in its cache; on AMX, the next block's made on the tiles while the vector
// units take this one's softmax), the probabilities rounded to bf16 (relative to the
// running largest score, an online softmax), and the weighted values added up. The
// score matrix is never written out.
#pragma once
#include <ATen/core/Tensor.h>

#include <string>

namespace inpaint {

// Head sizes up to this many channels: the UNets' (40-160) and the VAEs' single head of
// 512, which fp32 runs through batched matrix products (SDXL's VAE at 1024²: 4.7 s of
// its 26 s in OpenBLAS on Zen 5).
constexpr int64_t kBf16AttentionMaxHeadDim = 512;

// Whether this processor runs it (AMX-BF16 permitted, or AVX512-BF16) for heads of
// `head_dim` channels.
bool bf16_attention_available(int64_t head_dim);

// The products in use: "amx-bf16", "avx512-bf16", or "" (none). Tests and benchmarks
// select the AVX512-BF16 ones on an AMX processor to check them too, and
// "amx-bf16-emulated" (the AMX code on a tile unit in software, any processor with
// AVX512-BF16: slow) to check the AMX code where there is no AMX; "" goes back to the
// best.
std::string bf16_attention_isa();
void set_bf16_attention_isa(const std::string& isa);

// q [B, nq, heads * d], k and v [B, nk, heads * d] (f32 or bf16). Returns softmax(q kᵀ / sqrt(d)) v
// per head, [B, nq, heads * d], f32 (or bf16 with bf16_out, for a bf16 product after
// it): q, k and v rounded to bf16, the probabilities too, sums and accumulation in f32.
at::Tensor bf16_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, int64_t heads,
                          bool bf16_out = false);

}  // namespace inpaint
