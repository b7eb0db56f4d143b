// The building blocks every network shares. Each holds its parameters as stored
// (f32, f16 or bf16 views of the mapped file) and widens them to f32 at use.
#pragma once
#include <ATen/ATen.h>

#include <functional>
#include <memory>
#include <string>

#include "engine/weights.h"
#include "models/compute.h"

namespace inpaint {

// f16/bf16 weights are widened just before use (no f16 convolution on CPU here).
at::Tensor widen(const Compute& c, const at::Tensor& w);
// A linear or convolution weight as f32: an int8 one times its per-output-channel
// scale, plus the LoRA's up @ down when one adapts it.
at::Tensor widen(const Compute& c, const at::Tensor& w, const at::Tensor& scale, const LoraFactors& lora);

// x·wᵀ + b over x's last dimension, as at::linear. Many rows go through oneDNN as a
// 1x1 convolution in channels-last layout (no copies): 340-360 GFLOPS here whichever
// GEMM kernels OpenBLAS picked (with its Haswell ones, at::linear gets 170-190).
at::Tensor project(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b = {});

// Whether a layer with `rows` output positions applies its LoRA to its input, adding
// x·downᵀ·upᵀ to its output, rather than up·down to its weight: by default where that is
// fewer operations (few rows, large weights: the UNet's inner levels, the text encoder).
bool lora_on_input(const Compute& c, const LoraFactors& lora, const at::Tensor& weight, int64_t rows);

struct PackedConvWeight;

// Under streamed weights (ComputePolicy::stream_weights), empties a layer's packed slot
// when the layer's call ends: the packed copy lives for one call.
class StreamedPacking {
 public:
  StreamedPacking(const Compute& c, const std::shared_ptr<PackedConvWeight>& slot);
  ~StreamedPacking();
  StreamedPacking(const StreamedPacking&) = delete;
  StreamedPacking& operator=(const StreamedPacking&) = delete;

 private:
  const std::shared_ptr<PackedConvWeight>& slot_;
  bool streamed_;
};

struct Linear {
  at::Tensor weight, bias;
  at::Tensor weight_scale;  // set when the weight is stored as int8
  LoraFactors lora;         // set when a LoRA adapts it
  // The weight in oneDNN's layout (as a 1x1 convolution's), made at the first call.
  mutable std::shared_ptr<PackedConvWeight> packed;
  Linear() = default;
  Linear(ParamLoader& p, const std::string& name, int64_t in, int64_t out, bool has_bias = true);
  // x f32, or bf16 (LayerNorm::for_products). `out_type` bf16: the result in bf16 where
  // the packed product makes it under bf16 products (for consumers that round it to
  // bf16 anyway), else f32 all the same.
  at::Tensor operator()(const Compute& c, const at::Tensor& x, at::ScalarType out_type = at::kFloat) const;
  // For callers that widen once and apply the weight to several token chunks:
  // the LoRA merged in when with_lora, else added by add_lora() to each chunk's output.
  at::Tensor wide_weight(const Compute& c, bool with_lora = true) const {
    return widen(c, weight, weight_scale, with_lora ? lora : LoraFactors{});
  }
  void add_lora(const at::Tensor& x, at::Tensor& y) const;
  // residual += (*this)(c, x), in place (residual f32 [..., out]). With bf16 products
  // the packed product adds itself (no f32 output written and read again).
  void add_to(const Compute& c, const at::Tensor& x, at::Tensor& residual) const;
  // Whether products go through the packed weight (resident, not int8, a LoRA applied
  // on the input rather than merged).
  bool packable(const Compute& c, bool lora_on_input) const;
  // x·Wᵀ + b from the packed weight (no LoRA: see add_lora); x and the result as
  // operator() takes and makes them.
  at::Tensor packed_product(const Compute& c, const at::Tensor& x, at::ScalarType out_type = at::kFloat) const;

