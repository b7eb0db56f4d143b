// The speed paths compute what the plain ones do: projections through oneDNN equal
// at::linear, layers on packed weights equal at::conv2d / at::linear, and libtorch's
// parallel loops in our code really use the threads.
#include <ATen/Parallel.h>

#include <mutex>
#include <set>

#include "models/layers.h"
#include "models/kernels/bf16_packing.h"
#include "models/kernels/conv_bands.h"
#include "models/kernels/cpu.h"
#include "models/kernels/f16_arithmetic.h"
#include "models/kernels/geglu.h"
#include "models/kernels/norm_bf16.h"
#include "models/kernels/onednn.h"
#include "engine/error.h"
#include "models/kernels/packed_conv.h"
#include "tests/parity_support.h"
#include "tests/test_support.h"

using namespace inpaint;

TEST_CASE("project() equals at::linear: few rows (OpenBLAS) and many (oneDNN), 2-D and 3-D, with and without bias") {
  at::manual_seed(3);
  const at::Tensor w = at::randn({48, 64}), b = at::randn({48});
  for (const std::vector<int64_t>& shape : {std::vector<int64_t>{5, 64}, {300, 64}, {2, 150, 64}, {1, 4096, 64}}) {
    CAPTURE(shape.size());
    CAPTURE(shape[shape.size() - 2]);
    const at::Tensor x = at::randn(shape);
    const at::Tensor expected = at::linear(x, w, b);
    const at::Tensor got = project(x, w, b);
    CHECK(got.sizes() == expected.sizes());
    CHECK(test::max_abs_diff(got, expected) < 1e-5 * expected.abs().max().item<double>());
    CHECK(test::max_abs_diff(project(x, w), at::linear(x, w)) < 1e-5 * expected.abs().max().item<double>());
  }
  // A non-contiguous input (every other token) is read correctly.
  const at::Tensor x = at::randn({1, 600, 64}).slice(1, 0, 600, 2);
  CHECK(test::max_abs_diff(project(x, w, b), at::linear(x, w, b)) < 1e-4);
}

namespace {
double relative_error(const at::Tensor& got, const at::Tensor& expected) {
  REQUIRE(got.sizes() == expected.sizes());
  return test::max_abs_diff(got, expected) / expected.abs().max().item<double>();
}
}  // namespace

#if DNNL_VERSION_MAJOR >= 3
// oneDNN's own (models/kernels/onednn.cpp puts its mend in its place).
namespace dnnl::impl::cpu::platform {
unsigned get_per_core_cache_size(int level);
}
#endif

TEST_CASE("oneDNN sizes its kernels by this processor's caches, also where a virtual machine hides AMD's cache topology") {
#if DNNL_VERSION_MAJOR >= 3
  using dnnl::impl::cpu::platform::get_per_core_cache_size;
  MESSAGE("oneDNN's cache sizes per core: L1 " << get_per_core_cache_size(1) << ", L2 " << get_per_core_cache_size(2)
                                               << ", L3 " << get_per_core_cache_size(3) << " bytes"
                                               << std::string(onednn::cache_sizes_from_legacy_leaves()
                                                                  ? " (AMD's topology hidden: from the legacy leaves)"
                                                                  : ""));
  // Every processor here has at least these; oneDNN 3.7 took 1 byte where leaf 0x8000001D
  // is empty, and its f32 1x1 convolutions to 80 channels were then 30 % off (the next test
  // case's linear layers).
  CHECK(get_per_core_cache_size(1) >= 16u << 10);
  CHECK(get_per_core_cache_size(2) >= 128u << 10);
#else
  MESSAGE("oneDNN 2.x does not read AMD's cache topology leaf: nothing to mend");
#endif
}

