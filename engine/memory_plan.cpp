#include "engine/memory_plan.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "engine/error.h"

namespace inpaint {
namespace {

constexpr double kMiB = 1024.0 * 1024.0;
// The process before any network: libtorch, its thread pools, the picture's crop.
constexpr double kBaseBytes = 160 * kMiB;
constexpr double kMargin = 1.1;  // the fit is not exact; allocation patterns vary

struct Policy {
  const char* name;
  ComputePolicy compute;
  double bytes_per_pixel;  // activations and working buffers per pixel of the region
};

// The three policies, fastest first. Bytes per pixel were fitted to full-size SD 1.5
// inpainting at 512x512 (bench/RESULTS.md): peak RSS minus the base and, when
// resident, the weights. They scale with the VAE's width for other models.
std::vector<Policy> policies_fastest_first() {
  ComputePolicy resident;  // the defaults
  ComputePolicy streamed = resident;
  streamed.stream_weights = true;
  streamed.weight_slot_floats = 4 << 20;
  streamed.work_floats = 4 << 20;
  streamed.half_storage_above = 8 << 20;
  // Between stages, freed memory goes back: kept, it raised SDXL's LCM + TAESD peak
  // from 0.75 to 0.93 GB. Between the VAE's levels it stays: freed big blocks merge
  // (engine/big_blocks.h) and the next level reuses them, where handing them back made
  // it fault them in again (SDXL's 1024² decode 0.5-1 s). The lean policy hands them back.
  streamed.release_between_stages = true;
  // Streamed weights are packed at each call: the Winograd kernel's transformed weights
  // (16x the f16 size, slow to make) would be made at every call.
  streamed.winograd_from_pixels = 0;
  ComputePolicy lean = streamed;
  lean.attention_floats = 1 << 20;
  lean.ff_widen_per_chunk = true;
  lean.tile_above_floats = 4 << 20;  // the UNet's convolutions too
  lean.release_between_levels = true;
  return {{"resident", resident, 5600}, {"streamed", streamed, 2500}, {"lean", lean, 1600}};
}

// The weights resident at the peak: the UNet's and the VAE's (the text encoders run
// first, one at a time, and are gone by then).
double weight_bytes(const ModelSource& model) {
  double total = 0;
  for (const char* name : {"unet", "vae"})
    for (const auto& [key, ref] : model.component(name).tensors) total += double(ref.nbytes());
  return total;
}

// LoRA factors stay on the heap whatever the policy.
double lora_bytes(const ModelSource& model) {
  double total = 0;
  for (const auto& [name, c] : model.components)
    for (const auto& [key, f] : c.loras) total += double(f.up.nbytes() + f.down.nbytes());
  return total;
}

double estimate(const ModelSource& model, const Policy& p, int64_t res) {
  const auto vae = model.component("vae").config.value("block_out_channels", std::vector<int64_t>{128});
  const double width = vae.empty() ? 1.0 : double(vae.front()) / 128.0;
  const double activations = p.bytes_per_pixel * width * double(res) * double(res);
  const double weights = (p.compute.stream_weights ? 0.0 : weight_bytes(model)) + lora_bytes(model);
  return kMargin * (kBaseBytes + weights + activations);
}

}  // namespace

size_t parse_size(const std::string& text) {
  size_t used = 0;
  double value = 0;
  try {
    value = std::stod(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  std::string unit = text.substr(used);
  for (char& ch : unit) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  double scale = 0;
  if (unit.empty() || unit == "B") scale = 1;
  else if (unit == "K" || unit == "KB" || unit == "KIB") scale = 1024.0;
  else if (unit == "M" || unit == "MB" || unit == "MIB") scale = kMiB;
  else if (unit == "G" || unit == "GB" || unit == "GIB") scale = kMiB * 1024.0;
  if (used == 0 || scale == 0 || !(value > 0) || !std::isfinite(value) || value * scale > 1e18)
    throw Error("'" + text + "' is not a memory size; write e.g. 1G, 750M or 1.5GB");
  // Rounded up: any positive size is a limit (0.5 is one byte, too little, never "none").
  return static_cast<size_t>(std::ceil(value * scale));
}

std::string size_str(size_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f GB", double(bytes) / (kMiB * 1024.0));
  return buf;
}

size_t picture_bytes(int64_t width, int64_t height, int channels, bool sixteen_bit) {
  // The decoded picture, the decoder's and the PNG encoder's transient copies, the
  // 16-bit samples kept for the output (twice: input and output), the float mask and its
  // decoder's copy.
  const double per_pixel = channels * (3.0 + (sixteen_bit ? 6.0 : 0.0)) + 8.0;
  return static_cast<size_t>(per_pixel * double(width) * double(height));
}

void check_picture_budget(size_t max_bytes, size_t picture) {
  const auto least = static_cast<size_t>(kMargin * (kBaseBytes + double(picture)));
  if (max_bytes != 0 && max_bytes < least)
    throw Error("--max-memory " + size_str(max_bytes) + " is too little for this picture: reading, repainting and "
                "writing it takes at least " + size_str(least));
}

namespace {
// A number of bytes from a file of the kernel's (a cgroup limit), or 0.
size_t read_bytes(const char* path) {
  std::FILE* f = std::fopen(path, "r");
  if (!f) return 0;
  unsigned long long v = 0;
  const bool ok = std::fscanf(f, "%llu", &v) == 1;
  std::fclose(f);
  return ok ? static_cast<size_t>(v) : 0;
}

size_t mem_available() {
  std::FILE* f = std::fopen("/proc/meminfo", "r");
  if (!f) return 0;
  char line[256];
  unsigned long long kb = 0;
  while (std::fgets(line, sizeof line, f))
    if (std::sscanf(line, "MemAvailable: %llu kB", &kb) == 1) break;
  std::fclose(f);
  return static_cast<size_t>(kb) * 1024;
}

// The lowest memory limit of this process's cgroup and its parents (v1 or v2), or 0.
size_t cgroup_limit() {
  std::FILE* f = std::fopen("/proc/self/cgroup", "r");
  if (!f) return 0;
  size_t lowest = 0;
  char line[1024];
  while (std::fgets(line, sizeof line, f)) {
    std::string entry(line);
    if (!entry.empty() && entry.back() == '\n') entry.pop_back();
    const size_t a = entry.find(':'), b = entry.find(':', a + 1);
    if (a == std::string::npos || b == std::string::npos) continue;
    const std::string controllers = entry.substr(a + 1, b - a - 1);
    std::string path = entry.substr(b + 1);
    const bool v1 = controllers == "memory", v2 = controllers.empty();
    if (!v1 && !v2) continue;
    while (true) {  // the cgroup, then each parent
      const std::string file = v1 ? "/sys/fs/cgroup/memory" + path + "/memory.limit_in_bytes"
                                  : "/sys/fs/cgroup" + path + "/memory.max";
      const size_t limit = read_bytes(file.c_str());
      if (limit > 0 && (lowest == 0 || limit < lowest)) lowest = limit;
      if (path.empty() || path == "/") break;
      path = path.substr(0, path.rfind('/'));
    }
  }
  std::fclose(f);
  return lowest;
}
}  // namespace

size_t default_memory_budget() {
  size_t budget = size_t(4) << 30;
  for (const size_t limit : {mem_available(), cgroup_limit()})
    if (limit > 0) budget = std::min(budget, limit);
  return budget;
}

MemoryPlan plan_memory(const ModelSource& model, size_t max_bytes, int64_t resolution, size_t picture) {
  check_picture_budget(max_bytes, picture);
  const auto policies = policies_fastest_first();
  const size_t budget = max_bytes ? max_bytes : default_memory_budget();
  for (const Policy& p : policies) {
    const double e = estimate(model, p, resolution) + kMargin * double(picture);
    if (e <= double(budget) || (max_bytes == 0 && &p == &policies.back())) return {p.compute, p.name, static_cast<size_t>(e), budget};
  }
  const auto least = static_cast<size_t>(estimate(model, policies.back(), resolution) + kMargin * double(picture));
  throw Error("--max-memory " + size_str(max_bytes) + " is too little for this model at " +
              std::to_string(resolution) + "x" + std::to_string(resolution) + ": it needs at least " +
              size_str(least) + " (or a smaller --resolution)");
}

}  // namespace inpaint
