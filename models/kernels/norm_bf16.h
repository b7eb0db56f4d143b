// Normalisations whose output feeds bf16 products, written as bf16 in one pass: the
// f32 output, the activation after it and oneDNN's rounding of the convolution's or
// projection's input were three more passes over the activations. Statistics in f32 and
// double; only the output is rounded (as the products would round it).
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

namespace inpaint {

// Whether this processor runs them (AVX-512 with AVX512-BF16: every processor that runs bf16).
bool norm_bf16_available();

// Per-channel sums and sums of squares of x [B, C, H, W] channels last, f32 or f16, C a
// multiple of 16: [B * C] each, pixels summed in f32 by 256, those sums in double (the
// error does not grow with the image). One pass, AVX-512. False where it does not apply.
bool channel_sums(const at::Tensor& x, std::vector<double>& sums, std::vector<double>& squares);

// silu(group_norm(x)) (or group_norm(x) without `silu`) of x [B, C, H, W] f32 channels
// last, as bf16 channels last. weight and bias [C] f32. Undefined where it does not
// apply (another layout or dtype, C not a multiple of 16 or of groups): the caller
// then normalises in f32.
at::Tensor group_norm_bf16(const at::Tensor& x, int64_t groups, const at::Tensor& weight, const at::Tensor& bias,
                           double eps, bool silu);

// act(x * scale + shift) of `pixels` channels-last pixels of c channels (c a multiple of
// 16) as bf16, each written `repeat` times in a row (nearest-neighbour upsampling along
// the row): rows of a convolution's bf16 input in one pass (conv_bands.cpp). x f32 or
// f16 (`f16`); scale and shift [c] f32, or both null for x as it is. For processors
// where norm_bf16_available().
enum class PixelActivation { none, silu, relu };
void pixels_to_bf16(const void* x, bool f16, int64_t pixels, int64_t c, const float* scale, const float* shift,
                    PixelActivation activation, int64_t repeat, uint16_t* out);

// layer_norm(x) over the last dimension of x [..., C] f32, as bf16. Undefined where it
// does not apply (C not a multiple of 16).
at::Tensor layer_norm_bf16(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias, double eps);

}  // namespace inpaint
