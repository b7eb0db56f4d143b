// A packed weight's oneDNN layout (a memory descriptor's bytes) read back from the packed
// cache: checked field by field before oneDNN computes anything from it. No libtorch
// here (tests/fuzz fuzzes it).
#pragma once
#include <oneapi/dnnl/dnnl_types.h>

#include <string>

namespace inpaint {

// Whether every field of the descriptor lies in the range a weight's layout can have (a
// zero block size would divide by zero in oneDNN, a huge dimension overflow).
bool plausible_weight_layout(const dnnl_memory_desc_t& d);

// The descriptor in `bytes` (as written by packed_contents), when it is one of that size
// and plausible_weight_layout.
bool weight_layout_from_bytes(const std::string& bytes, dnnl_memory_desc_t* out);

// Layout bytes as hex in the cache file's metadata (safetensors metadata holds strings),
// and back: false for anything but lowercase hex digits in pairs.
std::string layout_to_hex(const std::string& bytes);
bool layout_from_hex(const std::string& hex, std::string* bytes);

}  // namespace inpaint
