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
  size_t budget = 0;          // what it was planned within (--max-memory, or the default)
};

// The fastest policy whose estimated peak fits `max_bytes` for `model` working at
// `resolution` pixels square. Throws Error naming the minimum when even the leanest
// policy does not fit. max_bytes 0 (no --max-memory): within default_memory_budget(),
// or the leanest policy when none fits (no error: no limit was asked for).
// `picture`: the bytes the picture's buffers take (picture_bytes), counted in the budget.
MemoryPlan plan_memory(const ModelSource& model, size_t max_bytes, int64_t resolution, size_t picture = 0);

// The budget of a run without --max-memory: the paper's machine's 4 GB, or less where
// this machine has less to give (MemAvailable, the memory cgroup's limit). SD 1.5 keeps
// its weights resident within it; SDXL streams them (1.3x the resident step at 1024², a
// fifth of the memory: bench/RESULTS.md).
size_t default_memory_budget();

// What reading, holding and writing a picture of this size costs, whatever the method.
size_t picture_bytes(int64_t width, int64_t height, int channels, bool sixteen_bit);
// Throws Error when `max_bytes` (0: no limit) cannot hold the process and the picture.
void check_picture_budget(size_t max_bytes, size_t picture);

}  // namespace inpaint