TEST_CASE("convolutions and linear layers on packed weights equal at::conv2d and at::linear") {
  at::manual_seed(4);
  for (const auto dtype : {at::kFloat, at::kHalf}) {
    CAPTURE(dtype);
    SUBCASE("3x3, stride 1 and 2, 9 input channels, 20 output channels (a padded layout)") {
      struct Case { int64_t in, out, kernel, stride, padding; };
      for (const Case& k : {Case{48, 64, 3, 1, 1}, Case{48, 64, 3, 2, 1}, Case{9, 32, 3, 1, 1}, Case{48, 20, 3, 1, 1}}) {
        CAPTURE(k.out);
        CAPTURE(k.in);
        CAPTURE(k.kernel);
        CAPTURE(k.stride);
        Conv2d conv;
        conv.weight = at::randn({k.out, k.in, k.kernel, k.kernel}).to(dtype);
        conv.bias = at::randn({k.out});
        conv.stride = k.stride;
        conv.padding = k.padding;
        const at::Tensor w = conv.weight.to(at::kFloat);
        // The first call packs; a second shape (batch, size) reuses the packed weight.
        for (const at::Tensor& x : {at::randn({2, k.in, 16, 16}), at::randn({1, k.in, 9, 11})}) {
          CHECK(relative_error(conv({}, x), at::conv2d(x, w, conv.bias, k.stride, k.padding)) < 1e-5);
          CHECK(conv.packed != nullptr);
        }
      }
    }
    SUBCASE("3x3 over many pixels through the Winograd kernel, and then a smaller shape too") {
      Compute cp;
      cp.policy.winograd_from_pixels = 2 * 24 * 24;
      // Where oneDNN has no Winograd kernel (oneDNN 3.x), the direct one runs: same numbers.
      const bool wino = winograd_available();
      if (!wino) MESSAGE("no Winograd kernel in this oneDNN: the direct kernel runs instead");
      for (const auto format : {at::MemoryFormat::Contiguous, at::MemoryFormat::ChannelsLast}) {
        const at::Tensor w = at::randn({48, 32, 3, 3}).to(dtype), b = at::randn({48});
        std::shared_ptr<PackedConvWeight> packed;
        const int64_t before = winograd_convolutions();
        const at::Tensor x = at::randn({2, 32, 24, 30}).contiguous(format);
        const at::Tensor y = packed_conv2d(cp, x, w, b, 1, 1, packed);
        REQUIRE(y.defined());
        CHECK(packed_for_winograd(*packed) == wino);
        CHECK(winograd_convolutions() == before + (wino ? 1 : 0));
        CHECK(y.is_contiguous(format));
        CHECK(relative_error(y, at::conv2d(x, w.to(at::kFloat), b, 1, 1)) < 1e-5);
        // Fewer pixels, where the direct kernel would be chosen: the packed weight stays
        // with the Winograd kernel (its layout is the one it has).
        const at::Tensor small = at::randn({1, 32, 16, 20}).contiguous(format);
        const at::Tensor y_small = packed_conv2d(cp, small, w, b, 1, 1, packed);
        REQUIRE(y_small.defined());
        CHECK(winograd_convolutions() == before + (wino ? 2 : 0));
        CHECK(packed_for_winograd(*packed) == wino);
        CHECK(relative_error(y_small, at::conv2d(small, w.to(at::kFloat), b, 1, 1)) < 1e-5);
        // Through a layer: the same, whichever kernel runs.
        Conv2d conv;
        conv.weight = w;
        conv.bias = b;
        conv.padding = 1;
        for (const at::Tensor& input : {x, at::randn({1, 32, 8, 8}).contiguous(format)})
          CHECK(relative_error(conv(cp, input), at::conv2d(input, w.to(at::kFloat), b, 1, 1)) < 1e-5);
      }
      // Kept copies (as mapped from the packed cache): one for the direct kernel is packed
      // again where the Winograd kernel suits; otherwise a kept copy is used as it is.
      const at::Tensor w = at::randn({48, 32, 3, 3}).to(dtype), b = at::randn({48});
      const at::Tensor large = at::randn({2, 32, 24, 30}), small = at::randn({1, 32, 16, 20});
      auto kept_copy = [&](const std::shared_ptr<PackedConvWeight>& from) {
        at::Tensor data;
        std::string layout;
        REQUIRE(packed_contents(*from, data, layout));
        std::shared_ptr<PackedConvWeight> kept = new_packed_slot();
        REQUIRE(restore_packed(*kept, data, layout));
        return kept;
      };
      std::shared_ptr<PackedConvWeight> for_winograd, for_direct;
      REQUIRE(packed_conv2d(cp, large, w, b, 1, 1, for_winograd).defined());
      REQUIRE(packed_for_winograd(*for_winograd) == wino);
      {
        Compute direct = cp;
        direct.policy.winograd_from_pixels = 0;  // the direct kernel
        REQUIRE(packed_conv2d(direct, large, w, b, 1, 1, for_direct).defined());
        CHECK_FALSE(packed_for_winograd(*for_direct));
      }
      const at::Tensor expected_large = at::conv2d(large, w.to(at::kFloat), b, 1, 1);
      const at::Tensor expected_small = at::conv2d(small, w.to(at::kFloat), b, 1, 1);
      std::shared_ptr<PackedConvWeight> kept = kept_copy(for_direct);
      CHECK(relative_error(packed_conv2d(cp, large, w, b, 1, 1, kept), expected_large) < 1e-5);
      CHECK(packed_in_process(*kept) == wino);
      CHECK(packed_for_winograd(*kept) == wino);
      kept = kept_copy(for_winograd);
      CHECK(relative_error(packed_conv2d(cp, small, w, b, 1, 1, kept), expected_small) < 1e-5);
      CHECK_FALSE(packed_in_process(*kept));
      CHECK(packed_for_winograd(*kept) == wino);
      kept = kept_copy(for_direct);
      CHECK(relative_error(packed_conv2d(cp, small, w, b, 1, 1, kept), expected_small) < 1e-5);
      CHECK_FALSE(packed_in_process(*kept));
      CHECK_FALSE(packed_for_winograd(*kept));
    }
    SUBCASE("1x1: channels last through the packed weight, contiguous left to at::conv2d") {
      Conv2d conv;
      conv.weight = at::randn({64, 48, 1, 1}).to(dtype);
      conv.bias = at::randn({64});
      const at::Tensor x = at::randn({2, 48, 16, 16});
      CHECK(relative_error(conv({}, x), at::conv2d(x, conv.weight.to(at::kFloat), conv.bias)) < 1e-5);
      CHECK(conv.packed == nullptr);
      const at::Tensor last = x.contiguous(at::MemoryFormat::ChannelsLast);
      CHECK(relative_error(packed_conv2d({}, last, conv.weight, conv.bias, 1, 0, conv.packed),
                           at::conv2d(x, conv.weight.to(at::kFloat), conv.bias)) < 1e-5);
      CHECK(conv.packed != nullptr);
    }
    SUBCASE("a channels-last input gives a channels-last output") {
      const at::Tensor w = at::randn({32, 24, 3, 3}).to(dtype), b = at::randn({32});
      const at::Tensor x = at::randn({2, 24, 12, 12}).contiguous(at::MemoryFormat::ChannelsLast);
      std::shared_ptr<PackedConvWeight> packed;
      const at::Tensor y = packed_conv2d({}, x, w, b, 1, 1, packed);
      REQUIRE(y.defined());
      CHECK(y.is_contiguous(at::MemoryFormat::ChannelsLast));
      CHECK(relative_error(y, at::conv2d(x, w.to(at::kFloat), b, 1, 1)) < 1e-5);
    }
    SUBCASE("in bands of output rows (the decoders' large convolutions): input steps, upsampling, 1x1, batch of 2") {
      GroupNorm norm;
      norm.weight = at::randn({24}).to(dtype);
      norm.bias = at::randn({24}).to(dtype);
      norm.groups = 4;
      struct Case { int64_t kernel, out; ConvInput in; int64_t batch; };
      for (const Case& k : {Case{3, 32, {&norm, ConvInput::kSilu}, 1}, Case{3, 32, {nullptr, ConvInput::kNone, true}, 1},
                            Case{3, 20, {&norm, ConvInput::kRelu, true}, 2}, Case{1, 32, {}, 1}, Case{1, 32, {&norm}, 2}}) {
        CAPTURE(k.kernel);
        CAPTURE(k.in.upsample2x);
        CAPTURE(k.batch);
        const at::Tensor w = at::randn({k.out, 24, k.kernel, k.kernel}).to(dtype), b = at::randn({k.out});
        const at::Tensor x = at::randn({k.batch, 24, 13, 11}).contiguous(at::MemoryFormat::ChannelsLast);
        // The steps on the whole input, then one convolution.
        at::Tensor t = k.in.norm ? at::group_norm(x, norm.groups, norm.weight.to(at::kFloat), norm.bias.to(at::kFloat), norm.eps) : x;
        if (k.in.activation == ConvInput::kSilu) t = at::silu(t);
        if (k.in.activation == ConvInput::kRelu) t = at::relu(t);
        if (k.in.upsample2x) t = at::upsample_nearest2d(t, {t.size(2) * 2, t.size(3) * 2});
        const at::Tensor expected = at::conv2d(t, w.to(at::kFloat), b, 1, k.kernel / 2);
        REQUIRE(bands_apply(x, k.in, k.kernel, 1, k.kernel / 2));
        // One band; bands of 5 and 7 rows (the last one ending at the image's end, over rows of
        // the one before; a zero row above the first).
        for (const int64_t rows : {0, 5, 7}) {
          CAPTURE(rows);
          std::shared_ptr<PackedConvWeight> packed;
          at::Tensor scale, shift;
          if (k.in.norm) std::tie(scale, shift) = k.in.norm->affine({}, x);
          const at::Tensor y = conv_in_bands({}, x, k.in, scale, shift, w, b, packed, int64_t(1) << 30, rows);
          REQUIRE(y.defined());
          CHECK(y.is_contiguous(at::MemoryFormat::ChannelsLast));
          CHECK(relative_error(y, expected) < 1e-5);
        }
        // Activations stored as f16 (--max-memory, SDXL): f16 in, f16 out, f32 bands; bands
        // of 5 rows, and bands as many rows as hold 4 rows of the f32 result (which outgrows
        // the input's rows where there are more output channels).
        const at::Tensor x16 = x.to(at::kHalf);
        REQUIRE(x16.is_contiguous(at::MemoryFormat::ChannelsLast));
        REQUIRE(bands_apply(x16, k.in, k.kernel, 1, k.kernel / 2));
        for (const int64_t rows : {5, 0}) {
          CAPTURE(rows);
          std::shared_ptr<PackedConvWeight> packed;
          at::Tensor scale, shift;
          if (k.in.norm) std::tie(scale, shift) = k.in.norm->affine({}, x16);
          const int64_t band_floats = 4 * k.batch * k.out * x.size(3) * (k.in.upsample2x ? 2 : 1);
          const at::Tensor y16 = conv_in_bands({}, x16, k.in, scale, shift, w, b, packed, band_floats, rows, at::kHalf);
          REQUIRE(y16.defined());
          CHECK((y16.scalar_type() == at::kHalf));
          CHECK(y16.is_contiguous(at::MemoryFormat::ChannelsLast));
          // f16's rounding of the input and of the output: 2^-11 relative each at most.
          CHECK(relative_error(y16.to(at::kFloat), expected) < 2e-3);
        }
      }
      const at::Tensor x = at::randn({1, 24, 8, 8}).contiguous(at::MemoryFormat::ChannelsLast);
      CHECK_FALSE(bands_apply(x, {}, 3, 2, 1));  // strided
      CHECK_FALSE(bands_apply(x, {nullptr, ConvInput::kNone, false, 1}, 3, 1, 1));  // padded at the end
      CHECK_FALSE(bands_apply(x.contiguous(), {}, 3, 1, 1));  // NCHW
    }
    SUBCASE("linear layers: many rows, few rows, a LoRA on the input") {
      Linear linear;
      linear.weight = at::randn({80, 64}).to(dtype);
      linear.bias = at::randn({80});
      const at::Tensor w = linear.weight.to(at::kFloat);
      for (const at::Tensor& x : {at::randn({2, 100, 64}), at::randn({5, 64})}) {
        CHECK(relative_error(linear({}, x), at::linear(x, w, linear.bias)) < 1e-5);
        CHECK(linear.packed != nullptr);
      }
      linear.lora = LoraFactors{at::randn({80, 4}), at::randn({4, 64})};
      const at::Tensor x = at::randn({3, 64});  // few rows: the LoRA goes on the input
      CHECK(relative_error(linear({}, x), at::linear(x, w + at::matmul(linear.lora.up, linear.lora.down), linear.bias)) < 1e-5);
    }
  }
}

