// bench_peak [THREADS] [SECONDS]: this machine's arithmetic ceiling through libtorch at
// the shapes SD 1.5's UNet uses at 512x512 with CFG (batch 2): fp32 matrix products
// (OpenBLAS) and 3x3 convolutions (oneDNN: through at::conv2d, which reorders the weight
// at every call, on a weight packed in advance, and on that weight with the input
// channels last, as the networks run them: no reorder of input and output). Prints
// GFLOPS per shape and the best of each kind, as JSON on the last line for scripts.
// The ceiling counts multiplications done: the convolutions here use the direct kernel.
// Where the networks use the Winograd kernel (models/kernels/packed_conv.h), which does 4x fewer,
// its speed is printed apart, as the direct kernel's FLOPs per second ("effective").
// Where the processor has native bf16 (models/kernels/cpu.h), the same shapes in bf16 as
// the networks run them with --precision bf16: linear layers and convolutions on weights
// packed into bf16 layouts, inputs channels last, f32 outputs (the bf16 ceiling); and the
// linear layers' shapes through oneDNN's matmul too (bf16 operands, f32 output), which the
// networks do not use: if it is faster somewhere, the ceiling counts it and the networks
// should. Not a test.
#include <ATen/core/grad_mode.h>  // at::NoGradGuard (not in ATen.h from libtorch 2)
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "engine/runtime.h"
#include "models/layers.h"
#include "models/kernels/cpu.h"
#include "models/kernels/packed_conv.h"

#include <oneapi/dnnl/dnnl.hpp>

namespace {

using Clock = std::chrono::steady_clock;

// Runs f until `seconds` have passed (after one warm-up call); returns GFLOPS.
template <typename F>
double gflops(double flops, double seconds, F f) {
  f();
  int n = 0;
  const auto start = Clock::now();
  double elapsed = 0;
  do {
    f();
    ++n;
    elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  } while (elapsed < seconds);
  return flops * n / elapsed / 1e9;
}

// a [m, k] x b [k, n] through oneDNN's matmul: a in bf16, b packed as its kernel wants
// (bf16), an f32 result. Returns GFLOPS.
double onednn_matmul_gflops(int64_t m, int64_t k, int64_t n, double seconds) {
  using dnnl::memory;
  dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  dnnl::stream stream(engine);
  const memory::desc a({m, k}, memory::data_type::bf16, memory::format_tag::ab),
      b({k, n}, memory::data_type::bf16, memory::format_tag::any), c({m, n}, memory::data_type::f32, memory::format_tag::ab);
#if DNNL_VERSION_MAJOR >= 3
  const dnnl::matmul::primitive_desc pd(engine, a, b, c);
#else
  const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a, b, c), engine);
#endif
  memory am(a, engine), bm(pd.weights_desc(), engine), cm(c, engine);
  // Inputs of zeros would take no shortcuts: the units multiply them all the same.
  for (memory* x : {&am, &bm}) std::memset(x->get_data_handle(), 0, x->get_desc().get_size());
  const dnnl::matmul product(pd);
  return gflops(2.0 * double(m) * double(k) * double(n), seconds, [&] {
    product.execute(stream, {{DNNL_ARG_SRC, am}, {DNNL_ARG_WEIGHTS, bm}, {DNNL_ARG_DST, cm}});
    stream.wait();
  });
}

}  // namespace

