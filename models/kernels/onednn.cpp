#include "models/kernels/onednn.h"

#include <cpuid.h>
#include <dlfcn.h>

#include <algorithm>
#include <cstring>
#include <thread>

namespace inpaint::onednn {
namespace {
constexpr int kMaxDims = 6;  // weights: 4-D, 5-D with groups
}  // namespace

dnnl::convolution_forward::primitive_desc convolution(const dnnl::engine& engine, dnnl::algorithm algorithm,
                                                      const memory::desc& src, const memory::desc& weights,
                                                      const memory::desc& bias, const memory::desc& dst,
                                                      const memory::dims& strides, const memory::dims& padding,
                                                      const dnnl::primitive_attr& attr) {
  using dnnl::convolution_forward;
  const auto inference = dnnl::prop_kind::forward_inference;
#if DNNL_VERSION_MAJOR >= 3
  if (bias.is_zero())
    return convolution_forward::primitive_desc(engine, inference, algorithm, src, weights, dst, strides, padding,
                                               padding, attr);
  return convolution_forward::primitive_desc(engine, inference, algorithm, src, weights, bias, dst, strides, padding,
                                             padding, attr);
#else  // a descriptor first, then its primitive descriptor
  const auto d = bias.is_zero()
                     ? convolution_forward::desc(inference, algorithm, src, weights, dst, strides, padding, padding)
                     : convolution_forward::desc(inference, algorithm, src, weights, bias, dst, strides, padding, padding);
  return convolution_forward::primitive_desc(d, attr, engine);
#endif
}

void append_relu(dnnl::post_ops& ops) {
#if DNNL_VERSION_MAJOR >= 3
  ops.append_eltwise(dnnl::algorithm::eltwise_relu, 0.0f, 0.0f);
#else  // with a scale first
  ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_relu, 0.0f, 0.0f);
#endif
}

#if DNNL_VERSION_MAJOR >= 3  // descriptors are opaque: read through queries and blobs

bool is_bf16(const memory::desc& desc) { return desc.get_data_type() == memory::data_type::bf16; }

Layout layout_of(const memory::desc& desc) {
  Layout l;
  const int ndims = desc.get_ndims();
  // Enum fields queried into ints: the C++ getters would load any value as the enum.
  int data_type = 0, kind = 0;
  dnnl_memory_desc_query(desc.get(), dnnl_query_data_type, &data_type);
  dnnl_memory_desc_query(desc.get(), dnnl_query_format_kind, &kind);
  l.f32 = data_type == dnnl_f32;
  l.bf16 = data_type == dnnl_bf16;
  l.offset0 = desc.get_submemory_offset();
  l.kind = kind == dnnl_blocked ? Layout::Kind::blocked : Layout::Kind::other;
  if (ndims < 1 || ndims > kMaxDims) {
    l.kind = Layout::Kind::other;
    return l;
  }
  l.dims = desc.get_dims();
  l.padded_dims = desc.get_padded_dims();
  l.padded_offsets = desc.get_padded_offsets();
  if (l.kind != Layout::Kind::blocked) return l;
  l.strides = desc.get_strides();
  const int nblks = desc.get_inner_nblks();
  if (nblks < 0 || nblks > DNNL_MAX_NDIMS) {
    l.kind = Layout::Kind::other;
    return l;
  }
  l.inner_blks = desc.get_inner_blks();
  l.inner_idxs = desc.get_inner_idxs();
  return l;
}

std::string to_bytes(const memory::desc& desc) {
  const std::vector<uint8_t> blob = memory::desc(desc).get_blob();
  return std::string(blob.begin(), blob.end());
}

std::optional<memory::desc> from_bytes(const std::string& bytes) {
  // The blob constructor reads a descriptor's size from the pointer it is given.
  static const size_t size = memory::desc({1}, memory::data_type::f32, memory::format_tag::a).get_blob().size();
  if (bytes.size() != size) return std::nullopt;
  return memory::desc(std::vector<uint8_t>(bytes.begin(), bytes.end()));
}

#else  // oneDNN 2.x: descriptors are plain structs

namespace {
// An enum field read as the int it is stored as: bytes from disk may hold any value, and
// loading one that is no enumerator is undefined.
template <class Enum>
int as_int(const Enum& e) {
  static_assert(sizeof(Enum) == sizeof(int), "enums are ints here");
  int v;
  std::memcpy(&v, &e, sizeof v);
  return v;
}
}  // namespace

bool is_bf16(const memory::desc& desc) { return desc.data_type() == memory::data_type::bf16; }

