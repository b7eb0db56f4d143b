// --max-memory: choosing how weights are held, how big attention and convolution
// chunks are, from a memory budget, before anything is loaded.
#pragma once
#include <cstddef>
#include <string>

#include "engine/model_source.h"
#include "models/layers.h"

namespace inpaint {

// "1G", "750M", "1.5GB", "800MiB", "2e9": bytes (K/M/G are powers of 1024). Throws Error.
size_t parse_size(const std::string& text);
std::string size_str(size_t bytes);  // "1.25 GB"

struct MemoryPlan {
  ComputePolicy policy;
  std::string name;           // resident, streamed or lean
  size_t estimated_peak = 0;  // bytes, for a `resolution`-sided region
};

// The fastest policy whose estimated peak fits `max_bytes` (0: no limit) for `model`
// working at `resolution` pixels square. Throws Error naming the minimum when even the
// leanest policy does not fit.
MemoryPlan plan_memory(const ModelSource& model, size_t max_bytes, int64_t resolution);

}  // namespace inpaint
