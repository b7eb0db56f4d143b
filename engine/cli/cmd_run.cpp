// inpaint run: inpaint an image file through a mask file with a model.
#include <ATen/Parallel.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdlib>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <optional>
#include <random>

#include "engine/cli/commands.h"
#include "engine/error.h"
#include "engine/classic_fill.h"
#include "engine/inpaint.h"
#include "engine/installed_models.h"
#include "engine/lora.h"
#include "engine/lora_cache.h"
#include "engine/memory_plan.h"
#include "engine/own_files.h"
#include "engine/runtime.h"
#include "models/kernels/cpu.h"

namespace inpaint::cli {
namespace {

std::atomic<bool> g_interrupted{false};

// Progress on stderr: stage, step i/N, s/step, ETA; Ctrl-C asks the engine to stop.
class StderrProgress : public Progress {
 public:
  explicit StderrProgress(bool quiet) : quiet_(quiet) {}
  bool stage(const std::string& name) override {
    if (!quiet_) std::fprintf(stderr, "%s%s...\n", pending_newline(), name.c_str());
    return !g_interrupted;
  }
  bool step(int done, int total, double per_step) override {
    if (!quiet_) {
      const double eta = per_step * (total - done);
      std::fprintf(stderr, "\r  step %d/%d  %.2f s/step  ETA %dm%02ds   ", done, total, per_step,
                   int(eta) / 60, int(eta) % 60);
      newline_ = done < total;
      if (!newline_) std::fprintf(stderr, "\n");
    }
    return !g_interrupted;
  }

