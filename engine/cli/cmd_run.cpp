// inpaint run: inpaint an image file through a mask file with a model.
#include <ATen/Parallel.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <random>

#include "engine/cli/commands.h"
#include "engine/error.h"
#include "engine/inpaint.h"

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

}  // namespace

void add_run(CLI::App& app) {
  struct Args {
    std::string model, image, mask, out, report, tokenizer;
    GenerationOptions gen;
    int64_t seed = -1;
    bool quiet = false, fp16 = false;
  };
  auto a = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand("run", "Inpaint an image");
  cmd->option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  cmd->add_option("--model", a->model, "diffusers folder or .safetensors checkpoint")->required();
  cmd->add_option("--image", a->image, "PNG or JPEG (8/16-bit, grey or RGB(A))")->required();
  cmd->add_option("--mask", a->mask, "Mask image, white = repaint (soft edges blend)")->required();
  cmd->add_option("--prompt", a->gen.prompt, "What should be there");
  cmd->add_option("--negative-prompt", a->gen.negative_prompt, "What should not");
  cmd->add_option("--steps", a->gen.steps, "Denoising steps (1-1000)")->capture_default_str();
  cmd->add_option("--guidance", a->gen.guidance, "Classifier-free guidance; <= 1 skips the unconditional pass")
      ->capture_default_str();
  cmd->add_option("--strength", a->gen.strength, "How much of the masked area is re-noised, (0, 1]")
      ->capture_default_str();
  cmd->add_option("--seed", a->seed, "Random seed (default: random, printed)");
  cmd->add_option("--scheduler", a->gen.scheduler,
                  "ddim, pndm, euler, euler_a, dpmpp_2m, dpmpp_2m_karras, lcm (default: the model's)");
  cmd->add_option("--out", a->out, "Output PNG")->required();
  cmd->add_option("--report", a->report, "Write timings, peak memory and settings as JSON");
  cmd->add_option("--tokenizer", a->tokenizer, "Tokenizer folder for a single-file checkpoint");
  cmd->add_flag("--fp16", a->fp16, "Prefer *.fp16.safetensors weights in a folder");
  cmd->add_flag("--quiet", a->quiet, "No progress output");
  cmd->callback([a] {
    const auto start = std::chrono::steady_clock::now();
    GenerationOptions gen = a->gen;
    if (a->seed < 0) {
      gen.seed = std::random_device{}() & 0xffffffffu;
      std::fprintf(stderr, "seed: %llu\n", static_cast<unsigned long long>(gen.seed));
    } else {
      gen.seed = static_cast<uint64_t>(a->seed);
    }
    validate(gen);  // before any loading: bad options fail fast
    // Sizes from the headers first: a wrong pair or a huge picture fails before decoding.
    const auto [iw, ih] = image_size(a->image);
    const auto [mw, mh] = image_size(a->mask);
    if (iw != mw || ih != mh)
      throw Error("the image " + a->image + " is " + std::to_string(iw) + "x" + std::to_string(ih) + " but the mask " +
                  a->mask + " is " + std::to_string(mw) + "x" + std::to_string(mh));
    check_image_size(iw, ih);
    const Image image = load_image(a->image);
    const Mask mask = load_mask(a->mask);
    OpenOptions open;
    open.prefer_fp16 = a->fp16;
    open.tokenizer_dir = a->tokenizer;
    const ModelSource model = ModelSource::open(a->model, open);
    std::signal(SIGINT, [](int) { g_interrupted = true; });
    StderrProgress progress(a->quiet);
    InpaintResult result;
    try {
      result = inpaint_image(model, image, mask, gen, progress);
    } catch (const Cancelled&) {
      std::fprintf(stderr, "\ncancelled: nothing written\n");
      std::exit(130);
    }
    if (result.nothing_to_do) std::fprintf(stderr, "the mask is empty: nothing to inpaint, the output is the input\n");
    save_png(a->out, result.image);
    const double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (!a->report.empty()) {
      nlohmann::json r = {{"seconds_total", total},
                          {"seconds_per_step", result.times.seconds_per_step},
                          {"unet_steps", result.times.unet_steps},
                          {"peak_rss_bytes", peak_rss_bytes()},
                          {"stages", result.times.seconds},
                          {"seed", gen.seed},
                          {"settings", {{"model", a->model}, {"image", a->image}, {"mask", a->mask},
                                        {"prompt", gen.prompt}, {"negative_prompt", gen.negative_prompt},
                                        {"steps", gen.steps}, {"guidance", gen.guidance},
                                        {"strength", gen.strength}, {"scheduler", gen.scheduler},
                                        {"threads", at::get_num_threads()},
                                        {"width", image.width}, {"height", image.height}}}};
      std::ofstream out(a->report);
      out << r.dump(2) << "\n";
      if (!out) throw Error(a->report + ": cannot write the report");
    }
    if (!a->quiet) std::fprintf(stderr, "wrote %s (%.1f s)\n", a->out.c_str(), total);
  });
}

}  // namespace inpaint::cli
