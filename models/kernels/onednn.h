// The few oneDNN calls whose form differs between oneDNN 2.x (Debian 12: libtorch 1.13's)
// and 3.x (Debian 13): describing a convolution, reading a memory descriptor's layout,
// and a descriptor as bytes and back (the packed cache keeps them). Everything else uses
// dnnl.hpp as both versions have it. No libtorch here (tests/fuzz uses it).
#pragma once
#include <oneapi/dnnl/dnnl.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace inpaint::onednn {

using dnnl::memory;

// A forward-inference convolution; `bias` empty (a zero descriptor) for none. Throws
// dnnl::error where oneDNN has no kernel for it.
dnnl::convolution_forward::primitive_desc convolution(const dnnl::engine& engine, dnnl::algorithm algorithm,
                                                      const memory::desc& src, const memory::desc& weights,
                                                      const memory::desc& bias, const memory::desc& dst,
                                                      const memory::dims& strides, const memory::dims& padding,
                                                      const dnnl::primitive_attr& attr);

// Whether the descriptor's elements are bf16.
bool is_bf16(const memory::desc& desc);

// Appends max(0, x) to post-ops.
void append_relu(dnnl::post_ops& ops);

// A descriptor's layout as plain numbers, read field by field (never trusting counts:
// a descriptor read back from disk may hold anything).
struct Layout {
  enum class Kind { blocked, winograd, other };
  Kind kind = Kind::other;
  bool f32 = false, bf16 = false;  // the element type (weights are packed as one or the other)
  int64_t offset0 = 0;
  bool extra_flags = false;  // oneDNN's compensation and scale flags (none for f32 weights)
  std::vector<int64_t> dims, padded_dims, padded_offsets;
  std::vector<int64_t> strides, inner_blks, inner_idxs;  // blocked
  // Winograd (oneDNN 2.x only): the format and the blocking of the transformed weights.
  int wino_format = 0, r = 0, alpha = 0, ic = 0, oc = 0, ic_block = 0, oc_block = 0, ic2_block = 0, oc2_block = 0;
  uint64_t wino_size = 0;
};
// A descriptor whose ndims or inner_nblks is out of range is Kind::other, its numbers
// left unread (so that nothing counts on what they would have said).
Layout layout_of(const memory::desc& desc);

// The descriptor's bytes, and a descriptor from such bytes (nullopt when they are not of
// a descriptor's size). Only bytes this oneDNN version wrote are meaningful: the packed
// cache's file names carry the version.
std::string to_bytes(const memory::desc& desc);
std::optional<memory::desc> from_bytes(const std::string& bytes);

// Whether oneDNN's cache sizes come from AMD's legacy CPUID leaves here: where a virtual
// machine hides AMD's cache topology, oneDNN 3.x would take 1 byte for each level and some
// of its kernels then compute wrong results (onednn.cpp mends that for the process).
bool cache_sizes_from_legacy_leaves();

}  // namespace inpaint::onednn
