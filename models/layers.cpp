#include "models/layers.h"

#include <cmath>

#include "engine/read_checks.h"
#include "engine/safetensors.h"
#include "models/kernels/f16_arithmetic.h"
#include "models/kernels/conv_bands.h"
#include "models/kernels/bf16_attention.h"
#include "models/kernels/fused_attention.h"
#include "models/kernels/norm_bf16.h"
#include "models/op_profile.h"
#include "models/kernels/packed_conv.h"

namespace inpaint {
namespace {

// Streamed weights are widened into a few fixed buffers reused layer after layer:
// fresh allocations of every size would fragment the heap by hundreds of MB.
// Larger weights are split by output channel (see by_output_chunks).
at::Tensor pooled_float_buffer(const ComputePolicy& policy, int64_t numel) {
  static std::vector<at::Tensor> slots;
  const int64_t slot = policy.weight_slot_floats;
  if (numel < slot / 32 || numel > slot) return at::empty({numel});
  for (const at::Tensor& s : slots)  // a slot no view of which is alive
    if (s.numel() >= numel && s.storage().use_count() == 1) return s.narrow(0, 0, numel);
  if (slots.size() >= 4) return at::empty({numel});
  slots.push_back(at::empty({slot}));
  return slots.back().narrow(0, 0, numel);
}

// f(weight chunk, bias chunk) over output-channel chunks that each widen into one
// buffer, concatenated on `dim` of the results. One call when weights are not streamed.
at::Tensor by_output_chunks(const Compute& c, const at::Tensor& weight, const at::Tensor& scale, const LoraFactors& lora,
                            const at::Tensor& bias, int64_t dim,
                            const std::function<at::Tensor(const at::Tensor&, const at::Tensor&)>& f) {
  if (!c.policy.stream_weights || weight.numel() <= c.policy.weight_slot_floats)
    return f(widen(c, weight, scale, lora), widen(c, bias));
  const int64_t per_channel = weight.numel() / weight.size(0);
  const int64_t chunk = std::max<int64_t>(1, c.policy.weight_slot_floats / per_channel);
  std::vector<at::Tensor> parts;
  for (int64_t o = 0; o < weight.size(0); o += chunk) {
    const int64_t n = std::min(chunk, weight.size(0) - o);
    const LoraFactors rows = lora.defined() ? LoraFactors{lora.up.narrow(0, o, n), lora.down} : lora;
    parts.push_back(f(widen(c, weight.narrow(0, o, n), scale.defined() ? scale.narrow(0, o, n) : scale, rows),
                      bias.defined() ? widen(c, bias.narrow(0, o, n)) : bias));
  }
  return at::cat(parts, dim);
}
}  // namespace

at::Tensor widen(const Compute& c, const at::Tensor& w) {
  if (!w.defined()) return w;
  check_before_read(w);
  OpTimer timer(OpClass::widen, 0);
  if (!c.policy.stream_weights) return w.scalar_type() == at::kFloat ? w : w.to(at::kFloat);
  at::Tensor wide = pooled_float_buffer(c.policy, w.numel()).view(w.sizes());
  wide.copy_(w);
  release_mapped_pages(w.data_ptr(), w.nbytes());
  return wide;
}

at::Tensor widen(const Compute& c, const at::Tensor& w, const at::Tensor& scale, const LoraFactors& lora) {
  if (!scale.defined() && !lora.defined()) return widen(c, w);
  OpTimer timer(OpClass::widen, lora.defined() ? 2.0 * double(w.numel()) * double(lora.up.size(1)) : 0.0);
  at::Tensor wide;
  if (scale.defined()) {  // read here; the other branch reads through widen(c, w)
    check_before_read(w);
    std::vector<int64_t> per_row(size_t(w.dim()), 1);
    per_row[0] = w.size(0);
    wide = c.policy.stream_weights ? pooled_float_buffer(c.policy, w.numel()).view(w.sizes()) : at::empty(w.sizes());
    wide.copy_(w).mul_(scale.view(per_row));
    if (c.policy.stream_weights) release_mapped_pages(w.data_ptr(), w.nbytes());
  } else {
    wide = widen(c, w);
    if (wide.data_ptr() == w.data_ptr()) wide = wide.clone();  // an f32 weight is the mapped file itself
  }
  if (lora.defined()) wide.view({w.size(0), -1}).addmm_(lora.up, lora.down);
  return wide;
}

namespace {
// A layer's packed-weight slot, recorded under its weight's name when the loader collects them.
std::shared_ptr<PackedConvWeight> packed_slot(ParamLoader& p, const std::string& weight_name) {
  PackedSlots* slots = p.packed_slots();
  return slots ? (*slots)[weight_name] = new_packed_slot() : nullptr;
}
}  // namespace

Linear::Linear(ParamLoader& p, const std::string& name, int64_t in, int64_t out, bool has_bias)
    : packed(packed_slot(p, join(name, "weight"))) {
  weight = p.take_matrix(join(name, "weight"), {out, in}, &weight_scale, &lora);
  if (has_bias) bias = p.take(join(name, "bias"), {out});
}

namespace {
// conv(x's rows as the pixels of a [1, in, rows, 1] image, channels last: x's own memory)
// as rows again, for a 1x1 convolution `conv`; undefined when conv's result is.
at::Tensor rows_through_1x1(const at::Tensor& x, const std::function<at::Tensor(const at::Tensor&)>& conv) {
  const int64_t in = x.size(-1), rows = x.numel() / in;
  const at::Tensor y = conv(x.reshape({1, rows, 1, in}).permute({0, 3, 1, 2}));
  if (!y.defined()) return y;
  std::vector<int64_t> shape = x.sizes().vec();
  shape.back() = y.size(1);
  return y.permute({0, 2, 3, 1}).reshape(shape);
}
}  // namespace

at::Tensor project(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b) {
  constexpr int64_t kMinRows = 128;  // fewer: OpenBLAS is as fast, without oneDNN's set-up
  const int64_t in = x.size(-1), rows = x.numel() / in, out = w.size(0);
  if (rows < kMinRows || x.scalar_type() != at::kFloat || !w.is_contiguous()) return at::linear(x, w, b);
  return rows_through_1x1(x, [&](const at::Tensor& image) { return at::conv2d(image, w.view({out, in, 1, 1}), b); });
}

bool lora_on_input(const Compute& c, const LoraFactors& lora, const at::Tensor& weight, int64_t rows) {
  if (!lora.defined() || c.policy.lora_mode == ComputePolicy::kLoraMerge) return false;
  if (c.policy.lora_mode == ComputePolicy::kLoraOnInput) return true;
  // rows * (in + out) * rank operations on the input against out * in * rank to merge
  // (at every call: weights are widened per call).
  const double out = double(weight.size(0)), in = double(weight.numel()) / out;
  return double(rows) * (in + out) < out * in;
}

namespace {
double lora_input_flops(const LoraFactors& lora, const at::Tensor& weight, int64_t rows) {
  return 2.0 * double(rows) * double(lora.up.size(1)) * (double(weight.numel() / weight.size(0)) + double(weight.size(0)));
}
}  // namespace

void Linear::add_lora(const at::Tensor& x, at::Tensor& y) const {
  OpTimer timer(OpClass::linear, lora_input_flops(lora, weight, x.numel() / x.size(-1)));
  y.add_(project(project(x, lora.down), lora.up));
}

namespace {
// Whether a layer's products go through its packed weight (models/kernels/packed_conv.h):
// not int8, and a LoRA (if any) applied on the input, not merged. Streamed weights are
// packed per call (StreamedPacking).
bool use_packed(const Compute& c, const at::Tensor& weight_scale, const LoraFactors& lora, bool lora_on_input) {
  return c.policy.packed_convolutions && !weight_scale.defined() &&
         (lora_on_input || !lora.defined());
}
}  // namespace

StreamedPacking::StreamedPacking(const Compute& c, const std::shared_ptr<PackedConvWeight>& slot)
    : slot_(slot), streamed_(c.policy.stream_weights) {}

StreamedPacking::~StreamedPacking() {
  if (streamed_ && slot_) drop_packed(*slot_);
}

bool Linear::packable(const Compute& c, bool lora_on_input) const { return use_packed(c, weight_scale, lora, lora_on_input); }

at::Tensor Linear::packed_rows(const Compute& c, const at::Tensor& x, const at::Tensor& out, bool accumulate) const {
  const int64_t out_channels = weight.size(0);
  // `out` [rows, out_channels] as the output image rows_through_1x1 reads: channels last.
  const at::Tensor image_out = out.defined() ? out.view({1, -1, 1, out_channels}).permute({0, 3, 1, 2}) : out;
  return rows_through_1x1(x, [&](const at::Tensor& image) {
    return packed_conv2d(c, image, weight.view({out_channels, weight.size(1), 1, 1}), widen(c, bias), 1, 0, packed,
                         nullptr, image_out, accumulate);
  });
}

at::Tensor Linear::packed_product(const Compute& c, const at::Tensor& x, at::ScalarType out_type) const {
  const bool bf16_out = out_type == at::kBFloat16 && c.precision == Precision::bf16;
  const at::Tensor out = bf16_out ? at::empty({x.numel() / x.size(-1), weight.size(0)}, at::kBFloat16) : at::Tensor();
  const at::Tensor y = packed_rows(c, x, out, /*accumulate=*/false);
  return y.defined() ? y : project(x.to(at::kFloat), widen(c, weight), widen(c, bias));
}

at::Tensor Linear::operator()(const Compute& c, const at::Tensor& x, at::ScalarType out_type) const {
  const StreamedPacking once(c, packed);
  const bool on_input = lora_on_input(c, lora, weight, x.numel() / x.size(-1));
  OpTimer timer(OpClass::linear, 2.0 * double(x.numel()) * double(weight.size(0)));
  const bool packed_path = packable(c, on_input);
  // A bf16 input (LayerNorm::for_products) goes to the packed product as it is; f32 elsewhere.
  const at::Tensor wide = (!packed_path || on_input) ? x.to(at::kFloat) : x;
  at::Tensor y = packed_path
                     ? packed_product(c, x, on_input ? at::kFloat : out_type)
                     : by_output_chunks(c, weight, weight_scale, on_input ? LoraFactors{} : lora, bias, -1,
                                        [&](const at::Tensor& w, const at::Tensor& b) { return project(wide, w, b); });
  if (on_input) add_lora(wide, y);
  return y;
}

void Linear::add_to(const Compute& c, const at::Tensor& x, at::Tensor& residual) const {
  const StreamedPacking once(c, packed);
  const int64_t rows = x.numel() / x.size(-1), out = weight.size(0);
  const bool on_input = lora_on_input(c, lora, weight, rows);
  if (c.precision == Precision::bf16 && packable(c, on_input) && !on_input && residual.is_contiguous() &&
      residual.scalar_type() == at::kFloat && residual.numel() == rows * out) {
    OpTimer timer(OpClass::linear, 2.0 * double(x.numel()) * double(out));
    if (packed_rows(c, x, residual, /*accumulate=*/true).defined()) return;
  }
  residual.add_((*this)(c, x));
}

at::Tensor over_token_chunks(const Compute& c, const at::Tensor& x, int64_t width,
                             const std::function<at::Tensor(const at::Tensor&)>& f) {
  const int64_t b = x.size(0), n = x.size(1);
  const int64_t chunk = std::max<int64_t>(1, c.policy.work_floats / std::max<int64_t>(1, width));
  if (b * n <= chunk) return f(x);
  const at::Tensor flat = x.reshape({1, b * n, x.size(2)});
  std::vector<at::Tensor> parts;
  for (int64_t start = 0; start < b * n; start += chunk)
    parts.push_back(f(flat.narrow(1, start, std::min(chunk, b * n - start))));
  return at::cat(parts, 1).reshape({b, n, -1});
}

void add_over_token_chunks(const Compute& c, const at::Tensor& x, int64_t width,
                           const std::function<at::Tensor(const at::Tensor&)>& f, at::Tensor& residual) {
  const int64_t b = x.size(0), n = x.size(1);
  if (!residual.is_contiguous()) {  // a sum of permuted (NCHW) activations: added as a whole
    residual = residual + over_token_chunks(c, x, width, f);
    return;
  }
  const int64_t chunk = std::max<int64_t>(1, c.policy.work_floats / std::max<int64_t>(1, width));
  if (b * n <= chunk) {
    residual.add_(f(x));
    return;
  }
  const at::Tensor flat = x.reshape({1, b * n, x.size(2)});
  const at::Tensor sums = residual.view({1, b * n, residual.size(2)});
  for (int64_t start = 0; start < b * n; start += chunk) {
    const int64_t len = std::min(chunk, b * n - start);
    sums.narrow(1, start, len).add_(f(flat.narrow(1, start, len)));
  }
}

Conv2d::Conv2d(ParamLoader& p, const std::string& name, int64_t in, int64_t out, int64_t kernel,
               int64_t stride_, int64_t padding_, bool has_bias)
    : stride(stride_), padding(padding_), packed(packed_slot(p, join(name, "weight"))) {
  weight = p.take_matrix(join(name, "weight"), {out, in, kernel, kernel}, &weight_scale, &lora);
  if (has_bias) bias = p.take(join(name, "bias"), {out});
  const int64_t parts = input_parts_of(kernel, in);
  for (int64_t i = 0; parts > 1 && i < parts; ++i)
    packed_parts.push_back(packed_slot(p, input_part_name(join(name, "weight"), i, parts)));
}

namespace {

at::Tensor activate(at::Tensor t, ConvInput::Activation a) {
  if (a == ConvInput::kSilu) return at::silu(t);
  if (a == ConvInput::kRelu) return at::relu(t);
  return t;
}

// The input steps on the whole tensor, exactly as the networks write them.
at::Tensor prepare_whole(const Compute& c, const at::Tensor& stored, const ConvInput& in) {
  const at::Tensor x = stored.to(at::kFloat);
  at::Tensor t = activate(in.norm ? (*in.norm)(c, x) : x, in.activation);
  if (in.upsample2x) t = at::upsample_nearest2d(t, {t.size(2) * 2, t.size(3) * 2});
  if (in.pad_end) t = at::constant_pad_nd(t, {0, in.pad_end, 0, in.pad_end});
  return t;
}

// x (channels last) upsampled 2x by nearest neighbours and rounded to bf16 in one pass:
// each pixel's channels copied to a 2x2 square.
at::Tensor upsample2x_bf16(const at::Tensor& x) {
  const int64_t b = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
  at::Tensor up = at::empty({b, c, 2 * h, 2 * w}, x.options().dtype(at::kBFloat16).memory_format(at::MemoryFormat::ChannelsLast));
  up.permute({0, 2, 3, 1}).view({b, h, 2, w, 2, c}).copy_(x.permute({0, 2, 3, 1}).view({b, h, 1, w, 1, c}).expand({b, h, 2, w, 2, c}));
  return up;
}

// x (channels last) with `pad` rows and columns of zeros after its last ones, rounded to
// bf16 in one pass.
at::Tensor pad_end_bf16(const at::Tensor& x, int64_t pad) {
  const int64_t h = x.size(2), w = x.size(3);
  at::Tensor padded = at::empty({x.size(0), x.size(1), h + pad, w + pad},
                                x.options().dtype(at::kBFloat16).memory_format(at::MemoryFormat::ChannelsLast));
  padded.narrow(2, h, pad).zero_();
  padded.narrow(2, 0, h).narrow(3, w, pad).zero_();
  padded.narrow(2, 0, h).narrow(3, 0, w).copy_(x);
  return padded;
}

// The input steps written as bf16 for bf16 products where one kernel does them all
// (GroupNorm and SiLU, models/kernels/norm_bf16.h; upsampling or end padding alone);
// undefined elsewhere.
at::Tensor prepare_bf16(const Compute& c, const at::Tensor& x, const ConvInput& in) {
  if (c.precision != Precision::bf16) return {};
  const bool no_steps = !in.norm && in.activation == ConvInput::kNone && !in.upsample2x && !in.pad_end;
  if (no_steps && x.scalar_type() == at::kBFloat16) return x;  // a product's bf16 result (ConvOutput::bf16)
  const bool steps_alone = !in.norm && in.activation == ConvInput::kNone && x.dim() == 4 &&
                           x.is_contiguous(at::MemoryFormat::ChannelsLast);
  if (steps_alone && in.upsample2x && !in.pad_end) return upsample2x_bf16(x);
  if (steps_alone && in.pad_end && !in.upsample2x) return pad_end_bf16(x, in.pad_end);
  if (!in.norm || in.upsample2x || in.pad_end || (in.activation != ConvInput::kSilu && in.activation != ConvInput::kNone))
    return {};
  OpTimer timer(OpClass::norm, 0);
  return group_norm_bf16(x, in.norm->groups, widen(c, in.norm->weight), widen(c, in.norm->bias), in.norm->eps,
                         in.activation == ConvInput::kSilu);
}

// Input floats per band of a banded convolution (see conv_bands.h): 32 MB. The Winograd
// kernel wants tall bands: a 512x512 VAE decode took 9.0-9.4 s in bands of 2M floats,
// 5.5 s of 8M, 5.2 s of 32M (more memory: the kernel's working memory grows with the
// band). The direct kernel decodes 2-4 % faster in bands of 2M-4M than of 16M.
constexpr int64_t kBandFloats = int64_t(8) << 20;

int64_t tile_side(const ComputePolicy& policy, int64_t unfolded_per_pixel) {
  if (policy.conv_tile > 0) return policy.conv_tile;
  const auto side = static_cast<int64_t>(std::sqrt(double(policy.work_floats) / double(unfolded_per_pixel)));
  return std::max<int64_t>(16, side / 8 * 8);
}

}  // namespace

at::Tensor as_activations(const Compute& c, const at::Tensor& x) {
  const at::MemoryFormat format = c.activation_format();
  if (x.is_contiguous(format) && x.suggest_memory_format() == format) return x;
  return at::empty(x.sizes(), x.options().memory_format(format)).copy_(x);
}

at::Tensor add_in_place(at::Tensor y, const at::Tensor& x, bool relu) {
  if (add_f16(y, x, relu)) return y;
  y.add_(x);
  return relu ? relu_in_place(y) : y;
}

at::Tensor relu_in_place(at::Tensor y) {
  if (y.scalar_type() != at::kHalf)
    y.relu_();
  else if (!relu_f16(y))
    y.masked_fill_(y.lt(0), 0);
  return y;
}

at::Tensor Conv2d::operator()(const Compute& c, const at::Tensor& x, const ConvInput& in, const ConvOutput& o) const {
  const StreamedPacking once(c, packed);
  const ComputePolicy& policy = c.policy;
  const int64_t k = weight.size(2), up = in.upsample2x ? 2 : 1;
  // The input as the convolution sees it: upsampled, then padded.
  const int64_t hu = x.size(2) * up, wu = x.size(3) * up;
  const int64_t ho = (hu + in.pad_end + 2 * padding - k) / stride + 1;
  const int64_t wo = (wu + in.pad_end + 2 * padding - k) / stride + 1;
  const int64_t unfolded = weight.size(1) * k * k;
  const int64_t side = tile_side(policy, unfolded);
  const int64_t out_numel = x.size(0) * weight.size(0) * ho * wo;
  const bool half = policy.half_storage_above > 0 && out_numel > policy.half_storage_above;
  // bf16 products read a bf16 copy of the whole input, with no unfolding: whole where
  // that copy (half an f32 one) fits the bound, as the decoders' large ones at 512x512
  // (decode 2.6 -> 1.8 s there). Only where the policy keeps activations in f32: the
  // memory-bound policies (f16 storage) keep their tiles, as SDXL's streamed decode,
  // whose peak this route raised from 1.71 to 2.36 GB for no speed.
  const bool packable = use_packed(c, weight_scale, lora, false);  // neither int8 nor a LoRA
  const bool bf16_whole = c.precision == Precision::bf16 && policy.half_storage_above == 0 && packable &&
                          x.numel() * up * up / 2 <= policy.tile_above_floats;
  const bool whole = ((unfolded * ho * wo <= policy.tile_above_floats || bf16_whole) && !half) || (ho <= side && wo <= side);
  // Tiled convolutions (the decoders') merge a LoRA: their weights are widened once per call.
  const int64_t pixels = x.size(0) * ho * wo;
  const bool on_input = whole && lora_on_input(c, lora, weight, pixels);
  OpTimer timer(OpClass::conv, 2.0 * double(out_numel) * double(unfolded) +
                                   (on_input ? lora_input_flops(lora, weight, pixels) : 0.0));
  if (whole) {
    const bool packed_path = use_packed(c, weight_scale, lora, on_input);
    at::Tensor t = packed_path && !on_input ? prepare_bf16(c, x, in) : at::Tensor();
    if (!t.defined()) t = prepare_whole(c, x, in);
    at::Tensor y;
    if (packed_path && !on_input && input_parts(c, weight) > 1)
      y = packed_conv2d_in_parts(c, t, weight, widen(c, bias), stride, padding, packed_parts);
    // The output's steps taken by the kernel (bf16 products only: fp32 keeps its kernels).
    const bool fused = c.precision == Precision::bf16 && packed_path && !on_input && (o.relu || o.bf16);
    if (fused && !y.defined()) {
      const at::MemoryFormat format = t.suggest_memory_format();
      const at::Tensor out = o.bf16 ? at::empty({x.size(0), weight.size(0), ho, wo},
                                                t.options().dtype(at::kBFloat16).memory_format(format))
                                    : at::Tensor();
      y = packed_conv2d(c, t, weight, widen(c, bias), stride, padding, packed, nullptr, out, false, o.relu);
      if (y.defined()) return y;
    }
    if (packed_path && !y.defined()) y = packed_conv2d(c, t, weight, widen(c, bias), stride, padding, packed);
    if (!y.defined()) {
      t = t.to(at::kFloat);
      y = by_output_chunks(c, weight, weight_scale, on_input ? LoraFactors{} : lora, bias, 1,
                           [&](const at::Tensor& w, const at::Tensor& b) {
                             return at::conv2d(t, w, b, {stride, stride}, {padding, padding});
                           });
    }
    if (on_input) {
      const int64_t rank = lora.up.size(1);
      const at::Tensor reduced = at::conv2d(t, lora.down.view({rank, weight.size(1), k, k}), {}, {stride, stride}, {padding, padding});
      y.add_(at::conv2d(reduced, lora.up.view({weight.size(0), rank, 1, 1})));
    }
    if (o.relu) relu_in_place(y);
    return y;
  }

  // Tiled convolutions are the decoders' (weights of a few MB): widened once per call,
  // from the packed weight where it is used.
  at::Tensor scale, shift;  // once, for the bands or the tiles
  if (in.norm) std::tie(scale, shift) = in.norm->affine(c, x);
  if (policy.conv_bands && packable && bands_apply(x, in, k, stride, padding)) {
    at::Tensor y = conv_in_bands(c, x, in, scale, shift, weight, widen(c, bias), packed,
                                 std::min(kBandFloats, policy.work_floats), policy.conv_tile,
                                 half ? at::kHalf : at::kFloat);
    if (y.defined()) {
      if (o.relu) relu_in_place(y);
      return y;
    }
  }
  at::Tensor packed_wide;
  at::Tensor w = packable ? at::Tensor() : widen(c, weight, weight_scale, lora);  // else widened if needed
  const at::Tensor b = widen(c, bias);
  at::Tensor out = at::empty({x.size(0), weight.size(0), ho, wo},
                             x.options().dtype(half ? at::kHalf : at::kFloat).memory_format(x.suggest_memory_format()));
  // Rows [lo, hi) of the padded, upsampled input that output rows [o0, o1) read, as a
  // slice of x plus the zeros to add on either side.
  struct Span { int64_t src0, src_len, crop0, len, zeros_before, zeros_after; };
  auto span = [&](int64_t o0, int64_t o1, int64_t size_up) {
    const int64_t lo = o0 * stride - padding, hi = (o1 - 1) * stride + k - padding;
    const int64_t a = std::max<int64_t>(lo, 0), z = std::min(hi, size_up);
    const int64_t src0 = a / up, src1 = (z + up - 1) / up;
    return Span{src0, src1 - src0, a - src0 * up, z - a, a - lo, hi - z};
  };
  // As few tiles as `side` allows, of even sizes: one kernel plan serves them all, and
  // no narrow last tile runs at a fraction of the speed.
  auto even = [&](int64_t size) { const int64_t n = (size + side - 1) / side; return (size + n - 1) / n; };
  const int64_t side_y = even(ho), side_x = even(wo);
  for (int64_t oy = 0; oy < ho; oy += side_y) {
    const int64_t oy1 = std::min(ho, oy + side_y);
    const Span sy = span(oy, oy1, hu);
    for (int64_t ox = 0; ox < wo; ox += side_x) {
      const int64_t ox1 = std::min(wo, ox + side_x);
      const Span sx = span(ox, ox1, wu);
      at::Tensor t = x.narrow(2, sy.src0, sy.src_len).narrow(3, sx.src0, sx.src_len).to(at::kFloat);
      if (in.norm) t = t * scale + shift;
      t = activate(t, in.activation);
      if (up > 1) t = at::upsample_nearest2d(t, {t.size(2) * up, t.size(3) * up});
      t = t.narrow(2, sy.crop0, sy.len).narrow(3, sx.crop0, sx.len);
      t = at::constant_pad_nd(t, {sx.zeros_before, sx.zeros_after, sy.zeros_before, sy.zeros_after});
      at::Tensor y = packable ? packed_conv2d(c, t, weight, b, stride, 0, packed, &packed_wide) : at::Tensor();
      if (!y.defined()) {
        if (!w.defined()) w = widen(c, weight);
        y = at::conv2d(t, w, b, {stride, stride});
      }
      out.narrow(2, oy, oy1 - oy).narrow(3, ox, ox1 - ox).copy_(y);
    }
  }
  if (o.relu) relu_in_place(out);
  return out;
}

GroupNorm::GroupNorm(ParamLoader& p, const std::string& name, int64_t groups_, int64_t channels,
                     double eps_)
    : groups(groups_), eps(eps_) {
  weight = p.take(join(name, "weight"), {channels});
  bias = p.take(join(name, "bias"), {channels});
}

at::Tensor GroupNorm::operator()(const Compute& c, const at::Tensor& x) const {
  OpTimer timer(OpClass::norm, 0);
  return at::group_norm(x, groups, widen(c, weight), widen(c, bias), eps);
}

std::pair<at::Tensor, at::Tensor> GroupNorm::affine(const Compute& compute, const at::Tensor& x) const {
  OpTimer timer(OpClass::norm, 0);
  const int64_t b = x.size(0), c = x.size(1);
  // Per-channel sums and sums of squares. Channels last (f32 or f16): in one AVX-512 pass
  // (channel_sums, where it applies). Elsewhere band by band of rows (f16 storage is
  // widened one band at a time; a squared band is the only temporary): within a band in
  // float (libtorch's cascade sum, whose error stays near float's epsilon; a sum to double
  // directly takes a scalar path, 200x slower), across bands in double, so the error does
  // not grow with the tensor.
  std::vector<double> channel_sum, channel_squares;
  at::Tensor sum, squares;
  if (channel_sums(x, channel_sum, channel_squares)) {
    sum = at::tensor(channel_sum, at::kDouble).view({b, c});
    squares = at::tensor(channel_squares, at::kDouble).view({b, c});
  } else {
    sum = at::zeros({b, c}, at::kDouble);
    squares = at::zeros({b, c}, at::kDouble);
    const int64_t band = std::max<int64_t>(1, (int64_t(4) << 20) / std::max<int64_t>(1, b * c * x.size(3)));
    const bool nhwc = x.suggest_memory_format() == at::MemoryFormat::ChannelsLast;
    for (int64_t r = 0; r < x.size(2); r += band) {
      at::Tensor part = x.narrow(2, r, std::min(band, x.size(2) - r)).to(at::kFloat);
      // Channels last: a band is pixels x channels rows, summed down its columns.
      if (nhwc) part = part.permute({0, 2, 3, 1}).reshape({b, -1, c});
      const std::vector<int64_t> pixels = nhwc ? std::vector<int64_t>{1} : std::vector<int64_t>{2, 3};
      sum += part.sum(pixels).to(at::kDouble);
      squares += part.square().sum(pixels).to(at::kDouble);
    }
  }
  const double count = double(x.numel() / (b * groups));
  const at::Tensor mean = sum.view({b, groups, -1}).sum(2) / count;
  const at::Tensor var = (squares.view({b, groups, -1}).sum(2) / count - mean.square()).clamp_min(0.0);
  const at::Tensor rstd = (var + eps).rsqrt().repeat_interleave(c / groups, 1);
  const at::Tensor scale = rstd * widen(compute, weight).to(at::kDouble);
  const at::Tensor shift = widen(compute, bias).to(at::kDouble) - mean.repeat_interleave(c / groups, 1) * scale;
  return {scale.to(at::kFloat).view({b, c, 1, 1}), shift.to(at::kFloat).view({b, c, 1, 1})};
}

LayerNorm::LayerNorm(ParamLoader& p, const std::string& name, int64_t dim_, double eps_)
    : dim(dim_), eps(eps_) {
  weight = p.take(join(name, "weight"), {dim});
  bias = p.take(join(name, "bias"), {dim});
}

at::Tensor LayerNorm::operator()(const Compute& c, const at::Tensor& x) const {
  OpTimer timer(OpClass::norm, 0);
  return at::layer_norm(x, {dim}, widen(c, weight), widen(c, bias), eps);
}

at::Tensor LayerNorm::for_products(const Compute& c, const at::Tensor& x) const {
  if (c.precision == Precision::bf16) {
    OpTimer timer(OpClass::norm, 0);
    const at::Tensor y = layer_norm_bf16(x, widen(c, weight), widen(c, bias), eps);
    if (y.defined()) return y;
  }
  return (*this)(c, x);
}

namespace {

// Keys in chunks with a running max and sum (the online softmax): scores never exceed
// q_len x k_len per head, whatever the token count.
at::Tensor attention_key_chunked(const at::Tensor& q, const at::Tensor& kt, const at::Tensor& v,
                                 const at::Tensor& mask, double scale, int64_t k_chunk) {
  const int64_t nk = kt.size(2);
  at::Tensor running_max = at::full({q.size(0), q.size(1), 1}, -INFINITY, q.options());
  at::Tensor running_sum = at::zeros_like(running_max);
  at::Tensor acc = at::zeros({q.size(0), q.size(1), v.size(2)}, q.options());
  for (int64_t k0 = 0; k0 < nk; k0 += k_chunk) {
    const int64_t len = std::min(k_chunk, nk - k0);
    at::Tensor scores = at::bmm(q, kt.narrow(2, k0, len)).mul_(scale);
    if (mask.defined()) scores.add_(mask.narrow(1, k0, len));
    at::Tensor new_max = at::maximum(running_max, std::get<0>(scores.max(-1, true)));
    // Rows still all -inf (masked) keep a finite reference so that exp() gives 0, not NaN.
    new_max.masked_fill_(at::isinf(new_max), 0.0);
    scores.sub_(new_max).exp_();
    const at::Tensor correction = (running_max - new_max).exp_();
    running_sum.mul_(correction).add_(scores.sum(-1, true));
    acc.mul_(correction).add_(at::bmm(scores, v.narrow(1, k0, len)));
    running_max = new_max;
  }
  return acc.div_(running_sum);
}

}  // namespace

at::ScalarType attention_input_type(const Compute& c, int64_t head_dim) {
  return c.policy.fused_attention && c.precision == Precision::bf16 && bf16_attention_available(head_dim)
             ? at::kBFloat16
             : at::kFloat;
}

at::Tensor attention(const Compute& compute, const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, int64_t heads,
                     const at::Tensor& mask) {
  const int64_t b = q.size(0), nq = q.size(1), nk = k.size(1), c = q.size(2);
  const int64_t d = c / heads, bh = b * heads;
  OpTimer timer(OpClass::attention, 4.0 * double(bh) * double(nq) * double(nk) * double(d));
  if (!mask.defined() && attention_input_type(compute, d) == at::kBFloat16)
    return bf16_attention(q, k, v, heads, /*bf16_out=*/true);
  if (q.scalar_type() != at::kFloat || k.scalar_type() != at::kFloat || v.scalar_type() != at::kFloat)
    return attention(compute, q.to(at::kFloat), k.to(at::kFloat), v.to(at::kFloat), heads, mask);
  if (compute.policy.fused_attention && fused_attention_available(d)) return fused_attention(q, k, v, heads, mask);
  auto split = [&](const at::Tensor& t, int64_t n) {
    return t.reshape({b, n, heads, d}).permute({0, 2, 1, 3}).reshape({bh, n, d});
  };
  const double scale = 1.0 / std::sqrt(static_cast<double>(d));
  const at::Tensor qs = split(q, nq), kt = split(k, nk).transpose(1, 2), vs = split(v, nk);
  const int64_t budget = std::max<int64_t>(1, compute.policy.attention_floats);
  // Whole key rows while at least a few queries fit in the budget; else chunk keys too.
  constexpr int64_t kMinQueries = 16;
  const bool whole_rows = bh * nk * std::min<int64_t>(nq, kMinQueries) <= budget;
  const int64_t q_chunk = whole_rows ? std::max<int64_t>(1, std::min(nq, budget / (bh * nk)))
                                     : std::min(nq, kMinQueries);
  const int64_t k_chunk = std::max<int64_t>(1, budget / (bh * q_chunk));
  at::Tensor out = at::empty({bh, nq, d}, q.options());
  for (int64_t start = 0; start < nq; start += q_chunk) {
    const int64_t len = std::min(q_chunk, nq - start);
    const at::Tensor qc = qs.narrow(1, start, len);
    const at::Tensor mc = mask.defined() ? mask.narrow(0, start, len) : mask;
    if (whole_rows) {
      // bmm then scale: libtorch 1.13's baddbmm with beta=0 can read uninitialised memory.
      at::Tensor scores = at::bmm(qc, kt).mul_(scale);
      if (mc.defined()) scores.add_(mc);
      out.narrow(1, start, len).copy_(at::bmm(at::softmax(scores, -1), vs));
    } else {
      out.narrow(1, start, len).copy_(attention_key_chunked(qc, kt, vs, mc, scale, k_chunk));
    }
  }
  return out.reshape({b, heads, nq, d}).permute({0, 2, 1, 3}).reshape({b, nq, c});
}

}  // namespace inpaint
