// The low-memory paths give the same numbers as the plain ones: chunked attention with
// an online softmax, tiled convolutions (GroupNorm statistics over the whole tensor),
// streamed weights; activations channels last (the default) or NCHW.
#include <ATen/core/grad_mode.h>  // at::NoGradGuard (not in ATen.h from libtorch 2)
#include "engine/big_blocks.h"
#include "engine/image.h"
#include "engine/model_source.h"
#include "engine/networks.h"
#include "engine/packed_cache.h"
#include "engine/runtime.h"
#include "models/kernels/bf16_attention.h"
#include "models/kernels/cpu.h"
#include "models/kernels/fused_attention.h"
#include "models/layers.h"
#include "tests/parity_support.h"
#include "tests/test_support.h"

using namespace inpaint;

namespace {

Compute untiled() {
  Compute c;
  c.policy.attention_floats = int64_t(1) << 40;
  c.policy.work_floats = int64_t(1) << 40;
  c.policy.tile_above_floats = int64_t(1) << 40;
  return c;
}

Compute tiled(int64_t tile) {
  Compute c;
  c.policy.tile_above_floats = 1;  // every convolution bigger than one tile is tiled
  c.policy.conv_tile = tile;
  return c;
}

// The tiny SD 1.5 inpainting model's VAE (the model must outlive the network's views).
struct TinyVae {
  ModelSource model;
  std::unique_ptr<AutoencoderKL> vae;
  explicit TinyVae(const std::filesystem::path& dir) : model(ModelSource::open(dir)), vae(load_vae(model)) {}
};

double relative_error(const at::Tensor& a, const at::Tensor& b) {
  return test::max_abs_diff(a, b) / std::max(1e-12, b.abs().max().item<double>());
}

// softmax(q kᵀ / sqrt(d) + mask) v per head, in double precision: the reference.
at::Tensor reference_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, int64_t heads,
                               const at::Tensor& mask) {
  const int64_t b = q.size(0), nq = q.size(1), nk = k.size(1), c = q.size(2), d = c / heads;
  auto split = [&](const at::Tensor& t, int64_t n) { return t.to(at::kDouble).view({b, n, heads, d}).transpose(1, 2); };
  at::Tensor scores = at::matmul(split(q, nq), split(k, nk).transpose(2, 3)) / std::sqrt(double(d));
  if (mask.defined()) scores = scores + mask.to(at::kDouble);
  return at::matmul(at::softmax(scores, -1), split(v, nk)).transpose(1, 2).reshape({b, nq, c}).to(at::kFloat);
}

}  // namespace

TEST_CASE("large blocks: the lowest free range that fits is taken, freed ranges merge") {
  BlockRanges r(100);
  CHECK(r.take(10) == 0u);
  CHECK(r.take(20) == 10u);
  CHECK(r.take(30) == 30u);
  CHECK(r.give_back(10) == 20u);  // a hole of 20 at 10
  CHECK(r.give_back(11) == 0u);   // no block starts there
  CHECK(r.take(25) == 60u);       // does not fit in the hole
  CHECK(r.take(15) == 10u);       // fits: the lowest
  CHECK(r.take(10) == 85u);       // the 5 left at 25 are too few
  CHECK(!r.take(6).has_value());  // 5 at 25, none at the end
  CHECK(r.in_use() == 90u);
  CHECK(r.end_in_use() == 95u);
  for (size_t offset : {30u, 0u, 85u, 10u, 60u}) CHECK(r.give_back(offset) > 0u);
  REQUIRE(r.free_ranges().size() == 1u);  // all merged again
  CHECK(r.free_ranges().begin()->second == 100u);
  CHECK(r.in_use() == 0u);
  CHECK(r.end_in_use() == 0u);
  CHECK(r.high_water() == 95u);
}

