// bench_unet_forward MODEL [THREADS] [RUNS]: seconds per UNet evaluation at 64x64
// latents, batch 2 (one CFG step), and the process's peak RSS. Not a test.
#include <ATen/Parallel.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <string>

#include "engine/error.h"
#include "engine/networks.h"
#include "engine/runtime.h"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: bench_unet_forward MODEL [THREADS] [RUNS]\n";
    return 2;
  }
  inpaint::init_runtime(argc > 2 ? std::stoi(argv[2]) : 2);
  const int runs = argc > 3 ? std::stoi(argv[3]) : 2;
  try {
    using clock = std::chrono::steady_clock;
    const long rss_before = static_cast<long>(inpaint::current_rss_bytes() / 1024);
    const auto t0 = clock::now();
    const auto model = inpaint::ModelSource::open(argv[1]);
    const auto unet = inpaint::load_unet(model);
    const double load_s = std::chrono::duration<double>(clock::now() - t0).count();
    std::printf("open + UNet ready: %.3f s, RSS +%.1f MB\n", load_s, (static_cast<long>(inpaint::current_rss_bytes() / 1024) - rss_before) / 1024.0);
    const auto& c = unet->config();
    const at::Tensor sample = at::randn({2, c.in_channels, 64, 64});
    const at::Tensor context = at::randn({2, 77, c.cross_attention_dim});
    at::NoGradGuard no_grad;
    for (int i = 0; i < runs; ++i) {
      const auto t = clock::now();
      const at::Tensor out = unet->forward(sample, 500, context);
      const double s = std::chrono::duration<double>(clock::now() - t).count();
      std::printf("run %d: %.2f s per UNet forward (batch 2, 64x64), out mean %.4f\n", i, s,
                  out.mean().item<double>());
    }
    std::printf("threads %d, peak RSS %.0f MB\n", at::get_num_threads(), static_cast<long>(inpaint::peak_rss_bytes() / 1024) / 1024.0);
  } catch (const inpaint::Error& e) {
    std::cerr << e.what() << "\n";
    return 1;
  }
  return 0;
}
