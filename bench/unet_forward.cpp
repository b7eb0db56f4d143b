// bench_unet_forward MODEL [THREADS] [RUNS] [BATCH] [CONV] [LAYOUT] [PRECISION]: seconds per UNet evaluation at
// 64x64 latents, batch 2 (one CFG step) unless BATCH says 1 (guidance <= 1), the time of its
// convolutions, linear layers and weight widening, and the process's peak RSS. CONV:
// "packed" (default), "plain" (at::conv2d on the stored weights) or "both" (alternating
// runs, for a side-by-side ratio), "kept" (packed weights mapped from the cache's file,
// written first when missing), "streamed" (packed at each call, dropped after it: the
// memory policies' way; "widening" is then the packing); LAYOUT: "nhwc" (activations channels last, default),
// "nchw" or "both" (alternating); PRECISION: "fp32" (default), "bf16" or "both" (alternating),
// with the relative L2 difference of each bf16 output from the fp32 one before it. Not a test.
#include <ATen/core/grad_mode.h>  // at::NoGradGuard (not in ATen.h from libtorch 2)
#include <ATen/Parallel.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <string>

#include "engine/error.h"
#include "engine/cache_files.h"
#include "engine/networks.h"
#include "engine/packed_cache.h"
#include "engine/runtime.h"
#include "models/layers.h"
#include "models/op_profile.h"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: bench_unet_forward MODEL [THREADS] [RUNS] [BATCH] [packed|plain|both|kept|streamed] [nhwc|nchw|both] [fp32|bf16|both]\n";
    return 2;
  }
  inpaint::init_runtime(argc > 2 ? std::stoi(argv[2]) : 2);
  const int runs = argc > 3 ? std::stoi(argv[3]) : 2;
  const int batch = argc > 4 ? std::stoi(argv[4]) : 2;
  const std::string conv = argc > 5 ? argv[5] : "packed";
  const std::string layout = argc > 6 ? argv[6] : "nhwc";
  const std::string precision = argc > 7 ? argv[7] : "fp32";
  inpaint::set_op_profiling(true);
  try {
    using clock = std::chrono::steady_clock;
    const long rss_before = static_cast<long>(inpaint::current_rss_bytes() / 1024);
    const auto t0 = clock::now();
    const auto model = inpaint::ModelSource::open(argv[1]);
    inpaint::PackedSlots slots;
    auto unet = inpaint::load_unet(model, conv == "kept" ? &slots : nullptr);
    // Kept weights are packed for one precision (the cache's file names say which).
    if (conv == "kept" && precision == "both") throw inpaint::Error("kept: one precision, fp32 or bf16");
    inpaint::Compute keeping;
    keeping.precision = precision == "bf16" ? inpaint::Precision::bf16 : inpaint::Precision::fp32;
    const auto kept = conv == "kept"
                          ? inpaint::packed_cache_file(inpaint::cache_root() / "packed", model.component("unet"), keeping,
                                                       inpaint::unet_shapes(batch, 64, 64))
                          : std::filesystem::path();
    if (conv == "kept" && inpaint::use_packed_cache(kept, slots, keeping) == 0) {
      std::printf("packing into %s first\n", kept.c_str());
      at::NoGradGuard no_grad;
      const auto& c = unet->config();
      if (c.text_time) throw inpaint::Error("kept: SD 1.x/2.x only");
      unet->forward(keeping, at::randn({batch, c.in_channels, 64, 64}), 500, at::randn({batch, 77, c.cross_attention_dim}));
      inpaint::write_packed_cache(kept, slots, keeping);
      slots.clear();
      unet = inpaint::load_unet(model, &slots);
      std::printf("mapped %zu packed weights\n", inpaint::use_packed_cache(kept, slots, keeping));
    }
    const double load_s = std::chrono::duration<double>(clock::now() - t0).count();
    std::printf("open + UNet ready: %.3f s, RSS +%.1f MB\n", load_s, (static_cast<long>(inpaint::current_rss_bytes() / 1024) - rss_before) / 1024.0);
    const auto& c = unet->config();
    const at::Tensor sample = at::randn({batch, c.in_channels, 64, 64});
    const at::Tensor context = at::randn({batch, 77, c.cross_attention_dim});
    // SDXL's added conditions: a pooled embedding and 1024x1024 size conditions.
    inpaint::AddedConditions added;
    if (c.text_time)
      added = {at::randn({batch, c.projection_class_embeddings_input_dim - 6 * c.addition_time_embed_dim}),
               at::tensor({1024.f, 1024.f, 0.f, 0.f, 1024.f, 1024.f}).repeat({batch, 1})};
    at::NoGradGuard no_grad;
    at::Tensor last_fp32;
    // Weights are packed for one precision: alternating runs use a second UNet for bf16.
    const auto unet_bf16 = precision == "both" ? inpaint::load_unet(model) : nullptr;
    for (int i = 0; i < runs; ++i) {
      inpaint::Compute compute;
      inpaint::ComputePolicy& policy = compute.policy;
      policy.packed_convolutions = conv == "packed" || conv == "kept" || conv == "streamed" || (conv == "both" && i % 2 == 0);
      policy.stream_weights = conv == "streamed";
      if (policy.stream_weights) policy.winograd_from_pixels = 0;  // as engine/memory_plan.cpp's streamed policies
      policy.channels_last = layout == "nhwc" || (layout == "both" && i % 2 == 0);
      const bool bf16 = precision == "bf16" || (precision == "both" && i % 2 == 1);
      compute.precision = bf16 ? inpaint::Precision::bf16 : inpaint::Precision::fp32;
      inpaint::reset_op_profile();
      const auto t = clock::now();
      const at::Tensor out = (bf16 && unet_bf16 ? unet_bf16 : unet)->forward(compute, sample, 500, context, added);
      const double s = std::chrono::duration<double>(clock::now() - t).count();
      const auto& p = inpaint::op_profile().seconds;
      using inpaint::OpClass;
      std::printf("run %d (%s convolutions, %s, %s): %.2f s per UNet forward (batch %d, 64x64): convolution %.2f s, "
                  "linear %.2f s, attention %.2f s, widening %.2f s; out mean %.4f", i,
                  policy.packed_convolutions ? "packed" : "plain", policy.channels_last ? "nhwc" : "nchw",
                  inpaint::precision_name(compute.precision), s, batch, p[size_t(OpClass::conv)],
                  p[size_t(OpClass::linear)], p[size_t(OpClass::attention)], p[size_t(OpClass::widen)],
                  out.mean().item<double>());
      if (bf16 && last_fp32.defined())
        std::printf("; relative L2 difference from fp32 %.3g", ((out - last_fp32).norm() / last_fp32.norm()).item<double>());
      if (!bf16) last_fp32 = out;
      std::printf("\n");
    }
    std::printf("threads %d, peak RSS %.0f MB\n", at::get_num_threads(), static_cast<long>(inpaint::peak_rss_bytes() / 1024) / 1024.0);
  } catch (const inpaint::Error& e) {
    std::cerr << e.what() << "\n";
    return 1;
  }
  return 0;
}
