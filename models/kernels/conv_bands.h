// A large convolution of a channels-last image run band by band of full-width output
// rows, through its packed oneDNN weight: each band's input (the input steps applied,
// zero-padded) is made in one buffer, and the kernel writes straight into the output.
// Conv2d uses it for the decoders' full-resolution convolutions, in place of square tiles
// that cost copies around every tile (the transform in four passes, the padding, the
// output copy).
#pragma once
#include <ATen/ATen.h>

#include <memory>

#include "models/layers.h"

namespace inpaint {

struct PackedConvWeight;

// Whether conv_in_bands runs a convolution of x: f32 or f16 (activations stored so under
// --max-memory and for SDXL), channels last, stride 1, the padding that keeps the size,
// no extra end padding.
bool bands_apply(const at::Tensor& x, const ConvInput& in, int64_t kernel, int64_t stride, int64_t padding);

// The convolution of `in` applied to x, in bands of `band_rows` output rows (0: as many
// as keep a band's input, and its f32 result where that is a temporary, within
// `band_floats` floats each), all of one height; undefined when
// oneDNN does not run it through the packed weight (nothing done then). `scale` and
// `shift` are in.norm's per-channel map of x (GroupNorm::affine; undefined without a norm).
// Bands are f32, or bf16 under bf16 products (made in one pass where the processor runs
// it: norm_bf16.h); the result is `out_type` (f32, or f16 for activations stored so).
at::Tensor conv_in_bands(const Compute& compute, const at::Tensor& x, const ConvInput& in, const at::Tensor& scale, const at::Tensor& shift,
                         const at::Tensor& weight, const at::Tensor& bias, std::shared_ptr<PackedConvWeight>& packed,
                         int64_t band_floats, int64_t band_rows = 0, at::ScalarType out_type = at::kFloat);

}  // namespace inpaint