TEST_CASE("as_activations: an image made from HWC pixels (batch stride 3) becomes channels last that the "
          "kernels see as such, and convolutions of it stay channels last; tensors already so are not copied") {
  at::manual_seed(3);
  const Compute nhwc;  // channels last, the default
  const at::Tensor pixels = at::rand({24, 20, 3});
  const at::Tensor image = pixels.permute({2, 0, 1}).unsqueeze(0);  // as engine/inpaint.cpp makes it
  // libtorch alone: channels last by is_contiguous, NCHW by suggest_memory_format.
  REQUIRE(image.is_contiguous(at::MemoryFormat::ChannelsLast));
  REQUIRE(image.suggest_memory_format() == at::MemoryFormat::Contiguous);
  const at::Tensor in = as_activations(nhwc, image);
  CHECK(in.suggest_memory_format() == at::MemoryFormat::ChannelsLast);
  CHECK(in.equal(image));
  Conv2d conv;
  conv.weight = at::randn({8, 3, 3, 3});
  conv.bias = at::randn({8});
  conv.padding = 1;
  const at::Tensor y = conv(nhwc, in);
  CHECK(y.suggest_memory_format() == at::MemoryFormat::ChannelsLast);
  CHECK(relative_error(y, at::conv2d(image.contiguous(), conv.weight, conv.bias, 1, 1)) < 1e-6);
  // A channels-last tensor, and a band of its rows, are used as they are.
  const at::Tensor activations = at::randn({1, 16, 12, 10}).contiguous(at::MemoryFormat::ChannelsLast);
  CHECK(as_activations(nhwc, activations).data_ptr() == activations.data_ptr());
  const at::Tensor band = activations.narrow(2, 4, 5);
  CHECK(as_activations(nhwc, band).data_ptr() == band.data_ptr());
  // Under NCHW activations, the image is made contiguous.
  Compute nchw;
  nchw.policy.channels_last = false;
  CHECK(as_activations(nchw, image).is_contiguous());
}