TEST_CASE("tensors of 1 MB and more come from the big-block range and reuse its pages") {
  if (!install_big_block_allocator()) {
    MESSAGE("skipped: the big-block allocator is off (INPAINT_BIG_BLOCKS=0, or no address space for it)");
    return;
  }
  release_free_big_blocks();  // earlier tests' freed blocks: only this test's below
  const size_t before = big_block_bytes_in_use();
  at::Tensor small = at::empty({int64_t(1) << 17});  // 0.5 MB: glibc's
  CHECK(big_block_bytes_in_use() == before);
  void* first = nullptr;
  {
    const at::Tensor big = at::ones({int64_t(1) << 24});  // 64 MB
    CHECK(big_block_bytes_in_use() >= before + big.nbytes());
    first = big.data_ptr();
  }
  CHECK(big_block_bytes_in_use() == before);
  const at::Tensor again = at::full({int64_t(1) << 24}, 3.0f);
  CHECK(again.data_ptr() == first);  // the same lowest range, pages already touched

  // Released pages go back to the kernel; live blocks keep their contents.
  {
    const at::Tensor other = at::ones({int64_t(1) << 24});
    const size_t rss = current_rss_bytes();
    (void)other;
    release_free_big_blocks();  // nothing touched is free: `big`'s range is `again`'s
    CHECK(current_rss_bytes() + (size_t(16) << 20) > rss);
  }
  const size_t rss = current_rss_bytes();
  release_free_big_blocks();
  CHECK(current_rss_bytes() + (size_t(32) << 20) < rss);
  CHECK(again.min().item<float>() == 3.0f);
  CHECK(again.max().item<float>() == 3.0f);
}

TEST_CASE("fused attention equals softmax(q kT / sqrt(d)) v, for SD's and CLIP's head sizes, with each kernel") {
  at::manual_seed(7);
  const std::string best = fused_attention_isa();
  MESSAGE("fused attention kernel of this processor: " << (best.empty() ? "none" : best));
  const std::vector<std::string> isas = best == "avx512" ? std::vector<std::string>{"avx512", "avx2"}
                                                         : std::vector<std::string>{best};
  struct Shape { int64_t heads, d, nq, nk; };
  for (const std::string& isa : isas) {
    CAPTURE(isa);
    set_fused_attention_isa(isa);
    // 513 and 600 keys: more than one of the kernel's 512-key blocks.
    for (const Shape s : {Shape{8, 40, 300, 513}, Shape{8, 40, 300, 77}, Shape{5, 64, 77, 77}, Shape{2, 80, 65, 600},
                          Shape{1, 160, 33, 31}, Shape{3, 24, 9, 1}}) {
      const at::Tensor q = at::randn({2, s.nq, s.heads * s.d}), k = at::randn({2, s.nk, s.heads * s.d}) * 3,
                       v = at::randn({2, s.nk, s.heads * s.d});
      const at::Tensor causal = at::full({s.nq, s.nk}, -INFINITY).triu_(1);
      for (bool masked : {false, true}) {
        CAPTURE(s.heads);
        CAPTURE(s.d);
        CAPTURE(s.nk);
        CAPTURE(masked);
        const at::Tensor mask = masked ? causal : at::Tensor();
        const double e = test::max_abs_diff(attention({}, q, k, v, s.heads, mask), reference_attention(q, k, v, s.heads, mask));
        MESSAGE(isa << " max abs error " << e);
        CHECK(e <= 1e-5);  // float arithmetic: libtorch's own bmm + softmax path is 5e-6 off here
      }
    }
  }
  set_fused_attention_isa("");
  CHECK(fused_attention_isa() == best);
}