 private:
  const char* pending_newline() {
    const char* s = newline_ ? "\n" : "";
    newline_ = false;
    return s;
  }
  bool quiet_, newline_ = false;
};

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// The denoising loops' time by kind of operation; "other" is what the timed kinds leave
// of the loops' time (element-wise operations, copies, the scheduler).
nlohmann::json profile_json(const StageTimes& t) {
  const OpProfile& p = t.unet_profile;
  nlohmann::json j = nlohmann::json::object();
  if (!op_profiling() || t.unet_steps_total == 0) return j;
  double timed = 0, flops = 0;
  for (size_t k = 0; k < size_t(OpClass::count); ++k) {
    j[op_class_name(OpClass(k))] = {{"seconds", p.seconds[k]}, {"gflop", p.flops[k] / 1e9}, {"calls", p.calls[k]}};
    timed += p.seconds[k];
    flops += p.flops[k];
  }
  const auto denoise = t.seconds.find("denoise");
  const double loop = denoise == t.seconds.end() ? timed : denoise->second;
  j["other"] = {{"seconds", std::max(0.0, loop - timed)}};
  j["denoise_seconds"] = loop;
  // The other stages (text encoder, VAE or TAESD) by kind: the whole run minus the loops.
  const OpProfile& all = op_profile();
  nlohmann::json rest = nlohmann::json::object();
  for (size_t k = 0; k < size_t(OpClass::count); ++k)
    rest[op_class_name(OpClass(k))] = {{"seconds", all.seconds[k] - p.seconds[k]}, {"gflop", (all.flops[k] - p.flops[k]) / 1e9}};
  j["outside_denoising"] = rest;
  j["gflop_per_step"] = flops / 1e9 / t.unet_steps_total;
  j["gflops"] = flops / 1e9 / loop;
  return j;
}

void print_profile(const StageTimes& t) {
  const nlohmann::json j = profile_json(t);
  if (j.empty()) return;
  const double loop = j["denoise_seconds"].get<double>();
  std::fprintf(stderr, "UNet operations over %d steps (%.1f s, %.0f GFLOP per step, %.1f GFLOPS):\n",
               t.unet_steps_total, loop, j["gflop_per_step"].get<double>(), j["gflops"].get<double>());
  for (const auto& [name, v] : j.items()) {
    if (!v.is_object() || name == "outside_denoising") continue;
    const double s = v["seconds"].get<double>();
    std::fprintf(stderr, "  %-16s %7.2f s  %5.1f %%", name.c_str(), s, 100.0 * s / loop);
    if (v.contains("gflop") && v["gflop"].get<double>() > 0)
      std::fprintf(stderr, "  %8.1f GFLOP  %6.1f GFLOPS", v["gflop"].get<double>(), v["gflop"].get<double>() / s);
    std::fprintf(stderr, "\n");
  }
  std::fprintf(stderr, "Other stages (text encoder, VAE):");
  for (const auto& [name, v] : j["outside_denoising"].items()) {
    const double s = v["seconds"].get<double>(), g = v["gflop"].get<double>();
    std::fprintf(stderr, "  %s %.2f s", name.c_str(), s);
    if (g > 0) std::fprintf(stderr, " (%.0f GFLOPS)", g / s);
  }
  std::fprintf(stderr, "\n");
  // A pinned kernel set (some containers pin Haswell's) can halve the matrix products' speed.
  const char* pinned = std::getenv("OPENBLAS_CORETYPE");
  std::fprintf(stderr, "  OpenBLAS kernels: %s%s%s\n", blas_kernels(), pinned ? ", pinned by OPENBLAS_CORETYPE=" : "",
               pinned ? pinned : "");
}

nlohmann::json regions_json(const std::vector<Roi>& rois) {
  nlohmann::json out = nlohmann::json::array();
  for (const Roi& r : rois)
    out.push_back({{"x", r.crop.x}, {"y", r.crop.y}, {"width", r.crop.width}, {"height", r.crop.height},
                   {"work_width", r.work_width}, {"work_height", r.work_height}});
  return out;
}

}  // namespace

void add_run(CLI::App& app) {
  struct Args {
    std::string model, image, mask, out, report, tokenizer, roi = "auto", max_memory, method = "auto",
        masked_content = "original", precision = "auto";
    GenerationOptions gen;
    InpaintOptions inpaint;
    std::vector<std::string> loras;
    std::string vae = "full";
    int64_t tile = 0;
    int64_t seed = -1;
    bool quiet = false, fp16 = false, profile = false, no_lora_cache = false, no_packed_cache = false, no_winograd = false;
  };
  auto a = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand("run", "Inpaint an image");
  cmd->option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  cmd->add_option("--model", a->model, "diffusers folder, .safetensors checkpoint or installed name (default: the first installed)");
  cmd->add_option("--lora", a->loras, "LoRA to apply: a .safetensors file or an installed LoRA's name, optionally :SCALE (repeatable; kohya or diffusers format)");
  cmd->add_option("--vae", a->vae, "full: the model's VAE; taesd (installed by `models fetch taesd`) or a TAESD folder: fast, approximate")
      ->capture_default_str();
  cmd->add_option("--precision", a->precision,
                  "auto: bf16 where the processor multiplies bf16 natively (AMX, AVX512-BF16: convolutions and "
                  "linear layers, attention in bf16: up to 4x faster per step, less exact), else fp32; fp32 (the reference's "
                  "numbers); bf16")
      ->capture_default_str();
  cmd->add_option("--method", a->method, "diffusion, classic (patch-based, no model), auto: diffusion when a model is installed")
      ->check(CLI::IsMember({"auto", "diffusion", "classic"}))->capture_default_str();
  cmd->add_option("--masked-content", a->masked_content, "What diffusion starts from in the mask: original pixels, or a classic fill")
      ->check(CLI::IsMember({"original", "fill"}))->capture_default_str();
  cmd->add_option("--image", a->image, "PNG or JPEG (8/16-bit, grey or RGB(A))")->required();
  cmd->add_option("--mask", a->mask, "Mask image, white = repaint (soft edges blend)")->required();
  cmd->add_option("--prompt", a->gen.prompt, "What should be there");
  CLI::Option* negative = cmd->add_option("--negative-prompt", a->gen.negative_prompt, "What should not (SDXL: none gives zeros, \"\" encodes the empty prompt)");
  cmd->add_option("--steps", a->gen.steps, "Denoising steps (1-1000)")->capture_default_str();
  cmd->add_option("--guidance", a->gen.guidance, "Classifier-free guidance; <= 1 skips the unconditional pass")
      ->capture_default_str();
  cmd->add_option("--strength", a->gen.strength, "How much of the masked area is re-noised, (0, 1]")
      ->capture_default_str();
  cmd->add_option("--seed", a->seed, "Random seed (default: random, printed)");
  cmd->add_option("--scheduler", a->gen.scheduler,
                  "ddim, pndm, euler, euler_a, dpmpp_2m, dpmpp_2m_karras, lcm (default: the model's)");
  cmd->add_option("--roi", a->roi, "auto: work on crops around the mask at the model's resolution; off: the whole picture")
      ->check(CLI::IsMember({"auto", "off"}))->capture_default_str();
  cmd->add_option("--context", a->inpaint.roi.context, "Margin around the mask in pixels (-1: a quarter of its size, >= 32)")
      ->capture_default_str();
  cmd->add_option("--resolution", a->inpaint.roi.resolution, "Side the model works at (0: its native one, 512 for SD 1.5 and 2, 1024 for SDXL)")
      ->capture_default_str();
  cmd->add_option("--grow", a->inpaint.grow, "Pixels the repainted area reaches past the mask")->capture_default_str();
  cmd->add_option("--feather", a->inpaint.feather, "Pixels over which the result fades in, inside the mask")
      ->capture_default_str();
  cmd->add_option("--max-memory", a->max_memory, "Stay under this much memory, e.g. 1G or 750M (default: no limit)");
  cmd->add_option("--tile", a->tile, "Tile side in pixels for large convolutions (0: from the memory budget)")
      ->capture_default_str();
  cmd->add_option("--out", a->out, "Output PNG")->required();
  cmd->add_option("--report", a->report, "Write timings, peak memory and settings as JSON");
  cmd->add_option("--tokenizer", a->tokenizer, "Tokenizer folder for a single-file checkpoint");
  cmd->add_flag("--fp16", a->fp16, "Prefer *.fp16.safetensors weights in a folder");
  cmd->add_flag("--no-lora-cache", a->no_lora_cache,
                "Apply LoRAs on the fly every step instead of keeping them merged in the cache (INPAINT_CACHE)");
  cmd->add_flag("--no-packed-cache", a->no_packed_cache,
                "Pack the weights for the CPU's kernels at every run instead of keeping them packed in the cache (INPAINT_CACHE)");
  cmd->add_flag("--no-winograd", a->no_winograd,
                "3x3 convolutions through the direct kernel only, for comparison (the Winograd kernel is 2-3x faster on large images)");
  cmd->add_flag("--quiet", a->quiet, "No progress output");
  cmd->add_flag("--profile", a->profile, "Time the UNet's operations by kind (printed, and in the report)");
  cmd->callback([a, negative] {
    const auto start = std::chrono::steady_clock::now();
    GenerationOptions gen = a->gen;
    gen.negative_prompt_given = negative->count() > 0;
    if (a->seed < 0) {
      gen.seed = std::random_device{}() & 0xffffffffu;
      std::fprintf(stderr, "seed: %llu\n", static_cast<unsigned long long>(gen.seed));
    } else {
      gen.seed = static_cast<uint64_t>(a->seed);
    }
    validate(gen);  // before any loading: bad options fail fast
    // Where the results go, before anything is loaded: never over an input, never
    // anything but a regular file in a folder we can write.
    check_output_file(a->out, "--out", {{"--image", a->image}, {"--mask", a->mask}});
    if (image_format(a->out).empty())
      throw Error("--out " + a->out + ": write .png, .jpg or .jpeg (the format follows the extension)");
    if (!a->report.empty())
      check_output_file(a->report, "--report", {{"--image", a->image}, {"--mask", a->mask}, {"--out", a->out}});
    // SIGTERM and SIGHUP cancel as Ctrl-C does: between steps, and nothing half-written.
    for (int sig : {SIGINT, SIGTERM, SIGHUP}) std::signal(sig, [](int) { g_interrupted = true; });
    InpaintOptions io = a->inpaint;
    io.roi.enabled = a->roi == "auto";
    validate(io);
    if (a->tile < 0 || (a->tile > 0 && a->tile < 16)) throw Error("--tile must be 0 (automatic) or at least 16");
    const size_t max_memory = a->max_memory.empty() ? 0 : parse_size(a->max_memory);
    // Sizes from the headers first: a wrong pair or a huge picture fails before decoding.
    const auto [iw, ih] = image_size(a->image);
    const auto [mw, mh] = image_size(a->mask);
    if (iw != mw || ih != mh)
      throw Error("the image " + a->image + " is " + std::to_string(iw) + "x" + std::to_string(ih) + " but the mask " +
                  a->mask + " is " + std::to_string(mw) + "x" + std::to_string(mh));
    check_image_size(iw, ih, io.roi.enabled);
    const auto [channels, sixteen_bit] = image_channels(a->image);
    const size_t picture = picture_bytes(iw, ih, channels, sixteen_bit);
    check_picture_budget(max_memory, picture);  // the classic fill too
    io.prefill = a->masked_content == "fill";
    const bool classic = a->method == "classic" || (a->method == "auto" && a->model.empty() && installed_models().empty());
    if (classic && a->method == "auto")
      std::fprintf(stderr, "no diffusion model installed (%s): using the classic fill\n", models_dir().c_str());
    std::optional<ModelSource> model;
    MemoryPlan plan;
    Compute compute;
    plan.name = "none (classic fill)";
    std::vector<LoraSpec> loras;
    std::string lora_cache = "none";  // none, off, used, missing, written
    double lora_cache_seconds = 0;
    if (!classic) {
      OpenOptions open;
      open.prefer_fp16 = a->fp16;
      open.tokenizer_dir = a->tokenizer;
      model.emplace(ModelSource::open(resolve_model(a->model), open));  // headers only
      if (a->vae != "full") gen.taesd = resolve_taesd(a->vae, model->family);
      if (!a->no_packed_cache) gen.packed_cache = cache_root() / "packed";
      for (const std::string& text : a->loras) loras.push_back(resolve_lora(text));
      // The cache first: when it has them merged, the LoRA files are not read at all.
      if (!loras.empty()) lora_cache = a->no_lora_cache ? "off" : use_lora_cache(*model, loras) ? "used" : "missing";
      if (lora_cache == "used" && !a->quiet) std::fprintf(stderr, "LoRA weights merged already (cache)\n");
      if (lora_cache != "used")
        for (const LoraSpec& lora : loras) {
          const LoraReport r = apply_lora(*model, lora);
          if (!a->quiet)
            std::fprintf(stderr, "LoRA %s (x%g): %d layers merged%s\n", lora.file.c_str(), lora.scale, r.layers,
                         r.ignored.empty() ? "" : (", " + std::to_string(r.ignored.size()) + " entries match nothing here").c_str());
        }
      // Merged after the picture: the UNet's weights packed with the LoRAs apart are not kept.
      gen.keep_unet_packed = !(lora_cache == "missing" && lora_cache_can_merge(*model));
      // The memory plan before any pixel or weight is loaded: too little fails here.
      plan = plan_memory(*model, max_memory, working_side(Pipeline(*model), io.roi, iw, ih), picture);
      if (a->tile) plan.policy.conv_tile = a->tile;
      if (a->no_winograd) plan.policy.winograd_from_pixels = 0;
      compute.policy = plan.policy;
      compute.precision = effective_precision(choose_precision(a->precision, "--precision"), compute.policy);
    }
    const auto io_start = std::chrono::steady_clock::now();
    Image image = load_image(a->image);
    if (image_format(a->out) == "jpeg" && (image.channels == 2 || image.channels == 4))
      throw Error("--out " + a->out + ": JPEG has no alpha channel and " + a->image + " has one: write .png to keep it");
    // A 16-bit picture comes out 16-bit: its samples are kept wherever nothing changed.
    const std::vector<uint16_t> samples16 = image_format(a->out) == "png" ? load_samples16(a->image) : std::vector<uint16_t>{};
    const Mask mask = load_mask(a->mask);
    double io_seconds = seconds_since(io_start);
    release_free_memory();  // the decoders' buffers
    StderrProgress progress(a->quiet);
    set_op_profiling(a->profile);
    InpaintResult result;
    try {
      result = classic ? classic_fill_image(std::move(image), mask, gen.seed, io, progress)
                       : inpaint_image(*model, compute, std::move(image), mask, gen, io, progress);
    } catch (const Cancelled&) {
      g_interrupted = true;
    }
    const auto cancel = [] {
      std::fprintf(stderr, "\ncancelled: nothing written\n");
      std::exit(130);
    };
    if (g_interrupted) cancel();  // also when it came during the last stage (the decoder)
    if (result.nothing_to_do) std::fprintf(stderr, "the mask is empty: nothing to inpaint, the output is the input\n");
    const auto save_start = std::chrono::steady_clock::now();
    const std::vector<uint16_t> out16 = samples16.empty() ? samples16 : widen_result(samples16, result.image);
    try {
      save_image(write_target(a->out), result.image, &out16, [] { return g_interrupted.load(); });
    } catch (const Error&) {
      if (g_interrupted) cancel();
      throw;
    }
    io_seconds += seconds_since(save_start);
    const double total = seconds_since(start);
    if (lora_cache == "missing" && !g_interrupted) {  // after the picture: the first run is not made to wait for it
      const auto cache_start = std::chrono::steady_clock::now();
      try {
        if (write_lora_cache(*model, loras, [&](const std::string& m) { if (!a->quiet) std::fprintf(stderr, "%s\n", m.c_str()); }))
          lora_cache = "written";
      } catch (const Error& e) {
        std::fprintf(stderr, "LoRA cache not written: %s\n", e.what());
      }
      lora_cache_seconds = seconds_since(cache_start);
    }
    const nlohmann::json profile = profile_json(result.times);
    if (a->profile) print_profile(result.times);
    if (!a->report.empty()) {
      nlohmann::json r = {{"seconds_total", total - io_seconds},
                          {"seconds_image_files", io_seconds},
                          {"method", classic ? "classic" : "diffusion"},
                          {"lora_cache", lora_cache},
                          {"seconds_lora_cache_write", lora_cache_seconds},
                          {"packed_cache", result.times.packed_cache},
                          {"seconds_per_step", result.times.seconds_per_step},
                          {"unet_steps", result.times.unet_steps},
                          {"peak_rss_bytes", peak_rss_bytes()},
                          {"stages", result.times.seconds},
                          {"peak_rss_after_stage", result.times.peak_rss_after},
                          {"seconds_to_first_step", result.times.seconds_to_first_step},
                          {"unet_steps_total", result.times.unet_steps_total},
                          {"profile", profile},
                          {"regions", regions_json(result.regions)},
                          {"memory", {{"max_memory_bytes", max_memory}, {"budget_bytes", plan.budget}, {"policy", plan.name},
                                      {"estimated_peak_bytes", plan.estimated_peak},
                                      {"stream_weights", plan.policy.stream_weights},
                                      {"attention_floats", plan.policy.attention_floats},
                                      {"work_floats", plan.policy.work_floats},
                                      {"tile_above_floats", plan.policy.tile_above_floats},
                                      {"conv_tile", plan.policy.conv_tile},
                                      {"winograd_from_pixels", plan.policy.winograd_from_pixels},
                                      {"half_storage_above", plan.policy.half_storage_above}}},
                          {"seed", gen.seed},
                          {"settings", {{"model", a->model}, {"image", a->image}, {"mask", a->mask},
                                        {"prompt", gen.prompt}, {"negative_prompt", gen.negative_prompt},
                                        {"steps", gen.steps}, {"guidance", gen.guidance},
                                        {"strength", gen.strength}, {"scheduler", gen.scheduler},
                                        {"roi", a->roi}, {"context", io.roi.context},
                                        {"resolution", io.roi.resolution}, {"grow", io.grow},
                                        {"feather", io.feather}, {"masked_content", a->masked_content},
                                        {"loras", a->loras}, {"vae", a->vae},
                                        {"threads", at::get_num_threads()},
                                        {"blas_kernels", blas_kernels()},
                                        {"cpu", cpu_features().name},
                                        {"cpu_native_bf16", cpu_features().native_bf16()},
                                        {"precision", precision_name(compute.precision)},
                                        {"width", iw}, {"height", ih}}}};
      // Valid JSON whatever the prompt's bytes (invalid UTF-8 becomes U+FFFD), and whole or not at all.
      write_file_atomically(write_target(a->report), r.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
    }
    if (!a->quiet) std::fprintf(stderr, "wrote %s (%.1f s)\n", a->out.c_str(), total);
  });
}

}  // namespace inpaint::cli