TEST_CASE("f16 sums and ReLUs (add_f16, relu_f16) are libtorch's bit for bit: rounding, overflow, subnormals, "
          "NaN and -0; tensors they do not take are left to libtorch") {
  if (!cpu_features().avx2 || !cpu_features().f16c) {
    MESSAGE("skipped: no AVX2 and F16C here");
    return;
  }
  at::manual_seed(5);
  // Odd sizes (a tail shorter than a vector), channels last as the memory policies store them.
  const auto cl = at::MemoryFormat::ChannelsLast;
  at::Tensor a = (at::randn({1, 24, 13, 7}) * 3).to(at::kHalf).contiguous(cl);
  at::Tensor b = (at::randn({1, 24, 13, 7}) * 3).to(at::kHalf).contiguous(cl);
  auto flat = [](at::Tensor& t) { return t.permute({0, 2, 3, 1}).reshape({-1}); };
  const float specials[][2] = {{NAN, 1}, {-0.0f, -0.0f}, {-0.0f, 0.0f}, {60000, 60000}, {-60000, -60000},
                               {INFINITY, -1}, {6e-8f, 6e-8f}, {1e-5f, -2e-5f}, {2049, 1}, {-1, 1}};
  for (int i = 0; i < 10; ++i) {
    flat(a)[i] = specials[i][0];
    flat(b)[i] = specials[i][1];
  }
  for (const bool relu : {false, true}) {
    CAPTURE(relu);
    at::Tensor ours = a.clone(), theirs = a.clone();
    REQUIRE(add_f16(ours, b, relu));
    theirs.add_(b);
    if (relu) theirs.masked_fill_(theirs.lt(0), 0);
    // Bit for bit (NaN included): compared as the raw 16-bit words.
    CHECK(ours.view(at::kShort).equal(theirs.view(at::kShort)));
  }
  at::Tensor alone = a.clone(), expected = a.clone();
  REQUIRE(relu_f16(alone));
  expected.masked_fill_(expected.lt(0), 0);
  CHECK(alone.view(at::kShort).equal(expected.view(at::kShort)));
  // Not taken: other strides, f32, columns of a channels-last image (not dense); y left
  // as it was. (A band of rows of one image is dense: taken.)
  at::Tensor y = a.clone();
  CHECK(!add_f16(y, b.contiguous(), false));
  at::Tensor f32 = a.to(at::kFloat);
  CHECK(!add_f16(f32, b.to(at::kFloat), false));
  at::Tensor columns = y.narrow(3, 2, 3);
  CHECK(!add_f16(columns, b.narrow(3, 2, 3), false));
  CHECK(y.view(at::kShort).equal(a.view(at::kShort)));
  // add_in_place takes either way, with the same sums.
  const at::Tensor sum = (a + b).contiguous(cl);
  CHECK(add_in_place(a.clone(), b).view(at::kShort).equal(sum.view(at::kShort)));
  CHECK(add_in_place(a.clone(), b.contiguous()).view(at::kShort).equal(sum.view(at::kShort)));
}

TEST_CASE("GroupNorm::affine is the normalisation as a per-channel map: channels last in f32 and f16 (one "
          "AVX-512 pass where the processor runs it), NCHW, with the statistics of the whole tensor") {
  at::manual_seed(12);
  GroupNorm norm;
  norm.weight = at::randn({64});
  norm.bias = at::randn({64});
  norm.groups = 8;
  // An offset mean and a batch of 2: sums of squares far from zero, per image.
  const at::Tensor x = at::randn({2, 64, 37, 29}) * 3 + 5;
  for (const at::Tensor& in : {x.contiguous(at::MemoryFormat::ChannelsLast), x,
                               x.to(at::kHalf).contiguous(at::MemoryFormat::ChannelsLast)}) {
    CAPTURE(in.scalar_type());
    CAPTURE(in.is_contiguous());
    const auto [scale, shift] = norm.affine({}, in);
    // Against the normalisation in double of the same (f32 or f16) values: libtorch's
    // own in f32 is 0.9-1.4e-6 from it here (its variance in one f32 pass).
    const at::Tensor reference = at::group_norm(in.to(at::kDouble), norm.groups, norm.weight.to(at::kDouble),
                                                norm.bias.to(at::kDouble), norm.eps);
    const double error = relative_error(in.to(at::kFloat) * scale + shift, reference);
    MESSAGE("relative error " << error);
    CHECK(error < 5e-7);
  }
}

