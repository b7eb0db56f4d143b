// A packed weight's oneDNN layout (a memory descriptor's bytes, models/kernels/onednn.h) read back
// from the packed cache: checked field by field before oneDNN computes anything from it.
// No libtorch here (tests/fuzz fuzzes it).
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "models/kernels/onednn.h"

namespace inpaint {

// Whether every field of the layout lies in the range a weight's layout can have (a
// zero block size would divide by zero in oneDNN, a huge dimension overflow).
bool plausible_weight_layout(const onednn::Layout& layout);

// The descriptor in `bytes` (as packed_contents writes them), when it is one of that size
// and plausible_weight_layout.
std::optional<dnnl::memory::desc> weight_layout_from_bytes(const std::string& bytes);

// A blocked layout as strides over the weight's own dims, each dim split into its blocks:
// the outer one first, then oneDNN's inner blocks of that dim in their order, so that the
// dim's index is its blocks' indices read as digits (OhwI16i64o2i, AMX's bf16 layout:
// O = [O/64, 64], I = [I/32, 16, 2], h = [KH], w = [KW]). Sizes and strides in elements.
struct BlockedView {
  std::vector<std::vector<int64_t>> sizes, strides;  // per dim, outermost block first
  // Every dim's blocks in dim order: at::Tensor::as_strided's arguments over
  // weight.reshape(flat_sizes()).
  std::vector<int64_t> flat_sizes() const;
  std::vector<int64_t> flat_strides() const;
};
// nullopt for layouts it does not describe: not blocked, an offset, padded dims.
std::optional<BlockedView> blocked_view(const onednn::Layout& layout);

// Layout bytes as hex in the cache file's metadata (safetensors metadata holds strings),
// and back: false for anything but lowercase hex digits in pairs (at most 64 KB).
std::string layout_to_hex(const std::string& bytes);
bool layout_from_hex(const std::string& hex, std::string* bytes);

}  // namespace inpaint