 private:
  // The packed 1x1 convolution over x's rows, into `out` (contiguous [..., out], of
  // rows x out elements; undefined: a new f32 one), added to what it holds when
  // `accumulate`. Undefined where oneDNN does not run it so.
  at::Tensor packed_rows(const Compute& c, const at::Tensor& x, const at::Tensor& out, bool accumulate) const;
};

// A token-wise function over [B, N, C] run on chunks of tokens so that its widest
// intermediate (`width` floats per token) stays within the policy's work_floats.
at::Tensor over_token_chunks(const Compute& c, const at::Tensor& x, int64_t width,
                             const std::function<at::Tensor(const at::Tensor&)>& f);
// The same added to `residual` ([B, N, C'], of f's output size) chunk by chunk, in place
// (no concatenation, and each chunk's sum while it is in the cache); a non-contiguous
// residual is replaced by the sum.
void add_over_token_chunks(const Compute& c, const at::Tensor& x, int64_t width,
                           const std::function<at::Tensor(const at::Tensor&)>& f, at::Tensor& residual);

struct GroupNorm {
  at::Tensor weight, bias;
  int64_t groups = 32;
  double eps = 1e-5;
  GroupNorm() = default;
  GroupNorm(ParamLoader& p, const std::string& name, int64_t groups, int64_t channels, double eps);
  at::Tensor operator()(const Compute& c, const at::Tensor& x) const;
  // The normalisation as a per-channel affine map, x * scale + shift, with statistics
  // over the whole of x: tiles normalised with it match the untiled result.
  std::pair<at::Tensor, at::Tensor> affine(const Compute& c, const at::Tensor& x) const;
};

// Channel-wise steps between a tensor and a convolution of it. Tiled convolutions
// apply them to each tile, so the full-size intermediate is never made.
struct ConvInput {
  const GroupNorm* norm = nullptr;
  enum Activation { kNone, kSilu, kRelu } activation = kNone;
  bool upsample2x = false;   // nearest-neighbour, as the decoders' upsamplers
  int64_t pad_end = 0;       // extra zeros after the last row and column (the VAE encoder)
};

// x as the networks keep activations (Compute::activation_format()), in a form the
// kernels recognise as such. libtorch's contiguous(format) keeps a tensor whose size-1
// dimensions have other strides: an image [1, 3, H, W] from HWC pixels has a batch
// stride of 3, passes as channels last, yet suggests NCHW, and every convolution after it
// then converted its output to NCHW and its input back (the VAE's encode of a 512x512
// photo: fp32 3.0 -> 1.6 s, bf16 1.6 -> 1.3 s; TAESD's 0.23 -> 0.16 s).
at::Tensor as_activations(const Compute& c, const at::Tensor& x);

// y + x written over y (y holds the sum's type), then max(0, ·) where `relu`: for
// activations stored as f16 in one vector pass (models/kernels/f16_arithmetic.h).
at::Tensor add_in_place(at::Tensor y, const at::Tensor& x, bool relu = false);

// max(0, y), written over y (returned); f16 activations (kept so under --max-memory) too,
// which libtorch 1.13 has no relu for on the CPU.
at::Tensor relu_in_place(at::Tensor y);

// Steps on a convolution's result. Under bf16 products, on packed weights, the kernel
// takes them as it writes the result (no pass of their own); elsewhere they follow it.
struct ConvOutput {
  bool relu = false;  // max(0, y)
  bool bf16 = false;  // y may be bf16 (under bf16 products only): for a bf16 product after it
};

struct Conv2d {
  at::Tensor weight, bias;
  at::Tensor weight_scale;  // set when the weight is stored as int8
  LoraFactors lora;         // set when a LoRA adapts it
  int64_t stride = 1, padding = 0;
  // The weight in oneDNN's layout, made at the first untiled call with resident weights.
  mutable std::shared_ptr<PackedConvWeight> packed;
  // Or in parts of its input channels, where those run faster (input_parts in
  // models/kernels/packed_conv.h).
  mutable std::vector<std::shared_ptr<PackedConvWeight>> packed_parts;
  Conv2d() = default;
  Conv2d(ParamLoader& p, const std::string& name, int64_t in, int64_t out, int64_t kernel,
         int64_t stride = 1, int64_t padding = 0, bool has_bias = true);
  at::Tensor operator()(const Compute& c, const at::Tensor& x, const ConvInput& input = {},
                        const ConvOutput& output = {}) const;
};

struct LayerNorm {
  at::Tensor weight, bias;
  int64_t dim = 0;
  double eps = 1e-5;
  LayerNorm() = default;
  LayerNorm(ParamLoader& p, const std::string& name, int64_t dim, double eps);
  at::Tensor operator()(const Compute& c, const at::Tensor& x) const;
  // The same as the products after it take it: bf16 under bf16 products (one pass:
  // models/kernels/norm_bf16.h), else f32. For Linear layers' inputs only.
  at::Tensor for_products(const Compute& c, const at::Tensor& x) const;
};

// Multi-head scaled dot-product attention on [B, N, heads*D] tensors (f32, or bf16 as
// attention_input_type says). The result is f32, or bf16 where attention_input_type is
// (for the projection after it, which rounds its input to bf16 anyway).
// `mask` (optional) is added to the scores, e.g. a causal mask of -inf.
at::Tensor attention(const Compute& c, const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, int64_t heads,
                     const at::Tensor& mask = {});
// bf16 where unmasked attention over heads of `head_dim` channels rounds its inputs to
// bf16 (bf16_attention: AMX tiles or AVX512-BF16): projections may make them so. Else f32.
at::ScalarType attention_input_type(const Compute& c, int64_t head_dim);

}  // namespace inpaint
