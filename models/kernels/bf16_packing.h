// Weights packed into oneDNN's bf16 layouts from their stored dtype. Streamed weights
// (SDXL by default, --max-memory) are packed at every call: at::Tensor's strided copy
// (f16 -> bf16, element by element) ran at 1.5 GB/s of f16 here, 3.6 s of SDXL's 18.9 s
// bf16 step (Zen 5). The layouts oneDNN's bf16 kernels read pair input channels: each
// output channel's two neighbouring input channels are one 32-bit word, then come a block
// of output channels, then (AMX's layouts) a block of pairs, and the outer blocks follow
// in any order: [O/bo] [KH] [KW] [I/2] [bo] [2] with AVX512-BF16 (AcdB64a2b),
// [O/bo] [KH] [KW] [I/bi] [bi/2] [bo] [2] on AMX (AcdB16b64a2b). This copies 16 output
// channels x 16 pairs at a time: converted in AVX-512 registers and transposed there.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>

#include "models/kernels/packed_layout.h"

namespace inpaint {

// Writes `weight` ([O, I, KH, KW], any strides: a part of the input channels too; f16,
// f32 or bf16) into `out` at the bf16 layout `view` describes, rounded to nearest even
// as at::Tensor::to(kBFloat16) (but f32 denormals, below 1.2e-38, become 0:
// VCVTNE2PS2BF16 flushes them; f16 values have none in f32). False, writing nothing,
// for layouts not of that form (O in blocks of a multiple of 16 at stride 2; I in pairs
// at stride 1, alone or inside a block of pairs outside the output channels' block; KH,
// KW unblocked) or without AVX-512 with AVX512-BF16.
bool pack_bf16_pairs(const at::Tensor& weight, const BlockedView& view, uint16_t* out);

}  // namespace inpaint