TEST_CASE("bf16 attention (AMX tiles, AVX512-BF16) is softmax(q kT / sqrt(d)) v within bf16's rounding, and runs under bf16") {
  at::manual_seed(7);
  const std::string best = bf16_attention_isa();
  if (best.empty()) {
    MESSAGE("no native bf16 on " << cpu_features().name << ": bf16 is refused there (test_layers.cpp)");
    CHECK_FALSE(bf16_attention_available(40));
    return;
  }
  // An AMX processor has AVX512-BF16 too: both products are checked there. The AMX code
  // runs everywhere on the tile unit in software ("amx-bf16-emulated"), so that a change to
  // it is checked on processors without AMX too.
  const std::vector<std::string> isas = best == "amx-bf16"
                                            ? std::vector<std::string>{"amx-bf16", "amx-bf16-emulated", "avx512-bf16"}
                                            : std::vector<std::string>{best, "amx-bf16-emulated"};
  struct Shape { int64_t heads, d, nq, nk; };
  Compute bf16;
  bf16.precision = Precision::bf16;
  for (const std::string& isa : isas) {
    CAPTURE(isa);
    set_bf16_attention_isa(isa);
    // SD's and CLIP's head sizes; keys and queries not multiples of the tiles' 32 (padding),
    // and more queries than one task's 32; 160 channels: two passes of value tiles; the
    // VAE's single head of 512 channels.
    for (const Shape s : {Shape{8, 40, 300, 513}, Shape{8, 40, 300, 77}, Shape{5, 64, 77, 77}, Shape{2, 80, 65, 600},
                          Shape{1, 160, 33, 31}, Shape{3, 24, 9, 1}, Shape{1, 40, 1024, 1024}, Shape{1, 512, 100, 300}}) {
      CAPTURE(s.heads);
      CAPTURE(s.d);
      CAPTURE(s.nq);
      CAPTURE(s.nk);
      const at::Tensor q = at::randn({2, s.nq, s.heads * s.d}), k = at::randn({2, s.nk, s.heads * s.d}) * 3,
                       v = at::randn({2, s.nk, s.heads * s.d});
      const at::Tensor expected = reference_attention(q, k, v, s.heads, at::Tensor());
      const at::Tensor got = bf16_attention(q, k, v, s.heads);
      // q, k and v rounded to bf16 (relative error up to 2^-9 each): the scores (std 3 here)
      // move by ~1e-2, so each probability by ~1%, and the probabilities are rounded too.
      // Outputs are averages of values, so errors of 1-2e-2 of the largest output can show
      // where one key dominates; 3e-2 bounds that. An fp32 kernel is within 1e-5 (above),
      // so the lower bound shows bf16 really ran.
      const double e = test::max_abs_diff(got, expected) / expected.abs().max().item<double>();
      MESSAGE(isa << " attention: relative error " << e);
      CHECK(e < 3e-2);
      CHECK(e > 1e-5);
      // attention() under bf16 products runs it, its output rounded to bf16 for the
      // projection after it; bf16 inputs (projections' outputs) are those it rounds to.
      CHECK((attention_input_type(bf16, s.d) == at::kBFloat16));
      const at::Tensor rounded = got.to(at::kBFloat16).to(at::kFloat);
      const at::Tensor through = attention(bf16, q, k, v, s.heads, at::Tensor());
      REQUIRE((through.scalar_type() == at::kBFloat16));
      CHECK(test::max_abs_diff(through.to(at::kFloat), rounded) == 0.0);
      const at::Tensor q16 = q.to(at::kBFloat16), k16 = k.to(at::kBFloat16), v16 = v.to(at::kBFloat16);
      CHECK(test::max_abs_diff(attention(bf16, q16, k16, v16, s.heads, at::Tensor()).to(at::kFloat), rounded) == 0.0);
    }
    // Keys past the first 256-key block with scores far above the first block's (by ~100:
    // 2^140 relative to its largest): probabilities relative to the running largest would
    // overflow, so that block takes its own largest and the products so far are rescaled.
    // Inputs already bf16, so that only the kernel's own rounding (probabilities, output)
    // separates it from the reference: ~1e-2 at most, as above.
    {
      const at::Tensor q = at::randn({1, 64, 40}).to(at::kBFloat16).to(at::kFloat),
                       v = at::randn({1, 700, 40}).to(at::kBFloat16).to(at::kFloat);
      at::Tensor k = at::randn({1, 700, 40});
      k.narrow(1, 300, 400).mul_(40);
      k = k.to(at::kBFloat16).to(at::kFloat);
      const at::Tensor expected = reference_attention(q, k, v, 1, at::Tensor());
      const double e = test::max_abs_diff(bf16_attention(q, k, v, 1), expected) / expected.abs().max().item<double>();
      MESSAGE(isa << " attention, a later block's scores far larger: relative error " << e);
      CHECK(e < 1e-2);
    }
  }
  set_bf16_attention_isa("");
  CHECK(bf16_attention_isa() == best);
  // fp32 products: f32 inputs; bf16 ones given all the same are widened.
  CHECK((attention_input_type(Compute{}, 40) == at::kFloat));
  // A mask (CLIP's causal one) goes through the fp32 kernel.
  const at::Tensor q = at::randn({1, 77, 128}), k = at::randn({1, 77, 128}), v = at::randn({1, 77, 128});
  const at::Tensor causal = at::full({77, 77}, -INFINITY).triu_(1);
  CHECK(test::max_abs_diff(attention(bf16, q, k, v, 2, causal), reference_attention(q, k, v, 2, causal)) <= 1e-5);
}

