#include "engine/pipeline.h"

#include <ATen/core/grad_mode.h>  // at::NoGradGuard (not in ATen.h from libtorch 2)
#include <ATen/CPUGeneratorImpl.h>

#include <chrono>

#include "engine/error.h"
#include "engine/networks.h"
#include "engine/packed_cache.h"
#include "engine/runtime.h"
#include "engine/schedulers/scheduler.h"
#include "models/layers.h"
#include "models/kernels/packed_conv.h"

namespace inpaint {
namespace {

using Clock = std::chrono::steady_clock;

double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// A named stage: reports it, times it, and cancels when progress says so.
struct Stage {
  Stage(const std::string& name, Progress& p, StageTimes* times, bool release_between)
      : name_(name), times_(times), release_(release_between) {
    if (!p.stage(name)) throw Cancelled();
  }
  ~Stage() {
    // Under a memory budget, hand the stage's freed heap back: the next stage allocates
    // in other sizes, and the heap keeps large blocks (see init_runtime), so peaks would
    // otherwise add up. Without one, keep it: pages handed back are faulted in again.
    if (release_) release_free_memory();
    if (!times_) return;
    times_->seconds[name_] += since(start_);
    times_->peak_rss_after[name_] = peak_rss_bytes();
  }
  std::string name_;
  StageTimes* times_;
  bool release_;
  Clock::time_point start_ = Clock::now();
};

// Weights packed for oneDNN (models/kernels/packed_conv.h) save 0.35-0.5 s per UNet evaluation
// at 512². Packing them in memory costs 2-6 s per load here (the copy and 1.7 GB of fresh
// memory): without a folder to keep them in (engine/packed_cache.h) it pays from about
// this many evaluations. The text encoder runs once per prompt: text_encoder_compute.
constexpr size_t kMinEvaluationsToPack = 8;
// Kept bf16 weights are used from the file's mapping for runs of at most this many steps
// (LCM's 4) even where the kernel maps them with 4 KB pages (engine/packed_cache.h):
// copying them costs 1.7 GB of fresh memory before the first step, such a mapping 6-8 %
// per step.
constexpr size_t kFewSteps = 8;

// A network from load (load_unet, load_vae) with its packed weights mapped from `dir`
// when kept there for these `shapes`; `slots` receives its layers' packed weights for
// keep_packed().
template <class Net>
std::unique_ptr<Net> load_packed(std::unique_ptr<Net> (*load)(const ModelSource&, PackedSlots*), const ModelSource& model,
                                 const std::string& component, const std::string& shapes, const std::filesystem::path& dir,
                                 PackedSlots& slots, const Compute& compute, StageTimes* times, bool few_calls = false) {
  // Streamed weights are packed per call: nothing to keep, and a kept copy mapped whole
  // would hold the memory streaming saves.
  if (dir.empty() || compute.policy.stream_weights) return load(model, nullptr);
  auto net = load(model, &slots);
  const bool used =
      use_packed_cache(packed_cache_file(dir, model.component(component), compute, shapes), slots, compute, few_calls) > 0;
  if (times) times->packed_cache[component] = used ? "used" : "missing";
  return net;
}

// Keeps what was packed in memory for the next run. A failure only warns: the picture goes on.
void keep_packed(const ModelSource& model, const std::string& component, const std::string& shapes,
                 const std::filesystem::path& dir, const PackedSlots& slots, const Compute& compute, StageTimes* times) {
  if (dir.empty() || !packed_in_memory(slots)) return;
  try {
    if (write_packed_cache(packed_cache_file(dir, model.component(component), compute, shapes), slots, compute) && times)
      times->packed_cache[component] = "written";
  } catch (const Error& e) {
    std::fprintf(stderr, "inpaint: packed weights not kept: %s\n", e.what());
  }
}

at::Tensor token_ids(const ClipTokenizer& tok, const std::string& text) {
  const auto padded = tok.encode_padded(text);
  if (padded.truncated())
    std::fprintf(stderr, "inpaint: warning: the prompt has %zu tokens; only the first %lld are used\n",
                 padded.untruncated_length, static_cast<long long>(tok.max_length()));
  return at::tensor(padded.ids).unsqueeze(0);
}

// The texts' ids as one batch, in their order (all padded to the same length).
at::Tensor token_ids(const ClipTokenizer& tok, const std::vector<std::string>& texts) {
  std::vector<at::Tensor> rows;
  for (const std::string& text : texts) rows.push_back(token_ids(tok, text));
  return at::cat(rows);
}

// latent_dist.sample(generator) * scaling_factor, as diffusers' _encode_vae_image.
at::Tensor sample_latents(const Compute& compute, const AutoencoderKL& vae, const at::Tensor& image, at::Generator& gen) {
  const LatentDistribution d = vae.encode(compute, image);
  return (d.mean + d.std * at::randn(d.mean.sizes(), gen)) * static_cast<float>(vae.config().scaling_factor);
}

// The image's latents, in the UNet's space: sampled from the VAE's distribution (one
// draw of `gen`, as diffusers), or TAESD's (deterministic, as diffusers' AutoencoderTiny).
at::Tensor encode_latents(const Compute& compute, const AutoencoderKL* vae, const Taesd* taesd, const at::Tensor& image,
                          at::Generator& gen) {
  return taesd ? taesd->encoder->forward(compute, image / 2 + 0.5) : sample_latents(compute, *vae, image, gen);
}

std::unique_ptr<Taesd> open_taesd(const std::filesystem::path& dir) {
  const auto [encoder, decoder] = taesd_files(dir);
  return load_taesd(encoder, decoder);
}

}  // namespace

void validate(const GenerationOptions& o) {
  if (o.steps < 1 || o.steps > 1000)
    throw Error("--steps is " + std::to_string(o.steps) + "; it must be between 1 and 1000");
  if (!(o.strength > 0.0 && o.strength <= 1.0))
    throw Error("--strength is " + std::to_string(o.strength) + "; it must be in (0, 1]");
  // Guidance far above the usual 1-15 only amplifies the difference to overflow.
  if (!(o.guidance >= 0.0 && o.guidance <= 100.0))
    throw Error("--guidance is " + std::to_string(o.guidance) + "; it must lie in [0, 100]");
  make_scheduler(o.scheduler, nlohmann::json::object());  // throws for an unknown name, listing them
}

namespace {
// NaN or Inf never reach a picture: each stage's result is checked (a few thousand
// values, next to nothing against the stage), and the error names the stage and what
// usually causes it.
void require_finite(const at::Tensor& t, const std::string& stage, const std::string& cause) {
  if (!at::isfinite(t).all().item<bool>())
    throw Error(stage + " produced NaN or infinite values: " + cause + " (nothing was written)");
}
const char* const kWeightsCause = "its weights (or a LoRA merged into them) hold NaN/Inf values or are far off scale";
}  // namespace

Compute text_encoder_compute(const Compute& c) {
  if (c.precision != Precision::bf16 || !c.policy.packed_convolutions) return c.packing(false);
  Compute packed_per_call = c;
  packed_per_call.policy.stream_weights = true;
  return packed_per_call;
}

Pipeline::Pipeline(const ModelSource& model, const Compute& compute) : model_(model), compute_(compute) {}

int64_t Pipeline::native_resolution() const {
  return model_.component("unet").config.value("sample_size", 64) * 8;
}

PromptEmbeddings Pipeline::prompt_embeddings(const GenerationOptions& o, bool cfg) const {
  const bool zeros = model_.force_zeros_for_empty_prompt && o.negative_prompt.empty() && !o.negative_prompt_given;
  const std::string key = o.prompt + '\0' + o.negative_prompt + '\0' + (cfg ? "cfg" : "") + (zeros ? "zeros" : "");
  auto it = prompt_cache_.find(key);
  if (it != prompt_cache_.end()) return it->second;
  // The prompt and the negative one as a batch: each weight widened or packed once for both.
  const Compute text_compute = text_encoder_compute(compute_);
  std::vector<std::string> texts = {o.prompt};
  if (cfg && !zeros) texts.insert(texts.begin(), o.negative_prompt);
  PromptEmbeddings e;
  if (model_.family != Family::SDXL) {
    const ClipTokenizer tok = load_tokenizer(model_);
    const auto encoder = load_text_encoder(model_);
    e.context = encoder->forward(text_compute, token_ids(tok, texts));
  } else {
    // SDXL: both encoders' penultimate states side by side; the pooled embedding is the
    // second's. One encoder at a time in memory (bigG alone is 1.4 GB in fp16).
    std::vector<at::Tensor> parts;
    for (const bool second : {false, true}) {
      const ClipTokenizer tok = load_tokenizer(model_, second);
      const auto encoder = load_text_encoder(model_, second ? "text_encoder_2" : "text_encoder");
      const ClipTextOutput out = encoder->encode(text_compute, token_ids(tok, texts));
      parts.push_back(out.penultimate_hidden_state);
      if (second) e.pooled = out.pooled;
    }
    e.context = at::cat(parts, -1);
    if (cfg && zeros) {
      e.context = at::cat({at::zeros_like(e.context), e.context});
      e.pooled = at::cat({at::zeros_like(e.pooled), e.pooled});
    }
  }
  return prompt_cache_[key] = e;
}

at::Tensor Pipeline::generate(const at::Tensor& image, const at::Tensor& mask_in, const GenerationOptions& o,
                              Progress& progress, StageTimes* times) const {
  validate(o);
  at::NoGradGuard no_grad;
  const int64_t h = image.size(2), w = image.size(3);
  if (h % 8 || w % 8) throw Error("pipeline: image size must be a multiple of 8");
  const bool cfg = o.guidance > 1.0;
  // What the UNet and the VAE run on, which names their kept packed weights (packed_cache_file).
  const std::string unet_shape = unet_shapes(cfg ? 2 : 1, h / 8, w / 8), vae_shape = vae_shapes(h, w);
  at::Generator gen = at::detail::createCPUGenerator(o.seed);
  const bool release = compute_.policy.release_between_stages;

  PromptEmbeddings prompt;
  {
    Stage s("encode prompt", progress, times, release);
    prompt = prompt_embeddings(o, cfg);
    require_finite(prompt.context, "the text encoder", kWeightsCause);
    if (prompt.pooled.defined()) require_finite(prompt.pooled, "the text encoder", kWeightsCause);
  }
  // SDXL's size conditions: original size, crop's top-left, target size, as diffusers
  // passes them by default (the image's size, no crop), the same for both halves.
  AddedConditions added;
  if (prompt.pooled.defined()) {
    added.text_embeds = prompt.pooled;
    const float hf = static_cast<float>(h), wf = static_cast<float>(w);
    added.time_ids = at::tensor(std::vector<float>{hf, wf, 0, 0, hf, wf}).unsqueeze(0).expand({prompt.pooled.size(0), 6});
  }

  auto scheduler = make_scheduler(o.scheduler, model_.scheduler_config);
  scheduler->set_timesteps(o.steps);
  // get_timesteps: strength < 1 skips the first part of the schedule.
  const int64_t n = static_cast<int64_t>(o.steps);
  const int64_t init = std::min<int64_t>(static_cast<int64_t>(n * o.strength), n);
  const int64_t t_start = std::max<int64_t>(n - init, 0);
  std::vector<double> timesteps(scheduler->timesteps().begin() + std::min<int64_t>(t_start * scheduler->order(), scheduler->timesteps().size()),
                                scheduler->timesteps().end());
  if (timesteps.empty())
    throw Error("--strength " + std::to_string(o.strength) + " with " + std::to_string(o.steps) +
                " steps leaves no denoising step; raise one of them");
  const bool full_strength = o.strength == 1.0;

  const int64_t in_channels = model_.unet_in_channels();
  const at::Tensor mask_bin = (mask_in >= 0.5).to(at::kFloat);  // the model sees a binary mask
  at::Tensor latents, noise, image_latents, mask, masked_latents;
  {
    Stage s("encode image", progress, times, release);
    const auto taesd = o.taesd.empty() ? nullptr : open_taesd(o.taesd);
    PackedSlots vae_packed;
    const auto vae =
        taesd ? nullptr : load_packed(&load_vae, model_, "vae", vae_shape, o.packed_cache, vae_packed, compute_, times);
    if (in_channels == 4 || !full_strength) image_latents = encode_latents(compute_, vae.get(), taesd.get(), image, gen);
    noise = at::randn({1, 4, h / 8, w / 8}, gen);
    latents = full_strength ? noise * static_cast<float>(scheduler->init_noise_sigma())
                            : scheduler->add_noise(image_latents, noise, timesteps[0]);
    mask = at::upsample_nearest2d(mask_bin, {h / 8, w / 8});
    masked_latents = encode_latents(compute_, vae.get(), taesd.get(), image * (mask_bin < 0.5).to(at::kFloat), gen);
    require_finite(masked_latents, "the image encoder (VAE)", kWeightsCause);
    if (image_latents.defined()) require_finite(image_latents, "the image encoder (VAE)", kWeightsCause);
    keep_packed(model_, "vae", vae_shape, o.packed_cache, vae_packed, compute_, times);
  }

  PackedSlots unet_packed;
  {
    Stage s("denoise", progress, times, release);
    // bf16 runs on packed weights only: always packed then.
    const Compute unet_compute = compute_.packing(!o.packed_cache.empty() || timesteps.size() >= kMinEvaluationsToPack ||
                                                  compute_.precision == Precision::bf16);
    const auto unet = load_packed(&load_unet, model_, "unet", unet_shape, o.packed_cache, unet_packed,
                                  unet_compute, times, /*few_calls=*/timesteps.size() <= kFewSteps);
    const at::Tensor mask_in_batch = cfg ? at::cat({mask, mask}) : mask;
    const at::Tensor masked_in_batch = cfg ? at::cat({masked_latents, masked_latents}) : masked_latents;
    const auto start = Clock::now();
    if (times && times->seconds_to_first_step == 0) times->seconds_to_first_step = seconds_since_process_start();
    const OpProfile before = op_profile();
    for (size_t i = 0; i < timesteps.size(); ++i) {
      const double t = timesteps[i];
      at::Tensor input = scheduler->scale_model_input(cfg ? at::cat({latents, latents}) : latents, t);
      if (in_channels == 9) input = at::cat({input, mask_in_batch, masked_in_batch}, 1);
      at::Tensor eps = unet->forward(unet_compute, input, t, prompt.context, added);
      if (cfg) {
        const auto parts = eps.chunk(2);
        eps = parts[0] + (parts[1] - parts[0]) * static_cast<float>(o.guidance);
      }
      latents = scheduler->step(eps, t, latents, gen).prev_sample;
      require_finite(latents, "denoising step " + std::to_string(i + 1) + " (UNet)",
                     std::string(kWeightsCause) + ", or the guidance scale is too large");
      if (in_channels == 4) {  // plain models: keep the unmasked area on the image's path
        at::Tensor proper = image_latents;
        if (i + 1 < timesteps.size()) proper = scheduler->add_noise(image_latents, noise, timesteps[i + 1]);
        latents = (1 - mask) * proper + mask * latents;
      }
      progress.latents(static_cast<int>(i + 1), latents);
      const double per_step = since(start) / static_cast<double>(i + 1);
      if (times) {
        times->seconds_per_step = per_step;
        times->unet_steps = static_cast<int>(i + 1);
        ++times->unet_steps_total;
      }
      if (!progress.step(static_cast<int>(i + 1), static_cast<int>(timesteps.size()), per_step))
        throw Cancelled();
    }
    if (times)
      for (size_t k = 0; k < size_t(OpClass::count); ++k) {
        times->unet_profile.seconds[k] += op_profile().seconds[k] - before.seconds[k];
        times->unet_profile.flops[k] += op_profile().flops[k] - before.flops[k];
        times->unet_profile.calls[k] += op_profile().calls[k] - before.calls[k];
      }
  }

  if (!o.packed_cache.empty() && o.keep_unet_packed && packed_in_memory(unet_packed)) {
    Stage s("keep packed weights", progress, times, release);  // the first run with a model: ~1-2 s
    keep_packed(model_, "unet", unet_shape, o.packed_cache, unet_packed, compute_, times);
  }
  unet_packed.clear();  // the UNet's packed weights go now, not after decoding
  release_widening_buffer();

  Stage s("decode", progress, times, release);
  if (!o.taesd.empty()) {
    const at::Tensor decoded = open_taesd(o.taesd)->decoder->forward(compute_, latents);
    require_finite(decoded, "the image decoder (TAESD)", kWeightsCause);
    return decoded.clamp(0, 1);
  }
  PackedSlots vae_packed;
  const auto vae = load_packed(&load_vae, model_, "vae", vae_shape, o.packed_cache, vae_packed, compute_, times);
  const at::Tensor decoded = vae->decode(compute_, latents / static_cast<float>(vae->config().scaling_factor));
  require_finite(decoded, "the image decoder (VAE)", std::string(kWeightsCause) + ", or its scaling_factor is wrong");
  keep_packed(model_, "vae", vae_shape, o.packed_cache, vae_packed, compute_, times);  // the decoder's, at the first run
  return (decoded / 2 + 0.5).clamp(0, 1);
}

}  // namespace inpaint
