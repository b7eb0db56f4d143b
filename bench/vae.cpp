// bench_vae MODEL [THREADS] [RUNS] [SIZE] [LAYOUT] [TILING] [KERNEL]: seconds per VAE encode of a SIZE x SIZE
// image (default 512) and per decode of its latent (MODEL a TAESD folder: TAESD's), with the time of their convolutions
// and normalisations, and the process's peak RSS. LAYOUT: "nhwc" (channels last, default),
// "nchw" or "both" (alternating runs, for a side-by-side ratio). TILING: "bands" (large
// convolutions in bands of rows, default), "tiles" (square tiles) or "both" (alternating).
// KERNEL: "winograd" (where it suits, default), "direct" or "both" (alternating; each run
// also prints how far its latent and picture are from the run before's). PRECISION: "fp32" (default),
// "bf16" or "both" (alternating, a second network for bf16 as weights are packed for one precision; each
// bf16 run also prints its relative L2 difference from the fp32 run before it).
// Not a test.
#include <ATen/core/grad_mode.h>  // at::NoGradGuard (not in ATen.h from libtorch 2)
#include <ATen/Parallel.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <iostream>
#include <string>

#include "engine/error.h"
#include "engine/networks.h"
#include "engine/runtime.h"
#include "models/layers.h"
#include "models/op_profile.h"

namespace {
using clock_type = std::chrono::steady_clock;

// Runs f once, printing its time and where it went.
template <class F>
void timed(const std::string& what, int run, F f) {
  using inpaint::OpClass;
  inpaint::reset_op_profile();
  const auto t = clock_type::now();
  const double check = f();
  const double s = std::chrono::duration<double>(clock_type::now() - t).count();
  const auto& p = inpaint::op_profile();
  const double conv_s = p.seconds[size_t(OpClass::conv)];
  std::printf("run %d %s: %.2f s: convolution %.2f s (%.0f GFLOPS), normalisation %.2f s, attention %.2f s, "
              "widening %.2f s; out mean %.4f\n", run, what.c_str(), s, conv_s, p.flops[size_t(OpClass::conv)] / conv_s / 1e9,
              p.seconds[size_t(OpClass::norm)], p.seconds[size_t(OpClass::attention)], p.seconds[size_t(OpClass::widen)], check);
}
}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: bench_vae MODEL [THREADS] [RUNS] [SIZE] [nhwc|nchw|both] [bands|tiles|both] [winograd|direct|both] [fp32|bf16|both]\n";
    return 2;
  }
  inpaint::init_runtime(argc > 2 ? std::stoi(argv[2]) : 2);
  const int runs = argc > 3 ? std::stoi(argv[3]) : 2;
  const int64_t size = argc > 4 ? std::stoll(argv[4]) : 512;
  const std::string layout = argc > 5 ? argv[5] : "nhwc";
  const std::string tiling = argc > 6 ? argv[6] : "bands";
  const std::string kernel = argc > 7 ? argv[7] : "winograd";
  const std::string precision = argc > 8 ? argv[8] : "fp32";
  inpaint::set_op_profiling(true);
  try {
    const std::filesystem::path dir = argv[1];
    const bool taesd = std::filesystem::exists(dir / "taesd_encoder.safetensors");
    std::unique_ptr<inpaint::Taesd> tiny;
    std::optional<inpaint::ModelSource> model;
    std::unique_ptr<inpaint::AutoencoderKL> vae;
    // Weights are packed for one precision: alternating precisions use a second network for bf16.
    std::unique_ptr<inpaint::Taesd> tiny_bf16;
    std::unique_ptr<inpaint::AutoencoderKL> vae_bf16;
    if (taesd) {
      tiny = inpaint::load_taesd(dir / "taesd_encoder.safetensors", dir / "taesd_decoder.safetensors");
      if (precision == "both") tiny_bf16 = inpaint::load_taesd(dir / "taesd_encoder.safetensors", dir / "taesd_decoder.safetensors");
    } else {
      model.emplace(inpaint::ModelSource::open(dir));
      vae = inpaint::load_vae(*model);
      if (precision == "both") vae_bf16 = inpaint::load_vae(*model);
    }
    const at::Tensor image = at::rand({1, 3, size, size}) * 2 - 1;
    at::NoGradGuard no_grad;
    const int64_t winograd_from = inpaint::ComputePolicy{}.winograd_from_pixels;
    at::Tensor last_latent, last_picture;
    for (int i = 0; i < runs; ++i) {
      inpaint::Compute compute;
      inpaint::ComputePolicy& policy = compute.policy;
      policy.channels_last = layout == "nhwc" || (layout == "both" && i % 2 == 0);
      policy.conv_bands = tiling == "bands" || (tiling == "both" && i % 2 == 0);
      const bool winograd = kernel == "winograd" || (kernel == "both" && i % 2 == 0);
      policy.winograd_from_pixels = winograd ? winograd_from : 0;
      const bool bf16 = precision == "bf16" || (precision == "both" && i % 2 == 1);
      if (bf16) compute.precision = inpaint::Precision::bf16;
      const std::string in = std::string(policy.channels_last ? " (nhwc, " : " (nchw, ") + (policy.conv_bands ? "bands, " : "tiles, ") +
                             (winograd ? "winograd, " : "direct, ") + (bf16 ? "bf16)" : "fp32)");
      inpaint::Taesd* tiny_now = bf16 && tiny_bf16 ? tiny_bf16.get() : tiny.get();
      inpaint::AutoencoderKL* vae_now = bf16 && vae_bf16 ? vae_bf16.get() : vae.get();
      const auto decode = [&](const at::Tensor& latent) {
        return taesd ? tiny_now->decoder->forward(compute, latent) : vae_now->decode(compute, latent);
      };
      at::Tensor latent;
      timed("encode" + in, i, [&] {
        latent = taesd ? tiny_now->encoder->forward(compute, image / 2 + 0.5) : vae_now->encode(compute, image).mean;
        return latent.mean().item<double>();
      });
      at::Tensor picture;
      timed("decode" + in, i, [&] {
        picture = decode(latent);
        return picture.mean().item<double>();
      });
      // bf16 against the fp32 run before it: the encode, and the decode of the same (fp32) latent.
      if (bf16 && precision == "both" && last_latent.defined()) {
        const auto relative = [](const at::Tensor& x, const at::Tensor& ref) { return ((x - ref).norm() / ref.norm()).item<double>(); };
        std::printf("  relative L2 difference from fp32: encode %.3g, decode of the fp32 latent %.3g\n",
                    relative(latent, last_latent), relative(decode(last_latent), last_picture));
      }
      if (last_latent.defined())
        std::printf("  max |difference| from the run before: latent %.3g, picture %.3g\n",
                    (latent - last_latent).abs().max().item<double>(), (picture - last_picture).abs().max().item<double>());
      last_latent = latent;
      last_picture = picture;
    }
    std::printf("threads %d, peak RSS %.0f MB\n", at::get_num_threads(),
                static_cast<double>(inpaint::peak_rss_bytes()) / (1 << 20));
  } catch (const inpaint::Error& e) {
    std::cerr << e.what() << "\n";
    return 1;
  }
  return 0;
}