TEST_CASE("fused attention: a row whose keys are all masked gives zeros, the others are unaffected") {
  at::manual_seed(3);
  // 600 keys: the masked row stays masked across the kernel's 512-key blocks.
  const at::Tensor q = at::randn({1, 4, 80}), k = at::randn({1, 600, 80}), v = at::randn({1, 600, 80});
  at::Tensor mask = at::zeros({4, 600});
  mask[2].fill_(-INFINITY);
  const at::Tensor out = attention({}, q, k, v, 2, mask);
  CHECK(out[0][2].abs().max().item<double>() == 0.0);
  const at::Tensor others = at::cat({out.narrow(1, 0, 2), out.narrow(1, 3, 1)}, 1);
  const at::Tensor expected = reference_attention(q, k, v, 2, at::Tensor());
  CHECK(test::max_abs_diff(others, at::cat({expected.narrow(1, 0, 2), expected.narrow(1, 3, 1)}, 1)) <= 2e-6);
}

TEST_CASE("attention with key chunks and an online softmax equals plain attention (heads too large to fuse)") {
  at::manual_seed(7);
  // One 192-channel head: beyond the fused kernel, so the score budget decides the chunks.
  REQUIRE(!fused_attention_available(192));
  const at::Tensor q = at::randn({2, 300, 192}), k = at::randn({2, 257, 192}) * 3, v = at::randn({2, 257, 192});
  const at::Tensor causal = at::full({300, 257}, -INFINITY).triu_(1);
  for (bool masked : {false, true}) {
    CAPTURE(masked);
    const at::Tensor mask = masked ? causal : at::Tensor();
    const at::Tensor expected = reference_attention(q, k, v, 1, mask);
    const at::Tensor plain = attention(untiled(), q, k, v, 1, mask);
    Compute c = untiled();
    c.policy.attention_floats = 2 * 16 * 37;  // 16 queries x 37 keys: key chunks
    const at::Tensor chunked = attention(c, q, k, v, 1, mask);
    c.policy.attention_floats = 2 * 257 * 20;  // whole key rows, 20 queries at a time
    const at::Tensor query_chunked = attention(c, q, k, v, 1, mask);
    const double e = test::max_abs_diff(chunked, expected), eq = test::max_abs_diff(query_chunked, expected),
                 ep = test::max_abs_diff(plain, expected);
    MESSAGE("attention max abs error: plain " << ep << ", key-chunked " << e << ", query-chunked " << eq);
    CHECK(ep <= 1e-5);
    CHECK(e <= 1e-5);
    CHECK(eq <= 1e-5);
    CHECK(!at::isnan(chunked).any().item<bool>());
  }
}

TEST_CASE("tiled VAE decode and encode match untiled (tiny SD 1.5 VAE)") {
  REQUIRE_SHARED(dir, "fixtures/A/models/tiny-sd15-inpaint");
  const TinyVae tiny(dir);
  const auto& vae = tiny.vae;
  at::NoGradGuard no_grad;
  at::manual_seed(3);
  // Odd sizes so that tiles end mid-way and borders need padding.
  const at::Tensor latent = at::randn({1, 4, 13, 11});
  const at::Tensor image = at::rand({1, 3, 104, 88}) * 2 - 1;
  const at::Tensor decoded = vae->decode(untiled(), latent), mean = vae->encode(untiled(), image).mean;
  for (int64_t tile : {16, 24})
    for (bool bands : {true, false}) {  // bands of `tile` rows, or square tiles
      CAPTURE(tile);
      CAPTURE(bands);
      Compute c = tiled(tile);
      c.policy.conv_bands = bands;
      const double e_dec = relative_error(vae->decode(c, latent), decoded);
      const double e_enc = relative_error(vae->encode(c, image).mean, mean);
      MESSAGE("tile " << tile << std::string(bands ? " (bands)" : " (square)") << ": decode relative error " << e_dec << ", encode " << e_enc);
      CHECK(e_dec <= 1e-5);
      CHECK(e_enc <= 1e-5);
    }
}

TEST_CASE("streamed weights give bit-identical results") {
  REQUIRE_SHARED(dir, "fixtures/A/models/tiny-sd15-inpaint");
  const TinyVae tiny(dir);
  const auto& vae = tiny.vae;
  at::NoGradGuard no_grad;
  at::manual_seed(5);
  const at::Tensor latent = at::randn({1, 4, 8, 8});
  // Against resident weights used as stored: packed ones (models/kernels/packed_conv.h) go
  // through another kernel, equal within rounding (test_layers.cpp).
  Compute c;
  c.policy.packed_convolutions = false;
  const at::Tensor plain = vae->decode(c, latent);
  c.policy.stream_weights = true;
  // Twice: the second pass reads the weights back after their pages were dropped.
  CHECK(at::equal(vae->decode(c, latent), plain));
  CHECK(at::equal(vae->decode(c, latent), plain));
}

