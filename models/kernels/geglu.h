// GEGLU's product for bf16 runs: value * gelu(gate) from the feed-forward's projection,
// computed in f32 and written as bf16, the operand type of the bf16 projection after
// it. One pass, where libtorch takes four (a copy of the gate half, gelu, the product,
// oneDNN's rounding of the product to bf16).
#pragma once
#include <ATen/core/Tensor.h>

namespace inpaint {

// Whether this processor runs it (AVX-512 with AVX512-BF16: every processor that runs bf16).
bool geglu_bf16_available();

// projected [..., 2h] f32 or bf16: value = its first h channels, gate = the last h. Returns
// value * gelu(gate) [..., h] in bf16 (gelu with erf as libtorch's: Phi within 1e-6,
// geglu.cpp).
at::Tensor geglu_bf16(const at::Tensor& projected);

}  // namespace inpaint
