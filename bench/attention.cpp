// bench_attention [THREADS]: seconds and GFLOPS of attention() at SD 1.5's shapes with
// CFG (batch 2, 8 heads; 4096 tokens of 320 channels, 1024 of 640) and its VAE's (one head
// of 512 channels, 4096 tokens): the fused kernel,
// and batched matrix products at several score budgets (ComputePolicy::attention_floats),
// and, where the processor has native bf16, the bf16 kernel (--precision bf16) with each
// of its products (AMX tiles, AVX512-BF16). Not a test.
#include <ATen/core/grad_mode.h>  // at::NoGradGuard (not in ATen.h from libtorch 2)
#include <ATen/ATen.h>

#include <chrono>
#include <cstdio>
#include <string>

#include "engine/runtime.h"
#include "models/kernels/bf16_attention.h"
#include "models/kernels/fused_attention.h"
#include "models/layers.h"

int main(int argc, char** argv) {
  using namespace inpaint;
  init_runtime(argc > 1 ? std::stoi(argv[1]) : 2);
  at::NoGradGuard no_grad;
  // Self-attention at 64x64 and 32x32 latents; cross-attention (77 text tokens) at 64x64;
  // the VAE's single head of 512 channels at 64x64 (a 512x512 picture; fp32 runs it as
  // batched products, the "fused" rows there).
  struct Shape { int64_t n, nk, c, heads, batch; };
  for (const Shape& shape : {Shape{4096, 4096, 320, 8, 2}, Shape{1024, 1024, 640, 8, 2}, Shape{4096, 77, 320, 8, 2},
                             Shape{4096, 4096, 512, 1, 1}}) {
    const int64_t n = shape.n, nk = shape.nk, c = shape.c, heads = shape.heads, batch = shape.batch;
    const at::Tensor q = at::randn({batch, n, c}), k = at::randn({batch, nk, c}), v = at::randn({batch, nk, c});
    // budget -3: bf16 with AVX512-BF16's products; -2: bf16 on AMX tiles; -1: the fused
    // kernel's AVX2 copy (on an AVX-512 processor); 0: the best fp32 one.
    const bool avx512 = fused_attention_isa() == "avx512";
    const std::string best_bf16 = bf16_attention_isa();
    for (const int64_t budget : {int64_t(-3), int64_t(-2), int64_t(-1), int64_t(0), int64_t(1) << 20,
                                 int64_t(4) << 20, int64_t(16) << 20}) {
      if ((budget == -1 && !avx512) || (budget == -2 && best_bf16 != "amx-bf16") || (budget == -3 && best_bf16.empty()))
        continue;
      set_fused_attention_isa(budget == -1 ? "avx2" : "");
      set_bf16_attention_isa(budget == -3 ? "avx512-bf16" : "");
      Compute cp;
      cp.policy.fused_attention = budget <= 0;
      if (budget > 0) cp.policy.attention_floats = budget;
      if (budget <= -2) cp.precision = Precision::bf16;
      attention(cp, q, k, v, heads);  // warm-up
      const auto start = std::chrono::steady_clock::now();
      constexpr int kRuns = 3;
      for (int i = 0; i < kRuns; ++i) attention(cp, q, k, v, heads);
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() / kRuns;
      const std::string how = budget == -3  ? "bf16, AVX512-BF16"
                              : budget == -2  ? "bf16, AMX tiles"
                              : budget < 0  ? "fused, AVX2 copy"
                              : budget == 0 ? "fused kernel"
                                            : std::to_string(budget >> 20) + "M-float budget";
      std::printf("%5lld x %4lld tokens x %4lld channels, %-17s: %.4f s, %.1f GFLOPS\n", (long long)n, (long long)nk,
                  (long long)c, how.c_str(), s, 4.0 * double(batch) * double(n) * double(nk) * double(c) / s / 1e9);
    }
  }
}
