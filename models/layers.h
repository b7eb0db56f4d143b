// The building blocks every network shares. Each holds its parameters as stored
// (f32, f16 or bf16 views of the mapped file) and widens them to f32 at use.
#pragma once
#include <ATen/ATen.h>

#include <functional>
#include <memory>
#include <string>

#include "engine/weights.h"

namespace inpaint {

// How the layers trade memory for speed; process-wide, set once before running
// (engine/memory_plan.h derives it from --max-memory).
struct ComputePolicy {
  // Drop each layer's weight pages from memory after widening them, so that about one
  // layer of weights is resident (they stay in the page cache).
  bool stream_weights = false;
  // Streamed weights are widened into reused buffers of this many floats; larger ones
  // are used in output-channel chunks of this size.
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
  // Resident convolution weights are packed once into oneDNN's layout (models/packed_conv.h);
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
  // output rows (models/conv_bands.h); false: square tiles (for comparison).
  bool conv_bands = true;
  // Return freed heap memory between pipeline stages and the VAE's resolution levels
  // (less memory, slower: the pages are faulted in again).
  bool release_between_levels = false;
};
const ComputePolicy& compute_policy();
void set_compute_policy(const ComputePolicy& policy);

// `policy` for the scope's lifetime, then the one before.
class PolicyScope {
 public:
  explicit PolicyScope(const ComputePolicy& policy) : saved_(compute_policy()) { set_compute_policy(policy); }
  ~PolicyScope() { set_compute_policy(saved_); }
  PolicyScope(const PolicyScope&) = delete;
  PolicyScope& operator=(const PolicyScope&) = delete;

 private:
  ComputePolicy saved_;
};

// The memory format the networks keep their activations in (see channels_last).
at::MemoryFormat activation_format();

// f16/bf16 weights are widened just before use (no f16 convolution on CPU here).
at::Tensor widen(const at::Tensor& w);
// A linear or convolution weight as f32: an int8 one times its per-output-channel
// scale, plus the LoRA's up @ down when one adapts it.
at::Tensor widen(const at::Tensor& w, const at::Tensor& scale, const LoraFactors& lora);

// x·wᵀ + b over x's last dimension, as at::linear. Many rows go through oneDNN as a
// 1x1 convolution in channels-last layout (no copies): 340-360 GFLOPS here whichever
// GEMM kernels OpenBLAS picked (with its Haswell ones, at::linear gets 170-190).
at::Tensor project(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b = {});

// Whether a layer with `rows` output positions applies its LoRA to its input, adding
// x·downᵀ·upᵀ to its output, rather than up·down to its weight: by default where that is
// fewer operations (few rows, large weights: the UNet's inner levels, the text encoder).
bool lora_on_input(const LoraFactors& lora, const at::Tensor& weight, int64_t rows);

struct PackedConvWeight;

struct Linear {
  at::Tensor weight, bias;
  at::Tensor weight_scale;  // set when the weight is stored as int8
  LoraFactors lora;         // set when a LoRA adapts it
  // The weight in oneDNN's layout (as a 1x1 convolution's), made at the first call.
  mutable std::shared_ptr<PackedConvWeight> packed;
  Linear() = default;
  Linear(ParamLoader& p, const std::string& name, int64_t in, int64_t out, bool has_bias = true);
  at::Tensor operator()(const at::Tensor& x) const;
  // For callers that widen once and apply the weight to several token chunks:
  // the LoRA merged in when with_lora, else added by add_lora() to each chunk's output.
  at::Tensor wide_weight(bool with_lora = true) const { return widen(weight, weight_scale, with_lora ? lora : LoraFactors{}); }
  void add_lora(const at::Tensor& x, at::Tensor& y) const;
  // Whether products go through the packed weight (resident, not int8, a LoRA applied
  // on the input rather than merged).
  bool packable(bool lora_on_input) const;
  // x·Wᵀ + b from the packed weight (no LoRA: see add_lora).
  at::Tensor packed_product(const at::Tensor& x) const;
};

// A token-wise function over [B, N, C] run on chunks of tokens so that its widest
// intermediate (`width` floats per token) stays within the policy's work_floats.
at::Tensor over_token_chunks(const at::Tensor& x, int64_t width,
                             const std::function<at::Tensor(const at::Tensor&)>& f);

struct GroupNorm {
  at::Tensor weight, bias;
  int64_t groups = 32;
  double eps = 1e-5;
  GroupNorm() = default;
  GroupNorm(ParamLoader& p, const std::string& name, int64_t groups, int64_t channels, double eps);
  at::Tensor operator()(const at::Tensor& x) const;
  // The normalisation as a per-channel affine map, x * scale + shift, with statistics
  // over the whole of x: tiles normalised with it match the untiled result.
  std::pair<at::Tensor, at::Tensor> affine(const at::Tensor& x) const;
};

// Channel-wise steps between a tensor and a convolution of it. Tiled convolutions
// apply them to each tile, so the full-size intermediate is never made.
struct ConvInput {
  const GroupNorm* norm = nullptr;
  enum Activation { kNone, kSilu, kRelu } activation = kNone;
  bool upsample2x = false;   // nearest-neighbour, as the decoders' upsamplers
  int64_t pad_end = 0;       // extra zeros after the last row and column (the VAE encoder)
};

struct Conv2d {
  at::Tensor weight, bias;
  at::Tensor weight_scale;  // set when the weight is stored as int8
  LoraFactors lora;         // set when a LoRA adapts it
  int64_t stride = 1, padding = 0;
  // The weight in oneDNN's layout, made at the first untiled call with resident weights.
  mutable std::shared_ptr<PackedConvWeight> packed;
  Conv2d() = default;
  Conv2d(ParamLoader& p, const std::string& name, int64_t in, int64_t out, int64_t kernel,
         int64_t stride = 1, int64_t padding = 0, bool has_bias = true);
  at::Tensor operator()(const at::Tensor& x, const ConvInput& input = {}) const;
};

struct LayerNorm {
  at::Tensor weight, bias;
  int64_t dim = 0;
  double eps = 1e-5;
  LayerNorm() = default;
  LayerNorm(ParamLoader& p, const std::string& name, int64_t dim, double eps);
  at::Tensor operator()(const at::Tensor& x) const;
};

// Multi-head scaled dot-product attention on [B, N, heads*D] tensors.
// `mask` (optional) is added to the scores, e.g. a causal mask of -inf.
at::Tensor attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, int64_t heads,
                     const at::Tensor& mask = {});

}  // namespace inpaint