TEST_CASE("at::parallel_for in our code runs on several threads (it is OpenMP in libtorch's headers)") {
  const int saved = at::get_num_threads();
  at::set_num_threads(2);
  std::set<int> threads;
  std::mutex m;
  at::parallel_for(0, 2, 1, [&](int64_t, int64_t) {
    std::lock_guard<std::mutex> lock(m);
    threads.insert(at::get_thread_num());
  });
  at::set_num_threads(saved);
  CHECK(threads.size() == 2);
}

TEST_CASE("bf16 products where the processor has native bf16: convolutions and linear layers within bf16's "
          "rounding of fp32, and really in bf16; elsewhere bf16 is refused and auto means fp32") {
  at::manual_seed(8);
  if (cpu_features().native_bf16().empty()) {
    MESSAGE("no native bf16 on " << cpu_features().name << ": checking the refusal");
    CHECK_THROWS_WITH_AS(choose_precision("bf16", "--precision"), doctest::Contains("no native bf16"), Error);
    CHECK(choose_precision("auto", "--precision") == Precision::fp32);
    return;
  }
  MESSAGE("native bf16 on " << cpu_features().name << ": " << cpu_features().native_bf16());
  CHECK(choose_precision("auto", "--precision") == Precision::bf16);
  CHECK_THROWS_AS(choose_precision("half", "--precision"), Error);
  Compute bf16;
  bf16.precision = Precision::bf16;
  // Inputs and weights rounded to bf16 (8 significant bits: relative error up to 2^-9 each),
  // products summed in f32: over hundreds of terms of both signs the output's error stays
  // near 2^-8 of its scale. 1e-2 of the largest output bounds that with room; an fp32
  // kernel would be within 1e-5, so the lower bound shows bf16 really ran.
  for (const auto dtype : {at::kFloat, at::kHalf}) {
    CAPTURE(dtype);
    for (const int64_t k : {3, 1}) {
      CAPTURE(k);
      Conv2d conv;
      conv.weight = at::randn({64, 48, k, k}).to(dtype);
      conv.bias = at::randn({64});
      conv.padding = k / 2;
      const at::Tensor x = at::randn({2, 48, 16, 16}).contiguous(at::MemoryFormat::ChannelsLast);
      const at::Tensor y = conv(bf16, x);
      const double e = relative_error(y, at::conv2d(x, conv.weight.to(at::kFloat), conv.bias, 1, k / 2));
      MESSAGE("bf16 convolution " << k << "x" << k << ": relative error " << e);
      CHECK(e < 1e-2);
      CHECK(e > 1e-5);
      // ReLU taken by the kernel, the result written as bf16: the f32 one's ReLU rounded
      // (within one bf16 unit: the kernel writing bf16 may sum in another order); read
      // as it is by a convolution after it. fp32 products: the ReLU after, f32 exactly.
      const at::Tensor fused = conv(bf16, x, {}, {.relu = true, .bf16 = true});
      REQUIRE((fused.scalar_type() == at::kBFloat16));
      const at::Tensor relu = at::relu(y);
      CHECK(((fused.to(at::kFloat) - relu).abs() - relu / 128 - 1e-6).max().item<double>() <= 0.0);
      CHECK(fused.min().item<float>() == 0.0f);
      CHECK(test::max_abs_diff(conv(bf16, x, {}, {.relu = true}), relu) <= 1e-6 * relu.max().item<double>());
      Conv2d next;
      next.weight = at::randn({8, 64, 3, 3});
      next.padding = 1;
      CHECK(test::max_abs_diff(next(bf16, fused), next(bf16, fused.to(at::kFloat))) == 0.0);
      const at::Tensor fp32 = conv(Compute{}, x, {}, {.relu = true, .bf16 = true});
      CHECK((fp32.scalar_type() == at::kFloat));
      CHECK(test::max_abs_diff(fp32, at::relu(conv(Compute{}, x))) == 0.0);
    }
    Linear linear;
    linear.weight = at::randn({80, 64}).to(dtype);
    linear.bias = at::randn({80});
    const at::Tensor x = at::randn({2, 300, 64});
    const double e = relative_error(linear(bf16, x), at::linear(x, linear.weight.to(at::kFloat), linear.bias));
    MESSAGE("bf16 linear: relative error " << e);
    CHECK(e < 1e-2);
    CHECK(e > 1e-5);
    // A bf16 input (GEGLU's product) is taken as it is: the same products as from f32.
    CHECK(test::max_abs_diff(linear(bf16, x.to(at::kBFloat16)), linear(bf16, x)) == 0.0);
    // Asked for, a bf16 output: the f32 one rounded (within one bf16 unit: the kernel
    // writing bf16 may sum in another order).
    const at::Tensor rounded = linear(bf16, x, at::kBFloat16);
    REQUIRE((rounded.scalar_type() == at::kBFloat16));
    const at::Tensor full = linear(bf16, x);
    CHECK(((rounded.to(at::kFloat) - full).abs() - full.abs() / 128 - 1e-6).max().item<double>() <= 0.0);
    CHECK((linear(Compute{}, x, at::kBFloat16).scalar_type() == at::kFloat));  // fp32 products: f32 all the same
    // Added to a residual in place by the packed product itself: the same sums.
    const at::Tensor base = at::randn({2, 300, 80});
    at::Tensor residual = base.clone();
    linear.add_to(bf16, x, residual);
    CHECK(test::max_abs_diff(residual, base + full) <= 1e-5 * (base + full).abs().max().item<double>());
    CHECK(test::max_abs_diff(residual, base) > 1e-3);
  }
  // GEGLU's product in bf16: each element rounded once (relative error <= 2^-8) from
  // value * gelu(gate) with Phi within 1e-6, and gelu within 3e-4 relative where it is
  // above 1e-3 (so at most 1e-6 of |value| more, where gelu is near 0). 72 channels: a masked tail of 8. Gates far out too (the third
  // batch: up to +-60, where Phi's polynomial raised to the 16th would overflow f32).
  REQUIRE(geglu_bf16_available());  // every processor with native bf16 has AVX-512
  const at::Tensor h = at::cat({at::randn({2, 300, 2 * 72}) * 3, at::randn({1, 300, 2 * 72}) * 20}, 0);
  const auto parts = h.chunk(2, -1);
  const at::Tensor expected = parts[0] * at::gelu(parts[1]);
  const at::Tensor got = geglu_bf16(h);
  REQUIRE((got.scalar_type() == at::kBFloat16));
  const at::Tensor excess = (got.to(at::kFloat) - expected).abs() - expected.abs() / 256 - parts[0].abs() * 1e-6;
  CHECK(at::isfinite(got.to(at::kFloat)).all().item<bool>());
  CHECK(excess.max().item<double>() <= 0.0);
  CHECK(test::max_abs_diff(got.to(at::kFloat), expected) > 1e-5);  // rounded to bf16 indeed
  // A bf16 projection (the packed product's bf16 output) is read as its f32 values.
  const at::Tensor h16 = h.to(at::kBFloat16);
  CHECK(test::max_abs_diff(geglu_bf16(h16).to(at::kFloat), geglu_bf16(h16.to(at::kFloat)).to(at::kFloat)) == 0.0);

  // Normalisations written as bf16: each element rounded once (relative error <= 2^-8)
  // from libtorch's f32 result; their statistics in f32 and double agree with libtorch's
  // to ~1e-6, hence the small absolute term. Inputs off zero, as activations are.
  REQUIRE(norm_bf16_available());
  auto within_rounding = [](const at::Tensor& got, const at::Tensor& expected) {
    REQUIRE((got.scalar_type() == at::kBFloat16));
    const at::Tensor excess = (got.to(at::kFloat) - expected).abs() - expected.abs() / 256 - 1e-5;
    return excess.max().item<double>() <= 0.0;
  };
  const at::Tensor image = (at::randn({2, 64, 9, 7}) * 2 + 0.5).contiguous(at::MemoryFormat::ChannelsLast);
  const at::Tensor gw = at::randn({64}), gb = at::randn({64});
  for (const bool silu : {true, false}) {
    CAPTURE(silu);
    const at::Tensor expected = at::group_norm(image, 8, gw, gb, 1e-6);
    const at::Tensor got = group_norm_bf16(image, 8, gw, gb, 1e-6, silu);
    CHECK(got.is_contiguous(at::MemoryFormat::ChannelsLast));
    CHECK(within_rounding(got, silu ? at::silu(expected) : expected));
  }
  CHECK(!group_norm_bf16(image.contiguous(), 8, gw, gb, 1e-6, true).defined());  // NCHW: not for it
  const at::Tensor tokens = at::randn({2, 37, 80}) * 3 + 1, lw = at::randn({80}), lb = at::randn({80});
  CHECK(within_rounding(layer_norm_bf16(tokens, lw, lb, 1e-5), at::layer_norm(tokens, {80}, lw, lb, 1e-5)));
  CHECK(!layer_norm_bf16(at::randn({3, 20}), at::randn({20}), at::randn({20}), 1e-5).defined());  // 20: not a multiple of 16
}

