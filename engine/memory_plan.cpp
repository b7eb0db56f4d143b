#include "engine/memory_plan.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
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
  streamed.release_between_levels = true;
  // Streamed weights go through at::conv2d, which reorders a channels-last input's
  // weights into a blocked copy per call (more memory): NCHW as the policy was fitted.
  streamed.channels_last = false;
  ComputePolicy lean = streamed;
  lean.attention_floats = 1 << 20;
  lean.ff_widen_per_chunk = true;
  lean.tile_above_floats = 4 << 20;  // the UNet's convolutions too
  return {{"resident", resident, 5600}, {"streamed", streamed, 2500}, {"lean", lean, 1600}};
}

double weight_bytes(const ModelSource& model) {
  double total = 0;
  for (const auto& [name, c] : model.components)
    for (const auto& [key, ref] : c.tensors) total += double(ref.nbytes());
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

MemoryPlan plan_memory(const ModelSource& model, size_t max_bytes, int64_t resolution, size_t picture) {
  check_picture_budget(max_bytes, picture);
  const auto policies = policies_fastest_first();
  for (const Policy& p : policies) {
    const double e = estimate(model, p, resolution) + kMargin * double(picture);
    if (max_bytes == 0 || e <= double(max_bytes)) return {p.compute, p.name, static_cast<size_t>(e)};
  }
  const auto least = static_cast<size_t>(estimate(model, policies.back(), resolution) + kMargin * double(picture));
  throw Error("--max-memory " + size_str(max_bytes) + " is too little for this model at " +
              std::to_string(resolution) + "x" + std::to_string(resolution) + ": it needs at least " +
              size_str(least) + " (or a smaller --resolution)");
}

}  // namespace inpaint
