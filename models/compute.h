// How a network computes: the choices every network and layer call receives
// explicitly (never a process-wide setting), so that a call says how it computes.
#pragma once
#include <c10/core/MemoryFormat.h>

#include <cstdint>

#include "models/kernels/cpu.h"

namespace inpaint {

// How the layers trade memory for speed (engine/memory_plan.h derives it from --max-memory).
struct ComputePolicy {
  // Drop each layer's weight pages from memory after use, so that about one layer of
  // weights is resident (they stay in the page cache): packed weights are packed at each
  // call and dropped after it, others widened into reused buffers.
  bool stream_weights = false;
  // Streamed weights that are not packed (int8, merged LoRAs) are widened into reused
  // buffers of this many floats; larger ones are used in output-channel chunks of this size.
  int64_t weight_slot_floats = 8 << 20;
  // Attention scores per chunk, in floats: queries are chunked, and keys too (with an
  // online softmax) when one query row of all heads exceeds it.
  int64_t attention_floats = 4 << 20;
  // Heads the fused kernel handles go through it (see fused_attention.h); false: batched
  // matrix products within attention_floats (for comparison).
  bool fused_attention = true;
  // Convolutions whose unfolded input (C_in * k * k * outputs) exceeds this many
  // floats run tile by tile, with their input transform (GroupNorm, activation,
  // upsampling) applied per tile.
  int64_t tile_above_floats = 64 << 20;
  // Working buffers, in floats: a tile's unfolded input; a feed-forward's token chunk.
  int64_t work_floats = 64 << 20;
  int64_t conv_tile = 0;  // output tile side in pixels; 0: from work_floats
  // Tiled convolution outputs above this many elements are stored as f16 (read back
  // to f32 tile by tile): halves the decoder's full-resolution tensors. 0: never.
  int64_t half_storage_above = 0;
  // Feed-forward weights widened per token chunk from reused buffers (slower, leaner)
  // rather than once per call.
  bool ff_widen_per_chunk = false;
  // Where a LoRA is applied (see lora_on_input): each layer the cheaper way, or every
  // layer merged / on its input (for comparison).
  enum LoraMode { kLoraCheaper, kLoraMerge, kLoraOnInput } lora_mode = kLoraCheaper;
  // Resident convolution weights are packed once into oneDNN's layout (models/kernels/packed_conv.h);
  // false: every call hands at::conv2d the weight as stored (for comparison).
  bool packed_convolutions = true;
  // The networks keep their activations channels last (NHWC), the layout oneDNN's
  // convolution kernels read and write: no reorders around each convolution, and image
  // rows are token rows for attention without a transpose. false: NCHW (for comparison).
  bool channels_last = true;
  // 3x3 stride-1 convolutions through packed weights with at least this many output
  // pixels (batch x height x width) use oneDNN's Winograd kernel where it has one
  // (F(4x4, 3x3): 2.2-3x the direct kernel's speed at these sizes, on a weight 16x the
  // f16 size; see packed_conv.h); smaller ones, whose weights are read for few pixels,
  // the direct kernel. 0: never (for comparison).
  int64_t winograd_from_pixels = 4096;
  // Tiled channels-last convolutions through packed weights run in full-width bands of
  // output rows (models/kernels/conv_bands.h); false: square tiles (for comparison).
  bool conv_bands = true;
  // Return freed heap memory between pipeline stages (whose tensors have other sizes:
  // kept, they leave holes the next stage's do not fit), and between the VAE's resolution
  // levels (which reuse much of each other's): less memory, slower (the pages are faulted
  // in again).
  bool release_between_stages = false;
  bool release_between_levels = false;
};
// The precision that runs under `policy`: bf16 needs packed weights (resident, or
// streamed and packed per call).
inline Precision effective_precision(Precision wanted, const ComputePolicy& policy) {
  return policy.packed_convolutions ? wanted : Precision::fp32;
}

struct Compute {
  ComputePolicy policy;
  // The precision of the products where the FLOPs are (see models/kernels/cpu.h).
  Precision precision = Precision::fp32;

  // The memory format the networks keep their activations in (see channels_last).
  at::MemoryFormat activation_format() const {
    return policy.channels_last ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous;
  }
  // The same choices with packed weights allowed (as they say) or not.
  Compute packing(bool allow) const {
    Compute c = *this;
    c.policy.packed_convolutions = policy.packed_convolutions && allow;
    return c;
  }
};

}  // namespace inpaint