TEST_CASE("tiled TAESD on a real photo matches untiled") {
  REQUIRE_SHARED(dir, "assets/taesd");
  REQUIRE_SHARED(photo, "assets/images/astronaut.png");
  const auto taesd = load_taesd(dir / "taesd_encoder.safetensors", dir / "taesd_decoder.safetensors");
  const at::Tensor x = test::image_tensor(to_rgb(load_image(photo)));
  at::NoGradGuard no_grad;
  const at::Tensor latent = taesd->encoder->forward(untiled(), x);
  const at::Tensor decoded = taesd->decoder->forward(untiled(), latent);
  const double e_enc = test::max_abs_diff(taesd->encoder->forward(tiled(40), x), latent);
  const double e_dec = test::max_abs_diff(taesd->decoder->forward(tiled(40), latent), decoded);
  MESSAGE("TAESD 512x512 tiled (40 px): encode max abs error " << e_enc << ", decode " << e_dec);
  CHECK(e_enc <= 1e-4);
  CHECK(e_dec <= 1e-4);
}

TEST_CASE("f16 storage of large tiled activations stays close to f32 (tiny SD 1.5 VAE)") {
  REQUIRE_SHARED(dir, "fixtures/A/models/tiny-sd15-inpaint");
  const TinyVae tiny(dir);
  const auto& vae = tiny.vae;
  at::NoGradGuard no_grad;
  at::manual_seed(11);
  const at::Tensor latent = at::randn({1, 4, 16, 16});
  const at::Tensor plain = vae->decode(untiled(), latent);
  Compute c = tiled(32);
  c.policy.half_storage_above = 1;
  const at::Tensor half = vae->decode(c, latent);
  CHECK((half.scalar_type() == at::kFloat));
  // The decoded image is in [-1, 1]: 2e-3 is a quarter of an 8-bit level.
  const double e = test::max_abs_diff(half, plain);
  MESSAGE("decode with f16 storage: max abs error " << e << " (image range " << plain.abs().max().item<double>() << ")");
  CHECK(e <= 2e-3 * std::max(1.0, plain.abs().max().item<double>()));
}

TEST_CASE("the feed-forward over token chunks equals the whole") {
  at::manual_seed(2);
  const at::Tensor x = at::randn({2, 50, 8}), w = at::randn({24, 8});
  auto f = [&](const at::Tensor& t) { return at::gelu(at::linear(t, w)); };
  const at::Tensor whole = f(x);
  Compute c;
  c.policy.work_floats = 24 * 7;  // 7 tokens per chunk, across the batch boundary
  CHECK(test::max_abs_diff(over_token_chunks(c, x, 24, f), whole) <= 1e-6);
  // Added to a residual in place, chunk by chunk: the same sums as adding the chunks'
  // concatenation (each chunk's products as they are: libtorch 2's matrix products on a
  // chunk may differ from the whole's in the last bit); a permuted residual is replaced
  // by the sum.
  const at::Tensor base = at::randn({2, 50, 24}), chunked = base + over_token_chunks(c, x, 24, f);
  at::Tensor residual = base.clone();
  add_over_token_chunks(c, x, 24, f, residual);
  CHECK(test::max_abs_diff(residual, chunked) == 0.0);
  CHECK(test::max_abs_diff(residual, base + whole) <= 1e-5);  // a few float steps of sums near 5
  at::Tensor permuted = base.transpose(0, 1).contiguous().transpose(0, 1);
  REQUIRE(!permuted.is_contiguous());
  add_over_token_chunks(c, x, 24, f, permuted);
  CHECK(test::max_abs_diff(permuted, chunked) == 0.0);
}

TEST_CASE("streamed weights in output-channel chunks and reused buffers match (tiny SD 1.5 UNet)") {
  REQUIRE_SHARED(dir, "fixtures/A/models/tiny-sd15-inpaint");
  const ModelSource model = ModelSource::open(dir);
  const auto unet = load_unet(model);
  at::NoGradGuard no_grad;
  at::manual_seed(4);
  const int64_t in = unet->config().in_channels, ctx = unet->config().cross_attention_dim;
  const at::Tensor x = at::randn({2, in, 16, 16}), context = at::randn({2, 77, ctx});
  const at::Tensor plain = unet->forward({}, x, 500, context);
  Compute c;
  c.policy.stream_weights = true;
  c.policy.packed_convolutions = false;  // widened, not packed per call (next test)
  c.policy.weight_slot_floats = 2048;  // the tiny model's larger weights are chunked, the rest pooled
  for (int pass = 0; pass < 2; ++pass) {
    const double e = relative_error(unet->forward(c, x, 500, context), plain);
    MESSAGE("pass " << pass << ": relative error " << e);
    CHECK(e <= 1e-5);
  }
}

