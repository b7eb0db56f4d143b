// bench_packing [THREADS] [RUNS]: how fast f16 weights of SDXL's shapes are packed into
// oneDNN's bf16 layouts (what streamed weights cost at every call), in GB of f16 read per
// second: AVX512-BF16's layout (OhwI64o2i) and AMX's (OhwI16i64o2i), each by
// pack_bf16_pairs, by the strided copy through the layout's view, and by widening to f32
// and oneDNN's reorder (how AMX's layouts were packed before pack_bf16_pairs took them).
// Runs on any processor with AVX512-BF16: the layouts are oneDNN's descriptors, not the
// kernels'. Not a test.
#include <ATen/ATen.h>

#include <chrono>
#include <cstdio>
#include <functional>
#include <string>

#include <oneapi/dnnl/dnnl.hpp>

#include "engine/runtime.h"
#include "models/kernels/bf16_packing.h"
#include "models/kernels/cpu.h"
#include "models/kernels/onednn.h"

namespace {
using namespace inpaint;
using tag = dnnl::memory::format_tag;

// The best of `runs` timings of f, in seconds.
double best_of(int runs, const std::function<void()>& f) {
  double best = 1e30;
  for (int i = 0; i < runs; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return best;
}
}  // namespace

int main(int argc, char** argv) {
  init_runtime(argc > 1 ? std::stoi(argv[1]) : 2);
  const int runs = argc > 2 ? std::stoi(argv[2]) : 5;
  if (cpu_features().native_bf16().empty()) {
    std::printf("no native bf16 on %s: bf16 weights are never packed here\n", cpu_features().name.c_str());
    return 0;
  }
  const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  struct Shape { int64_t out, in, k; };
  // SDXL's 3x3 at 1280 and 640 channels, GEGLU's projection and the feed-forward's output.
  for (const Shape& s : {Shape{1280, 1280, 3}, Shape{640, 640, 3}, Shape{10240, 1280, 1}, Shape{1280, 5120, 1}}) {
    const at::Tensor weight = at::randn({s.out, s.in, s.k, s.k}).to(at::kHalf);
    const double gb = double(weight.nbytes()) / 1e9;
    for (tag t : {tag::AcdB64a2b, tag::AcdB16b64a2b}) {
      const dnnl::memory::desc layout(weight.sizes().vec(), dnnl::memory::data_type::bf16, t);
      const auto view = blocked_view(onednn::layout_of(layout));
      at::Tensor out = at::empty({int64_t(layout.get_size() / 2)}, at::kBFloat16);
      uint16_t* bits = reinterpret_cast<uint16_t*>(out.data_ptr<at::BFloat16>());
      const double pairs = best_of(runs, [&] { pack_bf16_pairs(weight, *view, bits); });
      const double copy = best_of(runs, [&] {
        out.as_strided(view->flat_sizes(), view->flat_strides()).copy_(weight.reshape(view->flat_sizes()));
      });
      const double reorder = best_of(runs, [&] {
        const at::Tensor plain = weight.to(at::kFloat).contiguous();
        const dnnl::memory::desc from_desc(plain.sizes().vec(), dnnl::memory::data_type::f32, tag::oihw);
        dnnl::memory from(from_desc, engine, plain.data_ptr()), to(layout, engine, out.data_ptr());
        dnnl::stream stream(engine);
        dnnl::reorder(from, to).execute(stream, from, to);
        stream.wait();
      });
      std::printf("%5lld x %5lld x %lldx%lld %-13s pack_bf16_pairs %6.2f GB/s, strided copy %5.2f GB/s, "
                  "widen + reorder %5.2f GB/s\n",
                  static_cast<long long>(s.out), static_cast<long long>(s.in), static_cast<long long>(s.k),
                  static_cast<long long>(s.k), t == tag::AcdB64a2b ? "OhwI64o2i" : "OhwI16i64o2i", gb / pairs,
                  gb / copy, gb / reorder);
    }
  }
  return 0;
}