Layout layout_of(const memory::desc& desc) {
  const dnnl_memory_desc_t& d = desc.data;
  Layout l;
  l.f32 = as_int(d.data_type) == dnnl_f32;
  l.bf16 = as_int(d.data_type) == dnnl_bf16;
  l.offset0 = d.offset0;
  l.extra_flags = d.extra.flags != 0;
  const int kind = as_int(d.format_kind);
  l.kind = kind == dnnl_blocked ? Layout::Kind::blocked : kind == dnnl_format_kind_wino ? Layout::Kind::winograd
                                                                                       : Layout::Kind::other;
  if (d.ndims < 1 || d.ndims > kMaxDims) {
    l.kind = Layout::Kind::other;
    return l;
  }
  l.dims.assign(d.dims, d.dims + d.ndims);
  l.padded_dims.assign(d.padded_dims, d.padded_dims + d.ndims);
  l.padded_offsets.assign(d.padded_offsets, d.padded_offsets + d.ndims);
  if (l.kind == Layout::Kind::blocked) {
    const dnnl_blocking_desc_t& b = d.format_desc.blocking;
    l.strides.assign(b.strides, b.strides + d.ndims);
    if (b.inner_nblks < 0 || b.inner_nblks > DNNL_MAX_NDIMS) {
      l.kind = Layout::Kind::other;
      return l;
    }
    l.inner_blks.assign(b.inner_blks, b.inner_blks + b.inner_nblks);
    l.inner_idxs.assign(b.inner_idxs, b.inner_idxs + b.inner_nblks);
  } else if (l.kind == Layout::Kind::winograd) {
    const dnnl_wino_desc_t& w = d.format_desc.wino_desc;
    l.wino_format = as_int(w.wino_format);
    l.r = w.r, l.alpha = w.alpha, l.ic = w.ic, l.oc = w.oc;
    l.ic_block = w.ic_block, l.oc_block = w.oc_block, l.ic2_block = w.ic2_block, l.oc2_block = w.oc2_block;
    l.wino_size = w.size;
  }
  return l;
}

std::string to_bytes(const memory::desc& desc) {
  return std::string(reinterpret_cast<const char*>(&desc.data), sizeof desc.data);
}

std::optional<memory::desc> from_bytes(const std::string& bytes) {
  if (bytes.size() != sizeof(dnnl_memory_desc_t)) return std::nullopt;
  dnnl_memory_desc_t d;
  std::memcpy(&d, bytes.data(), sizeof d);
  return memory::desc(d);
}

#endif

namespace {

// AMD's cache topology (CPUID leaf 0x8000001D) is all zeros where a virtual machine hides
// it (Firecracker does) though it reports the leaf as present.
bool amd_cache_topology_hidden() {
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid(0, &a, &b, &c, &d) || b != 0x68747541u) return false;  // "Auth"enticAMD
  if (__get_cpuid_max(0x80000000u, nullptr) < 0x8000001Du) return false;
  __cpuid_count(0x8000001Du, 0, a, b, c, d);
  return (a & 0x1Fu) == 0;  // no cache described at all
}

// A core's data cache at `level` from AMD's legacy leaves, which such machines still fill:
// L1d in KB (0x80000005 ECX 31:24), L2 in KB (0x80000006 ECX 31:16), L3 in 512 KB
// (0x80000006 EDX 31:18; the whole package's, hundreds of MB on an EPYC: a core's share
// on Zen parts is at most 4 MB, 32 MB per 8-core complex). 0 where a leaf says nothing.
unsigned legacy_cache_size(int level) {
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (level == 1 && __get_cpuid(0x80000005u, &a, &b, &c, &d)) return (c >> 24) << 10;
  if (!__get_cpuid(0x80000006u, &a, &b, &c, &d)) return 0;
  if (level == 2) return (c >> 16) << 10;
  if (level == 3) {
    const unsigned long long package = (unsigned long long)(d >> 18) << 19;
    const unsigned long long share = package / std::max(1u, std::thread::hardware_concurrency());
    return unsigned(std::min<unsigned long long>(share, 4ull << 20));
  }
  return 0;
}

}  // namespace

bool cache_sizes_from_legacy_leaves() {
  static const bool hidden = amd_cache_topology_hidden() && legacy_cache_size(1) > 0 && legacy_cache_size(2) > 0;
  return hidden;
}

}  // namespace inpaint::onednn

#if DNNL_VERSION_MAJOR >= 3
// oneDNN 3.x sizes its kernels' blocks by each core's cache sizes, which it reads from
// leaf 0x8000001D on AMD processors. Where that leaf is all zeros it takes every level to
// be 1 byte, and some of its kernels then compute wrong results: on a Zen 5 machine that
// hides the leaf, oneDNN 3.7.2's f32 1x1 convolutions to 80 output channels were 30 % off,
// its bf16 3x3 ones to 4 channels (the UNet's last layer) too; 78 of 1440 small shapes
// (bench/RESULTS.md, session 26). This definition takes the place of oneDNN's own in the
// process (the dynamic linker prefers a program's symbols to a library's, for libtorch's
// calls into oneDNN too): on such machines it answers from AMD's legacy leaves, elsewhere
// it asks oneDNN's. oneDNN 2.x takes no sizes from that leaf (it had no such fault).
namespace dnnl::impl::cpu::platform {
unsigned get_per_core_cache_size(int level) {
  if (inpaint::onednn::cache_sizes_from_legacy_leaves()) return inpaint::onednn::legacy_cache_size(level);
  using Query = unsigned (*)(int);
  static const auto own = reinterpret_cast<Query>(dlsym(RTLD_NEXT, "_ZN4dnnl4impl3cpu8platform23get_per_core_cache_sizeEi"));
  return own ? own(level) : 0;
}
}  // namespace dnnl::impl::cpu::platform
#endif