TEST_CASE("bf16 3x3 convolutions over more than 640 input channels run in parts of their channels on AMX, "
          "each adding to the output: the whole convolution's numbers, the bias once") {
  // Equal parts of at most 640 channels, in whole blocks of 32; 3x3 kernels only.
  CHECK(input_parts_of(3, 640) == 1);
  CHECK(input_parts_of(3, 960) == 2);
  CHECK(input_parts_of(3, 1280) == 2);
  CHECK(input_parts_of(3, 1920) == 3);
  CHECK(input_parts_of(3, 2560) == 4);
  CHECK(input_parts_of(3, 700) == 1);  // 2 x 350: not whole blocks of 32
  CHECK(input_parts_of(1, 2560) == 1);
  CHECK(input_parts(Compute{}, at::empty({8, 1280, 3, 3})) == 1);  // fp32: whole
  if (cpu_features().native_bf16().empty()) {
    MESSAGE("no native bf16 on " << cpu_features().name << ": nothing more to check");
    return;
  }
  at::manual_seed(10);
  Compute bf16;
  bf16.precision = Precision::bf16;
  struct Shape { int64_t in, stride; };
  for (const Shape s : {Shape{1280, 1}, Shape{960, 2}, Shape{1920, 1}}) {
    CAPTURE(s.in);
    Conv2d conv;
    conv.weight = at::randn({32, s.in, 3, 3}).to(at::kHalf);
    conv.bias = at::randn({32}) * 30;  // far above the products' rounding: added twice, or not, it shows
    conv.stride = s.stride;
    conv.padding = 1;
    const at::Tensor x = at::randn({2, s.in, 9, 9}).contiguous(at::MemoryFormat::ChannelsLast);
    const at::Tensor got = conv(bf16, x);
    const at::Tensor expected = at::conv2d(x, conv.weight.to(at::kFloat), conv.bias, s.stride, 1);
    const int64_t parts = input_parts(bf16, conv.weight);
    MESSAGE(parts << " part(s) of " << s.in << " channels on " << cpu_features().name);
    // Inputs and weights rounded to bf16, f32 sums: as the whole convolution (test above).
    const double e = relative_error(got, expected);
    CHECK(e < 1e-2);
    CHECK(e > 1e-5);
    if (parts == 1) continue;  // no AMX: the whole weight packed
    REQUIRE(conv.packed_parts.size() == size_t(parts));
    at::Tensor data;
    std::string layout;
    for (const auto& part : conv.packed_parts) CHECK(packed_contents(*part, data, layout));
    CHECK(!(conv.packed && packed_contents(*conv.packed, data, layout)));
    // The same bf16 products as the whole weight packed at once, summed in another order.
    std::shared_ptr<PackedConvWeight> whole;
    const at::Tensor once = packed_conv2d(bf16, x, conv.weight, conv.bias, s.stride, 1, whole);
    REQUIRE(once.defined());
    CHECK(relative_error(got, once) < 1e-5);
    // Parts restored from their kept copies (engine/packed_cache.h) give the same numbers.
    Conv2d kept = conv;
    kept.packed_parts.clear();
    for (const auto& part : conv.packed_parts) {
      REQUIRE(packed_contents(*part, data, layout));
      kept.packed_parts.push_back(new_packed_slot());
      REQUIRE(restore_packed(*kept.packed_parts.back(), data.clone(), layout));
    }
    CHECK(test::max_abs_diff(kept(bf16, x), got) == 0.0);
  }
}

