#include "models/kernels/packed_conv.h"

#include <oneapi/dnnl/dnnl.hpp>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>
#include <sstream>
#include <unordered_map>

#include "engine/read_checks.h"
#include "engine/safetensors.h"
#include "models/layers.h"
#include "models/kernels/bf16_packing.h"
#include "models/kernels/cpu.h"
#include "models/kernels/onednn.h"
#include "models/op_profile.h"
#include "models/kernels/packed_layout.h"

namespace inpaint {

using dnnl::memory;

struct PackedConvWeight {
  memory::desc layout;      // oneDNN's blocked layout for the weight, of f32 or bf16 elements
  at::Tensor data;          // that layout's elements: bf16 ones as such, f32 ones in the stored dtype
  bool tried = false;       // packing was attempted (data undefined: it failed)
  bool from_disk = false;   // data maps a kept copy (engine/packed_cache.h)
  bool used = false;        // a convolution has run on it
};

std::shared_ptr<PackedConvWeight> new_packed_slot() { return std::make_shared<PackedConvWeight>(); }

void drop_packed(PackedConvWeight& w) { w = PackedConvWeight{}; }

bool packed_contents(const PackedConvWeight& w, at::Tensor& data, std::string& layout) {
  if (!w.data.defined()) return false;
  data = w.data;
  layout = onednn::to_bytes(w.layout);
  return true;
}

bool packed_in_process(const PackedConvWeight& w) { return w.data.defined() && !w.from_disk; }

namespace {
using onednn::is_bf16;
// Elements of a layout (its size over the element's).
int64_t elements(const memory::desc& d) { return static_cast<int64_t>(d.get_size() / (is_bf16(d) ? 2 : 4)); }
}  // namespace

bool restore_packed(PackedConvWeight& w, const at::Tensor& data, const std::string& layout) {
  if (w.tried || data.dim() != 1) return false;
  const auto desc = weight_layout_from_bytes(layout);
  // bf16 layouts hold bf16 data; f32 ones the weight's stored dtype (f32, f16 or bf16).
  if (!desc || elements(*desc) != data.numel() || (is_bf16(*desc) && data.scalar_type() != at::kBFloat16)) return false;
  w.layout = *desc;
  w.data = data;
  w.tried = w.from_disk = true;
  return true;
}

namespace {
constexpr int64_t kMostPartChannels = 640;
}  // namespace

int64_t input_parts_of(int64_t kernel, int64_t in_channels) {
  if (kernel != 3 || in_channels <= kMostPartChannels) return 1;
  const int64_t parts = (in_channels + kMostPartChannels - 1) / kMostPartChannels;
  // Whole blocks of 32 channels (the bf16 layouts' blocking) in equal parts.
  return in_channels % parts == 0 && in_channels / parts % 32 == 0 ? parts : 1;
}

int64_t input_parts_of(const at::Tensor& weight) {
  return weight.dim() == 4 && weight.size(2) == weight.size(3) ? input_parts_of(weight.size(2), weight.size(1)) : 1;
}

int64_t input_parts(const Compute& c, const at::Tensor& weight) {
  const CpuFeatures& cpu = cpu_features();
  const bool applies = c.precision == Precision::bf16 && cpu.amx_bf16 && cpu.amx_permitted;
  return applies ? input_parts_of(weight) : 1;
}

std::string input_part_name(const std::string& weight_name, int64_t part, int64_t parts) {
  return weight_name + ":input_part_" + std::to_string(part) + "_of_" + std::to_string(parts);
}

std::string packing_signature(const Compute& c) {
  const dnnl_version_t* v = dnnl_version();
  std::ostringstream out;
  out << "oneDNN " << v->major << '.' << v->minor << '.' << v->patch << ' ' << v->hash << " isa "
      << static_cast<int>(dnnl_get_effective_cpu_isa()) << " desc "
      << onednn::to_bytes(memory::desc({1}, memory::data_type::f32, memory::format_tag::a)).size()
      << " winograd from " << c.policy.winograd_from_pixels  // apart: runs with it and without don't repack each other's
      << " precision " << precision_name(c.precision);
  // bf16 layers packed in parts (input_parts): kept copies without them are packed anew.
  if (c.precision == Precision::bf16) out << " input parts of " << kMostPartChannels;
  return out.str();
}

namespace {

dnnl::engine& cpu_engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

memory::data_type data_type_of(const at::Tensor& t) {
  return t.scalar_type() == at::kBFloat16 ? memory::data_type::bf16 : memory::data_type::f32;
}

memory::desc strided_desc(const at::Tensor& t) { return memory::desc(t.sizes().vec(), data_type_of(t), t.strides().vec()); }

// One convolution shape: oneDNN's choice of kernel and layouts for it, made once.
struct Plan {
  dnnl::convolution_forward::primitive_desc pd;
  dnnl::convolution_forward conv;
  std::optional<dnnl::reorder> to_src, from_dst;  // when the kernel wants other layouts
};

// The Winograd kernel's working memory (the transformed input and output tiles) grows
// with the image: it is handed over per call from our allocator rather than kept by
// oneDNN (its plan has a scratchpad descriptor of that size). The direct kernels keep
// their own (small) one: their descriptor is empty.
// bf16: the input (converted by the to_src reorder) and the weight in bf16, products
// accumulated and written in f32.
// accumulate: the products added to what y holds (oneDNN's sum post-op); relu: max(0, ·)
// of that (an eltwise post-op).
Plan make_plan(const at::Tensor& x, const at::Tensor& y, const at::Tensor& weight, bool has_bias,
               int64_t stride, int64_t padding, dnnl::algorithm algorithm, Precision precision, bool accumulate,
               bool relu) {
  using namespace dnnl;
  const memory::desc src = strided_desc(x), dst = strided_desc(y);
  const memory::dims w_dims = weight.sizes().vec(), s{stride, stride}, p{padding, padding};
  const auto operands = precision == Precision::bf16 ? memory::data_type::bf16 : memory::data_type::f32;
  const memory::desc any_src(x.sizes().vec(), operands, memory::format_tag::any);
  const memory::desc any_dst(y.sizes().vec(), data_type_of(y), memory::format_tag::any);
  const memory::desc any_w(w_dims, operands, memory::format_tag::any);
  const memory::desc bias = has_bias ? memory::desc({weight.size(0)}, memory::data_type::f32, memory::format_tag::x)
                                     : memory::desc();
  primitive_attr attr;
  if (algorithm == algorithm::convolution_winograd) attr.set_scratchpad_mode(scratchpad_mode::user);
  if (accumulate || relu) {
    post_ops ops;
    if (accumulate) ops.append_sum(1.0f);
    if (relu) onednn::append_relu(ops);
    attr.set_post_ops(ops);
  }
  Plan plan{onednn::convolution(cpu_engine(), algorithm, any_src, any_w, bias, any_dst, s, p, attr), {}, {}, {}};
  plan.conv = convolution_forward(plan.pd);
  if (plan.pd.src_desc() != src) plan.to_src = reorder(reorder::primitive_desc(cpu_engine(), src, cpu_engine(), plan.pd.src_desc()));
  if (plan.pd.dst_desc() != dst) plan.from_dst = reorder(reorder::primitive_desc(cpu_engine(), plan.pd.dst_desc(), cpu_engine(), dst));
  return plan;
}

// Plans by shape, layout, algorithm, precision and post-ops; nullptr where oneDNN has no
// kernel for it.
const Plan* plan_for(const at::Tensor& x, const at::Tensor& y, const at::Tensor& weight, bool has_bias,
                     int64_t stride, int64_t padding, dnnl::algorithm algorithm, Precision precision,
                     bool accumulate = false, bool relu = false) {
  cpu_engine();  // made before the plans (which use it), so destroyed after them
  static std::mutex mutex;
  static std::map<std::string, std::optional<Plan>> plans;
  std::ostringstream key;
  for (const at::Tensor* t : {&x, &y, &weight}) {
    for (int64_t v : t->sizes()) key << v << ',';
    for (int64_t v : t->strides()) key << v << ',';
    key << t->scalar_type() << '|';
  }
  key << has_bias << '|' << stride << '|' << padding << '|' << static_cast<int>(algorithm) << '|'
      << precision_name(precision) << '|' << accumulate << '|' << relu;
  std::lock_guard<std::mutex> lock(mutex);
  auto it = plans.find(key.str());
  if (it == plans.end()) {
    std::optional<Plan> plan;
    try {
      plan = make_plan(x, y, weight, has_bias, stride, padding, algorithm, precision, accumulate, relu);
    } catch (const dnnl::error&) {
      // no kernel for this shape: at::conv2d runs it
    }
    it = plans.emplace(key.str(), std::move(plan)).first;
  }
  return it->second ? &*it->second : nullptr;
}

bool is_winograd(const memory::desc& layout) { return onednn::layout_of(layout).kind == onednn::Layout::Kind::winograd; }

std::atomic<int64_t> g_winograd_convolutions{0};

// The weight in `layout`: bf16 layouts in bf16, f32 ones in the weight's own dtype
// (widened at use). Copied into the blocked order where the layout is a plain blocking
// (3x3 and 1x1 f32 weights here: Ohwi32o; bf16 ones pairing input channels, AMX's
// included, by pack_bf16_pairs: SDXL's per-call packing 5.65 -> 1.28 s per step on Zen
// 5), else reordered by oneDNN from f32 (f32 layouts: at the cost of a widening and a
// narrowing more; padded ones). Winograd's layout holds the weights transformed (6x6
// values from each 3x3), which f16 would round: f32.
void pack(const at::Tensor& weight, const memory::desc& layout, PackedConvWeight& packed) {
  check_before_read(weight);
  const bool bf16 = is_bf16(layout);
  const at::ScalarType dtype = bf16 ? at::kBFloat16 : weight.scalar_type();
  if (const auto view = blocked_view(onednn::layout_of(layout))) {
    packed.data = at::empty({elements(layout)}, weight.options().dtype(dtype).device(at::kCPU));
    uint16_t* bits = bf16 ? reinterpret_cast<uint16_t*>(packed.data.data_ptr<at::BFloat16>()) : nullptr;
    if (!bits || !pack_bf16_pairs(weight, *view, bits)) {
      const std::vector<int64_t> sizes = view->flat_sizes();
      packed.data.as_strided(sizes, view->flat_strides()).copy_(weight.reshape(sizes));
    }
  } else {
    const at::Tensor plain = weight.to(at::kFloat).contiguous();
    at::Tensor blocked = at::empty({elements(layout)}, at::TensorOptions().dtype(bf16 ? at::kBFloat16 : at::kFloat));
    memory from(strided_desc(plain), cpu_engine(), plain.data_ptr()), to(layout, cpu_engine(), blocked.data_ptr());
    dnnl::stream stream(cpu_engine());
    dnnl::reorder(from, to).execute(stream, from, to);
    stream.wait();
    packed.data = blocked.scalar_type() == dtype || is_winograd(layout) ? blocked : blocked.to(dtype);
  }
  packed.layout = layout;
  release_mapped_pages(weight.data_ptr(), weight.nbytes());
}

// Packed weights are widened into one buffer reused call after call: a fresh 59-118 MB
// block for each of the UNet's largest weights costs more in page faults (above glibc's
// 32 MB mmap threshold every allocation is new pages) than the widening itself.
thread_local at::Tensor t_widening_buffer;

at::Tensor widening_buffer(int64_t numel) {
  at::Tensor& buffer = t_widening_buffer;
  if (!buffer.defined() || buffer.numel() < numel) {
    buffer = at::Tensor();  // freed before the larger one is made
    buffer = at::empty({numel});
  }
  return buffer.narrow(0, 0, numel);
}

// Winograd's F(4x4, 3x3) computes 4x4 outputs from 6x6 transformed values: 4x fewer
// multiplications, at the cost of transforming input and output tiles, and weights of
// 36/9 the size, kept in f32: 16x an f16 weight. Worth it where a weight serves many
// pixels; from 16 channels (fewer: oneDNN's transforms cost more than they save); for
// weights up to 512 x 512 x 3 x 3 (38 MB transformed: the VAE's, TAESD's, the UNet's
// 320-channel ones; its 640- and 1280-channel ones would take 59-236 MB each).
constexpr int64_t kWinogradMostWeights = 512 * 512 * 9;

bool winograd_suits(const Compute& c, const at::Tensor& weight, int64_t stride, const at::Tensor& y) {
  const int64_t from = c.policy.winograd_from_pixels;
  return from > 0 && c.precision == Precision::fp32 && weight.size(2) == 3 && weight.size(3) == 3 && stride == 1 &&
         weight.size(0) >= 16 &&
         weight.size(1) >= 16 && weight.numel() <= kWinogradMostWeights && y.size(0) * y.size(2) * y.size(3) >= from;
}

// The plan for this call; `repack` when the weight is to be packed again for it.
// - Not packed yet: the Winograd kernel where it suits, else the direct one.
// - Packed (in this process or kept on disk): a kernel that reads its layout. A weight
//   packed for the Winograd kernel stays with it, on fewer pixels too. Its blocking, so
//   its layout, depends on the image size (the VAE's at a 592x440 region differ from
//   512x512's for most weights; asked to read another, the kernel refuses): where it
//   differs, at::conv2d runs the convolution.
//   A kept copy for the direct kernel not used yet is packed again where the Winograd
//   kernel suits (a cache written by a run on a smaller picture) or the direct kernel
//   now wants another layout: once, never back, so that runs on pictures of other sizes
//   do not repack the cache in turn.
// nullptr: no kernel reads the packed layout at this shape (at::conv2d runs it).
const Plan* choose_plan(const Compute& c, const at::Tensor& x, const at::Tensor& y, const at::Tensor& weight, bool has_bias,
                        int64_t stride, int64_t padding, bool accumulate, bool relu, const PackedConvWeight& packed,
                        bool& repack) {
  using dnnl::algorithm;
  repack = false;
  const bool winograd = winograd_suits(c, weight, stride, y) && !accumulate && !relu;
  auto plan = [&](algorithm a) {
    return plan_for(x, y, weight, has_bias, stride, padding, a, c.precision, accumulate, relu);
  };
  if (!packed.tried) {
    const Plan* p = winograd ? plan(algorithm::convolution_winograd) : nullptr;
    return p ? p : plan(algorithm::convolution_direct);
  }
  if (!packed.data.defined()) return nullptr;  // packing failed
  if (is_winograd(packed.layout)) {
    const Plan* own = plan(algorithm::convolution_winograd);
    return own && own->pd.weights_desc() == packed.layout ? own : nullptr;
  }
  const bool unused_kept_copy = packed.from_disk && !packed.used;
  if (winograd && unused_kept_copy) {
    if (const Plan* p = plan(algorithm::convolution_winograd)) {
      repack = true;
      return p;
    }
  }
  const Plan* direct = plan(algorithm::convolution_direct);
  if (!direct || direct->pd.weights_desc() == packed.layout) return direct;
  repack = unused_kept_copy;
  return repack ? direct : nullptr;
}

at::Tensor scratch(const memory::desc& d) {
  return at::empty({static_cast<int64_t>((d.get_size() + sizeof(float) - 1) / sizeof(float))});
}

}  // namespace

void release_widening_buffer() { t_widening_buffer = at::Tensor(); }

bool packed_for_winograd(const PackedConvWeight& w) { return w.data.defined() && is_winograd(w.layout); }
int64_t winograd_convolutions() { return g_winograd_convolutions; }

bool winograd_available() {
  static const bool available = [] {
    const at::Tensor x = at::zeros({1, 32, 24, 24}), y = at::empty_like(x), w = at::zeros({32, 32, 3, 3});
    return plan_for(x, y, w, /*has_bias=*/true, 1, 1, dnnl::algorithm::convolution_winograd, Precision::fp32) != nullptr;
  }();
  return available;
}

at::Tensor packed_conv2d(const Compute& c, const at::Tensor& x_in, const at::Tensor& weight, const at::Tensor& bias,
                         int64_t stride, int64_t padding, std::shared_ptr<PackedConvWeight>& packed,
                         at::Tensor* widened, const at::Tensor& out, bool accumulate, bool relu) {
  // bf16 inputs (already rounded, as bf16 products would) only where products are bf16.
  const bool input_ok = x_in.scalar_type() == at::kFloat ||
                        (x_in.scalar_type() == at::kBFloat16 && c.precision == Precision::bf16);
  if (weight.dim() != 4 || !input_ok || (bias.defined() && bias.scalar_type() != at::kFloat)) return {};
  const auto layout = x_in.suggest_memory_format();
  // A 1x1 convolution of a contiguous (NCHW) input is a matrix product at::conv2d runs
  // in place; oneDNN's kernel would reorder input and output (up to 1.7x slower here).
  if (weight.size(2) == 1 && weight.size(3) == 1 && layout != at::MemoryFormat::ChannelsLast) return {};
  const at::Tensor x = x_in.contiguous(layout);
  const int64_t k = weight.size(2);
  const int64_t ho = (x.size(2) + 2 * padding - k) / stride + 1, wo = (x.size(3) + 2 * padding - k) / stride + 1;
  const std::vector<int64_t> y_size{x.size(0), weight.size(0), ho, wo};
  const bool out_ok = out.defined() && (out.scalar_type() == at::kFloat ||
                                        (out.scalar_type() == at::kBFloat16 && c.precision == Precision::bf16));
  TORCH_CHECK(!out.defined() || (out.sizes() == y_size && out_ok), "packed_conv2d: output of another size or type");
  TORCH_CHECK(!accumulate || (out_ok && out.scalar_type() == at::kFloat), "packed_conv2d: accumulating needs an f32 output");
  at::Tensor y = out.defined() ? out : at::empty(y_size, x.options().dtype(at::kFloat).memory_format(layout));
  if (!packed) packed = new_packed_slot();
  bool repack = false;
  const Plan* plan = choose_plan(c, x, y, weight, bias.defined(), stride, padding, accumulate, relu, *packed, repack);
  // Accumulating needs the kernel to write y itself (not through a reorder).
  if (!plan || (accumulate && plan->from_dst)) return {};
  if (repack) *packed = PackedConvWeight{};  // and kept anew
  if (!packed->tried) {
    packed->tried = true;
    OpTimer timer(OpClass::widen, 0);
    try {
      pack(weight, plan->pd.weights_desc(), *packed);
    } catch (const dnnl::error&) {
      packed->data = at::Tensor();
      return {};  // left empty: at::conv2d from now on
    }
  }
  // Not packed, or this shape's kernel wants another layout.
  if (!packed->data.defined() || packed->layout != plan->pd.weights_desc()) return {};
  packed->used = true;
  // f32 and bf16 layouts' own dtypes are used as they are; f16 and bf16 data of f32 layouts widened.
  const bool as_is = packed->data.scalar_type() == at::kFloat || is_bf16(packed->layout);
  at::Tensor wide = as_is ? packed->data : widened ? *widened : at::Tensor();
  if (!wide.defined()) {
    OpTimer timer(OpClass::widen, 0);
    if (widened) {
      wide = *widened = packed->data.to(at::kFloat);
    } else {
      wide = widening_buffer(packed->data.numel()).copy_(packed->data);
    }
  }
  const at::Tensor b = bias.defined() ? bias.contiguous() : bias;

  dnnl::engine& engine = cpu_engine();
  dnnl::stream stream(engine);
  memory src(strided_desc(x), engine, x.data_ptr()), dst(strided_desc(y), engine, y.data_ptr());
  at::Tensor src_buffer, dst_buffer;
  memory conv_src = src, conv_dst = dst;
  if (plan->to_src) {
    src_buffer = scratch(plan->pd.src_desc());
    conv_src = memory(plan->pd.src_desc(), engine, src_buffer.data_ptr());
    plan->to_src->execute(stream, src, conv_src);
  }
  if (plan->from_dst) {
    dst_buffer = scratch(plan->pd.dst_desc());
    conv_dst = memory(plan->pd.dst_desc(), engine, dst_buffer.data_ptr());
  }
  std::unordered_map<int, memory> args{{DNNL_ARG_SRC, conv_src},
                                       {DNNL_ARG_WEIGHTS, memory(packed->layout, engine, wide.data_ptr())},
                                       {DNNL_ARG_DST, conv_dst}};
  if (b.defined()) args.emplace(DNNL_ARG_BIAS, memory(plan->pd.bias_desc(), engine, b.data_ptr()));
  at::Tensor scratchpad;
  if (plan->pd.scratchpad_desc().get_size() > 0) {
    scratchpad = scratch(plan->pd.scratchpad_desc());
    args.emplace(DNNL_ARG_SCRATCHPAD, memory(plan->pd.scratchpad_desc(), engine, scratchpad.data_ptr()));
  }
  plan->conv.execute(stream, args);
  if (is_winograd(packed->layout)) ++g_winograd_convolutions;
  if (plan->from_dst) plan->from_dst->execute(stream, conv_dst, dst);
  stream.wait();
  return y;
}

at::Tensor packed_conv2d_in_parts(const Compute& c, const at::Tensor& x, const at::Tensor& weight,
                                  const at::Tensor& bias, int64_t stride, int64_t padding,
                                  std::vector<std::shared_ptr<PackedConvWeight>>& packed) {
  const int64_t parts = input_parts(c, weight), width = weight.size(1) / parts;
  if (int64_t(packed.size()) != parts) packed.resize(size_t(parts));
  const bool packing = std::any_of(packed.begin(), packed.end(), [](const auto& p) { return !p || !p->tried; });
  at::Tensor y;
  for (int64_t i = 0; i < parts; ++i) {
    const StreamedPacking once(c, packed[size_t(i)]);
    // A part of a channels-last input: packed_conv2d copies it into one piece (the
    // standalone timings in bench/RESULTS.md, session 18, had their parts apart already).
    const at::Tensor xi = x.narrow(1, i * width, width), wi = weight.narrow(1, i * width, width);
    if (i == 0) {
      y = packed_conv2d(c, xi, wi, bias, stride, padding, packed[0]);
      if (!y.defined()) return y;
    } else if (!packed_conv2d(c, xi, wi, {}, stride, padding, packed[size_t(i)], nullptr, y, true).defined()) {
      check_before_read(weight);
      y.add_(at::conv2d(xi.to(at::kFloat), wi.to(at::kFloat), {}, stride, padding));  // no kernel adds this part itself
    }
  }
  // Each part's packing released the pages of its own span only: a part's channels are
  // spread over the whole weight.
  if (packing) release_mapped_pages(weight.data_ptr(), weight.nbytes());
  return y;
}

}  // namespace inpaint