TEST_CASE("streamed weights packed per call give the resident packed numbers and keep no packed copy (tiny SDXL UNet)") {
  REQUIRE_SHARED(dir, "fixtures/A-sdxl/models/tiny-sdxl-inpaint");
  const ModelSource model = ModelSource::open(dir);
  at::NoGradGuard no_grad;
  at::manual_seed(5);
  const UNetConfig config = load_unet(model)->config();
  const at::Tensor x = at::randn({2, config.in_channels, 16, 16}), context = at::randn({2, 77, config.cross_attention_dim});
  const AddedConditions added{at::randn({2, config.projection_class_embeddings_input_dim - 6 * config.addition_time_embed_dim}),
                              at::tensor({64.f, 64.f, 0.f, 0.f, 64.f, 64.f}).repeat({2, 1})};
  std::vector<Precision> precisions = {Precision::fp32};
  if (!cpu_features().native_bf16().empty()) precisions.push_back(Precision::bf16);
  for (const Precision precision : precisions) {
    const std::string precision_label = precision_name(precision);
    CAPTURE(precision_label);
    Compute resident;
    resident.precision = precision;
    const at::Tensor kept = load_unet(model)->forward(resident, x, 500, context, added);
    Compute streamed = resident;
    streamed.policy.stream_weights = true;
    PackedSlots slots;
    const auto unet = load_unet(model, &slots);
    REQUIRE(!slots.empty());
    for (int pass = 0; pass < 2; ++pass) {
      CHECK(at::equal(unet->forward(streamed, x, 500, context, added), kept));
      CHECK_FALSE(packed_in_memory(slots));  // every packed copy dropped after its call
    }
    // The lean policy's feed-forward in token chunks (bf16: one packed weight for all
    // chunks; fp32: widened per chunk): the same numbers up to the products' blocking.
    Compute lean = streamed;
    lean.policy.ff_widen_per_chunk = true;
    lean.policy.work_floats = 4096;  // a few tokens per chunk
    const double e = relative_error(unet->forward(lean, x, 500, context, added), kept);
    MESSAGE("lean feed-forward: relative error " << e);
    CHECK(e <= 1e-5);
  }
}

TEST_CASE("activations channels last give the numbers of NCHW ones (tiny UNet, VAE untiled and tiled, TAESD)") {
  REQUIRE_SHARED(dir, "fixtures/A/models/tiny-sd15-inpaint");
  REQUIRE_SHARED(taesd_dir, "assets/taesd");
  const TinyVae tiny(dir);
  const auto unet = load_unet(tiny.model);
  const auto taesd = load_taesd(taesd_dir / "taesd_encoder.safetensors", taesd_dir / "taesd_decoder.safetensors");
  at::NoGradGuard no_grad;
  at::manual_seed(6);
  const int64_t in = unet->config().in_channels, ctx = unet->config().cross_attention_dim;
  const at::Tensor x = at::randn({2, in, 16, 12}), context = at::randn({2, 77, ctx});
  const at::Tensor latent = at::randn({1, 4, 13, 11}), image = at::rand({1, 3, 104, 88}) * 2 - 1;
  // Every network's outputs under a policy, NCHW contiguous whatever the layout inside.
  auto outputs = [&](Compute c, bool nhwc) {
    c.policy.channels_last = nhwc;
    std::vector<at::Tensor> out{unet->forward(c, x, 500, context), tiny.vae->decode(c, latent),
                                tiny.vae->encode(c, image).mean, taesd->decoder->forward(c, latent),
                                taesd->encoder->forward(c, image)};
    for (const at::Tensor& t : out) CHECK(t.is_contiguous());
    return out;
  };
  for (const bool tile : {false, true}) {
    CAPTURE(tile);
    const Compute c = tile ? tiled(16) : untiled();
    const auto nchw = outputs(c, false), nhwc = outputs(c, true);
    for (size_t i = 0; i < nchw.size(); ++i) {
      CAPTURE(i);
      const double e = relative_error(nhwc[i], nchw[i]);
      MESSAGE(std::string(tile ? "tiled" : "untiled") << " output " << i << ": relative error " << e);
      CHECK(e <= 1e-5);
    }
  }
}
