// A packed weight's oneDNN layout (a memory descriptor's bytes, models/kernels/onednn.h) read back
// from the packed cache: checked field by field before oneDNN computes anything from it.
// No libtorch here (tests/fuzz fuzzes it).
#pragma once
#include <optional>
#include <string>

#include "models/kernels/onednn.h"

namespace inpaint {

// Whether every field of the layout lies in the range a weight's layout can have (a
// zero block size would divide by zero in oneDNN, a huge dimension overflow).
bool plausible_weight_layout(const onednn::Layout& layout);

// The descriptor in `bytes` (as packed_contents writes them), when it is one of that size
// and plausible_weight_layout.
std::optional<dnnl::memory::desc> weight_layout_from_bytes(const std::string& bytes);

// Layout bytes as hex in the cache file's metadata (safetensors metadata holds strings),
// and back: false for anything but lowercase hex digits in pairs (at most 64 KB).
std::string layout_to_hex(const std::string& bytes);
bool layout_from_hex(const std::string& hex, std::string* bytes);

}  // namespace inpaint