TEST_CASE("bf16 convolutions too large to unfold whole read a bf16 copy of their whole input: the numbers of "
          "the tiled or banded route (upsampled, normalised, end-padded input)") {
  if (cpu_features().native_bf16().empty()) {
    MESSAGE("no native bf16 on " << cpu_features().name << ": nothing to check");
    return;
  }
  at::manual_seed(9);
  Conv2d conv;
  conv.weight = at::randn({16, 32, 3, 3}).to(at::kHalf);
  conv.bias = at::randn({16});
  conv.padding = 1;
  GroupNorm norm;
  norm.weight = at::randn({32});
  norm.bias = at::randn({32});
  norm.groups = 8;
  // 40 pixels wide for the downsampler, whose 20 output rows then pass a tile's 16.
  const at::Tensor x24 = (at::randn({1, 32, 24, 24}) + 0.5).contiguous(at::MemoryFormat::ChannelsLast),
                   x40 = (at::randn({1, 32, 40, 40}) + 0.5).contiguous(at::MemoryFormat::ChannelsLast);
  // The VAE encoder's downsampler: stride 2, a row and column of zeros after the last.
  Conv2d down = conv;
  down.stride = 2;
  down.padding = 0;
  const ConvInput upsampled{nullptr, ConvInput::kNone, true}, normalised{&norm, ConvInput::kSilu},
      padded{nullptr, ConvInput::kNone, false, 1};
  for (const ConvInput& in : {upsampled, normalised, padded}) {
    CAPTURE(in.upsample2x);
    CAPTURE(in.pad_end);
    const Conv2d& layer = in.pad_end ? down : conv;
    const at::Tensor& x = in.pad_end ? x40 : x24;
    const int64_t side = x.size(2) * (in.upsample2x ? 2 : 1), input = 32 * side * side;
    Compute whole, banded;  // too large to unfold; a bf16 copy of the input fits the bound, or not
    for (Compute* c : {&whole, &banded}) {
      c->precision = Precision::bf16;
      c->policy.work_floats = 32 * 9 * 16 * 16;  // else square tiles of 16
      c->policy.tile_above_floats = c == &whole ? input / 2 : input / 4;
    }
    const at::Tensor got = layer(whole, x, in), bands = layer(banded, x, in);
    // The same bf16 inputs (rounded from the same f32 values, but for a normalisation's
    // statistics summed in another order) and products: f32 sums in another order only.
    const double scale = bands.abs().max().item<double>();
    MESSAGE("bf16 whole input vs tiles or bands: relative difference " << test::max_abs_diff(got, bands) / scale);
    CHECK(test::max_abs_diff(got, bands) <= 2e-3 * scale);
    // Activations stored as f16 (the memory policies): f16 in and out, the same route.
    Compute half = banded;
    half.policy.half_storage_above = 1;
    const at::Tensor bands16 = layer(half, x.to(at::kHalf), in);
    CHECK((bands16.scalar_type() == at::kHalf));
    CHECK(bands16.is_contiguous(at::MemoryFormat::ChannelsLast));
    CHECK(got.is_contiguous(at::MemoryFormat::ChannelsLast));
    // And they are the convolution (within bf16's rounding, as above). With f16 storage
    // the inputs are rounded to f16 first, which moves some of their bf16 roundings by
    // one step: an error of bf16's kind, not a bound of its own.
    at::Tensor t = in.norm ? at::silu(at::group_norm(x, 8, norm.weight, norm.bias, norm.eps)) : x;
    if (in.upsample2x) t = at::upsample_nearest2d(t, {side, side});
    if (in.pad_end) t = at::constant_pad_nd(t, {0, 1, 0, 1});
    const at::Tensor reference = at::conv2d(t, conv.weight.to(at::kFloat), conv.bias, layer.stride, layer.padding);
    CHECK(relative_error(got, reference) < 1e-2);
    MESSAGE("f16 storage against the f32 convolution: relative error " << relative_error(bands16.to(at::kFloat), reference));
    CHECK(relative_error(bands16.to(at::kFloat), reference) < 1e-2);
  }
}