int main(int argc, char** argv) {
  const int threads = argc > 1 ? std::stoi(argv[1]) : 2;
  const double seconds = argc > 2 ? std::stod(argv[2]) : 2.0;
  inpaint::init_runtime(threads);
  at::NoGradGuard no_grad;
  double best_gemm = 0, best_conv = 0, best_winograd = 0, best_bf16_gemm = 0, best_bf16_conv = 0, best_bf16_matmul = 0;
  inpaint::Compute direct, winograd_where_suited, bf16;
  direct.policy.winograd_from_pixels = 0;
  bf16.precision = inpaint::Precision::bf16;
  const bool native_bf16 = !inpaint::cpu_features().native_bf16().empty();
  // Linear layers: tokens x in -> out (attention projections, feed-forward).
  struct Gemm { int64_t m, k, n; };
  for (const Gemm g : std::vector<Gemm>{{8192, 320, 320}, {8192, 320, 2560}, {8192, 1280, 320},
                                        {2048, 640, 640}, {2048, 640, 5120}, {512, 1280, 1280}}) {
    const at::Tensor a = at::randn({g.m, g.k}), b = at::randn({g.k, g.n});
    at::Tensor c = at::empty({g.m, g.n});  // a fresh output each call would time page faults
    const double r = gflops(2.0 * g.m * g.k * g.n, seconds, [&] { return at::mm_out(c, a, b); });
    best_gemm = std::max(best_gemm, r);
    std::printf("gemm %5lld x %4lld x %4lld: %6.1f GFLOPS", (long long)g.m, (long long)g.k, (long long)g.n, r);
    if (native_bf16) {
      inpaint::Linear linear;  // as the networks' linear layers: a packed 1x1 convolution
      linear.weight = b.t().contiguous();
      // bf16 input, as the networks' normalisations, GEGLU and attention hand it over.
      const at::Tensor a16 = a.to(at::kBFloat16);
      const double r16 = gflops(2.0 * g.m * g.k * g.n, seconds, [&] { return linear(bf16, a16); });
      best_bf16_gemm = std::max(best_bf16_gemm, r16);
      const double r_matmul = onednn_matmul_gflops(g.m, g.k, g.n, seconds);
      best_bf16_matmul = std::max(best_bf16_matmul, r_matmul);
      std::printf(", bf16 %7.1f GFLOPS (oneDNN's matmul %7.1f)", r16, r_matmul);
    }
    std::printf("\n");
  }
  // 3x3 convolutions of the resnet blocks, batch 2.
  struct Conv { int64_t c, hw; };
  for (const Conv c : std::vector<Conv>{{320, 64}, {640, 32}, {1280, 16}, {1280, 8}}) {
    const at::Tensor x = at::randn({2, c.c, c.hw, c.hw}), w = at::randn({c.c, c.c, 3, 3}), b = at::randn({c.c});
    const double flops = 2.0 * 2 * c.c * c.hw * c.hw * c.c * 9;
    const double r = gflops(flops, seconds, [&] { return at::conv2d(x, w, b, 1, 1); });
    std::shared_ptr<inpaint::PackedConvWeight> packed, packed_nhwc;
    const double rp = gflops(flops, seconds, [&] { return inpaint::packed_conv2d(direct, x, w, b, 1, 1, packed); });
    const at::Tensor xl = x.contiguous(at::MemoryFormat::ChannelsLast);  // as the networks keep activations
    const double rl = gflops(flops, seconds, [&] { return inpaint::packed_conv2d(direct, xl, w, b, 1, 1, packed_nhwc); });
    best_conv = std::max({best_conv, r, rp, rl});
    std::printf("conv3x3 %4lld ch at %2lldx%-2lld: %6.1f GFLOPS, packed weight %6.1f GFLOPS, packed and NHWC %6.1f GFLOPS",
                (long long)c.c, (long long)c.hw, (long long)c.hw, r, rp, rl);
    std::shared_ptr<inpaint::PackedConvWeight> winograd;
    if (inpaint::packed_conv2d(winograd_where_suited, xl, w, b, 1, 1, winograd).defined() &&
        inpaint::packed_for_winograd(*winograd)) {
      const double rw =
          gflops(flops, seconds, [&] { return inpaint::packed_conv2d(winograd_where_suited, xl, w, b, 1, 1, winograd); });
      best_winograd = std::max(best_winograd, rw);
      std::printf(", Winograd kernel %6.1f effective", rw);
    }
    if (native_bf16) {
      std::shared_ptr<inpaint::PackedConvWeight> packed16;
      const double r16 = gflops(flops, seconds, [&] { return inpaint::packed_conv2d(bf16, xl, w, b, 1, 1, packed16); });
      best_bf16_conv = std::max(best_bf16_conv, r16);
      std::printf(", bf16 %7.1f GFLOPS", r16);
    }
    std::printf("\n");
  }
  std::printf("{\"threads\": %d, \"blas_kernels\": \"%s\", \"gemm_gflops\": %.1f, \"conv_gflops\": %.1f, "
              "\"winograd_effective_gflops\": %.1f, \"native_bf16\": \"%s\", \"bf16_gemm_gflops\": %.1f, "
              "\"bf16_conv_gflops\": %.1f, \"bf16_matmul_gflops\": %.1f}\n",
              at::get_num_threads(), inpaint::blas_kernels(), best_gemm, best_conv, best_winograd,
              inpaint::cpu_features().native_bf16().c_str(), best_bf16_gemm, best_bf16_conv, best_bf16_matmul);
}