TEST_CASE("bf16 weights packed by pack_bf16_pairs: bit for bit oneDNN's own reorder, for the layouts that pair "
          "input channels (AVX512-BF16's and AMX's); other layouts are left to it") {
  using tag = dnnl::memory::format_tag;
  // The weight in `layout` as oneDNN's reorder writes it from f32 (round to nearest even).
  const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  const auto reordered = [&](const at::Tensor& weight, const dnnl::memory::desc& layout) {
    const at::Tensor plain = weight.to(at::kFloat).contiguous();
    at::Tensor out = at::empty({int64_t(layout.get_size() / 2)}, at::kBFloat16);
    const dnnl::memory::desc from_desc(plain.sizes().vec(), dnnl::memory::data_type::f32, tag::oihw);
    dnnl::memory from(from_desc, engine, plain.data_ptr()), to(layout, engine, out.data_ptr());
    dnnl::stream stream(engine);
    dnnl::reorder(from, to).execute(stream, from, to);
    stream.wait();
    return out;
  };
  const auto bf16_layout = [](const at::Tensor& weight, tag t) {
    return dnnl::memory::desc(weight.sizes().vec(), dnnl::memory::data_type::bf16, t);
  };
  if (cpu_features().native_bf16().empty()) {
    MESSAGE("no native bf16 on " << cpu_features().name << ": bf16 weights are never packed here");
    return;
  }
  at::manual_seed(10);
  struct Case {
    int64_t out, in, k;
    tag layout;
    at::ScalarType dtype;
    bool in_parts;  // a part of the input channels, as packed_conv2d_in_parts packs it (not contiguous)
  };
  // 1x1 and 3x3; pairs in whole groups of 16 and with some left (40 channels: 20 pairs);
  // blocks of 16-64 output channels; f16, f32 and bf16 weights. AVX512-BF16's layouts
  // (OhwI{bo}o2i), then AMX's (OhwI16i{bo}o2i, its brgemm kernels'; OIhw{8,16}i{bo}o2i).
  for (const Case& c :
       {Case{64, 40, 1, tag::AcdB64a2b, at::kHalf, false}, Case{128, 64, 1, tag::AcdB32a2b, at::kHalf, false},
        Case{32, 96, 3, tag::AcdB16a2b, at::kHalf, false}, Case{64, 40, 3, tag::AcdB64a2b, at::kFloat, false},
        Case{48, 34, 1, tag::AcdB48a2b, at::kBFloat16, false}, Case{64, 128, 3, tag::AcdB32a2b, at::kHalf, true},
        Case{128, 64, 3, tag::AcdB16b64a2b, at::kHalf, false}, Case{64, 96, 1, tag::AcdB16b32a2b, at::kHalf, false},
        Case{128, 128, 3, tag::AcdB16b64a2b, at::kHalf, true}, Case{48, 64, 1, tag::AcdB16b48a2b, at::kFloat, false},
        Case{32, 64, 3, tag::ABcd16b16a2b, at::kHalf, false}, Case{64, 48, 3, tag::ABcd8b32a2b, at::kBFloat16, false}}) {
    CAPTURE(c.out);
    CAPTURE(c.in);
    CAPTURE(c.k);
    CAPTURE(static_cast<int>(c.layout));
    CAPTURE(c.dtype);
    at::Tensor weight = (at::randn({c.out, c.in * (c.in_parts ? 2 : 1), c.k, c.k}) * 3).to(c.dtype);
    if (c.in_parts) weight = weight.narrow(1, c.in, c.in);
    REQUIRE(weight.is_contiguous() != c.in_parts);
    const dnnl::memory::desc layout = bf16_layout(weight, c.layout);
    const auto view = blocked_view(onednn::layout_of(layout));
    REQUIRE(view);
    const at::Tensor reference = reordered(weight, layout);
    at::Tensor packed = at::full({reference.numel()}, 7.0, at::kBFloat16);
    REQUIRE(pack_bf16_pairs(weight, *view, reinterpret_cast<uint16_t*>(packed.data_ptr<at::BFloat16>())));
    CHECK(at::equal(packed.view(at::kShort), reference.view(at::kShort)));
    // The view is where the layout puts each element: the strided copy through it is the same.
    at::Tensor copied = at::zeros({reference.numel()}, at::kBFloat16);
    copied.as_strided(view->flat_sizes(), view->flat_strides()).copy_(weight.reshape(view->flat_sizes()));
    CHECK(at::equal(copied.view(at::kShort), reference.view(at::kShort)));
  }
  // Not its form: no output channel blocks (ohwi), output channels innermost (Ohwi16o),
  // input channels in fours (int8's OhwI16o4i); and input channels padded (40 to 64 in
  // AMX's blocks of 32): no view, oneDNN's reorder writes the zeros.
  const at::Tensor w = at::randn({32, 64, 3, 3}).to(at::kHalf);
  at::Tensor out = at::empty({32 * 64 * 9}, at::kBFloat16);
  uint16_t* bits = reinterpret_cast<uint16_t*>(out.data_ptr<at::BFloat16>());
  for (tag t : {tag::ohwi, tag::Acdb16a, tag::AcdB16a4b}) {
    CAPTURE(static_cast<int>(t));
    const auto view = blocked_view(onednn::layout_of(bf16_layout(w, t)));
    REQUIRE(view);
    CHECK_FALSE(pack_bf16_pairs(w, *view, bits));
  }
  CHECK_FALSE(blocked_view(onednn::layout_of(bf16_layout(w.narrow(1, 0, 40), tag::AcdB16b64a2b))));
}
