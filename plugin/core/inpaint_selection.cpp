#include "plugin/core/inpaint_selection.h"

#include <algorithm>
#include <cstdio>
#include <optional>
#include <random>
#include <thread>

#include "engine/classic_fill.h"
#include "engine/error.h"
#include "engine/inpaint.h"
#include "engine/installed_models.h"
#include "engine/lora.h"
#include "engine/lora_cache.h"
#include "engine/mask_edges.h"
#include "engine/memory_plan.h"
#include "engine/runtime.h"
#include "models/kernels/cpu.h"
#include "plugin/core/gimp_host.h"
#include "plugin/core/messages.h"

namespace inpaint::plugin {
namespace {

// Stage and step in GIMP's progress bar: "Region 1/2: Denoising 7/20".
class GimpProgress : public Progress {
 public:
  explicit GimpProgress(size_t regions) : regions_(regions) {}
  void next_region(size_t index) { region_ = index; }
  bool stage(const std::string& name) override {
    stage_ = name == "denoise" ? "Denoising" : name == "encode prompt" ? "Reading the prompt"
           : name == "encode image" ? "Encoding the image" : name == "decode" ? "Decoding" : name;
    show(stage_);
    return true;
  }
  bool step(int done, int total, double) override {
    show(stage_ + " " + std::to_string(done) + "/" + std::to_string(total));
    gimp::progress_fraction((double(region_) + double(done) / double(total)) / double(regions_));
    return true;
  }

 private:
  void show(const std::string& text) {
    const std::string prefix = regions_ > 1 ? "Region " + std::to_string(region_ + 1) + "/" + std::to_string(regions_) + ": " : "";
    gimp::progress_text(prefix + text);
  }
  size_t regions_, region_ = 0;
  std::string stage_;
};

GenerationOptions generation_options(const Settings& s) {
  GenerationOptions g;
  g.prompt = s.prompt;
  g.negative_prompt = s.negative_prompt;  // an empty field: none (SDXL: zeros, as diffusers without one)
  g.steps = s.steps;
  g.guidance = s.guidance;
  g.strength = s.strength;
  g.scheduler = s.scheduler;
  g.seed = s.random_seed ? std::random_device{}() : s.seed;
  g.packed_cache = cache_root() / "packed";  // GIMP starts the plug-in anew at every call
  return g;
}

// Adds the settings' ';'-separated LoRAs to the model (before its networks load); returns them.
std::vector<LoraSpec> apply_loras(ModelSource& model, const std::string& list) {
  std::vector<LoraSpec> specs;
  size_t start = 0;
  while (start <= list.size()) {
    const size_t end = std::min(list.find(';', start), list.size());
    std::string text = list.substr(start, end - start);
    text.erase(0, text.find_first_not_of(" \t"));
    text.erase(text.find_last_not_of(" \t") + 1);
    if (!text.empty()) {
      specs.push_back(resolve_lora(text));
      apply_lora(model, specs.back());
    }
    start = end + 1;
  }
  return specs;
}

// Temporarily holds the visible-image layer for "sample merged".
struct Source {
  int32_t drawable;
  bool temporary;
  ~Source() {
    if (temporary) gimp::remove_item(drawable);
  }
};

}  // namespace

int32_t inpaint_selection(int32_t image, int32_t drawable, const Settings& s) {
  if (gimp::base_type(image) == gimp::BaseType::Indexed)
    throw Error("Inpaint works on RGB and grayscale images; convert this one with Image > Mode > RGB first.");
  GenerationOptions gen = generation_options(s);
  validate(gen);
  InpaintOptions io;
  io.roi.context = s.context;
  io.roi.resolution = s.resolution;
  io.grow = s.grow;
  io.feather = s.feather;
  validate(io);
  uint64_t max_memory = 0;
  try {
    max_memory = s.max_memory[0] ? parse_size(s.max_memory) : 0;
  } catch (const Error& e) {
    throw Error(std::string("--max-memory: ") + e.what());
  }
  Box selection;
  if (!gimp::selection_bounds(image, &selection))
    throw Error("There is no selection. Select the area to repaint (for example with the Free Select tool), "
                "then run Inpaint Selection again.");
  const Box layer = gimp::drawable_rect(drawable);
  const Box area = intersect(selection, s.sample_merged ? gimp::image_rect(image) : layer);
  if (area.empty()) throw Error("The selection lies outside the active layer: nothing to repaint.");
  const Mask mask = gimp::read_selection(image, area);
  if (std::none_of(mask.values.begin(), mask.values.end(), [](float v) { return v > 0.0f; }))
    throw Error("The selection is empty inside the active layer: nothing to repaint.");

  init_runtime(s.threads > 0 ? s.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
  // The classic fill when asked for, or when there is no model to use.
  const bool classic = s.model == std::string(kClassicFill) || (!s.model[0] && installed_models().empty());
  std::optional<ModelSource> model;
  std::optional<Pipeline> pipeline;
  std::vector<LoraSpec> loras;
  bool lora_cached = false;
  if (!classic) {
    model.emplace(ModelSource::open(resolve_model(s.model)));
    loras = apply_loras(*model, s.loras);
    lora_cached = !loras.empty() && use_lora_cache(*model, loras);
    // Merged after the picture: the UNet's weights packed with the LoRAs apart are not kept.
    gen.keep_unet_packed = lora_cached || !lora_cache_can_merge(*model);
    if (s.taesd[0]) gen.taesd = resolve_taesd(s.taesd, model->family);
    Compute compute;
    compute.policy = plan_memory(*model, max_memory, working_side(Pipeline(*model), io.roi, area.width, area.height)).policy;
    compute.precision = effective_precision(choose_precision(s.precision, "--precision"), compute.policy);
    pipeline.emplace(*model, compute);
  }

  // Regions in the source's own coordinates.
  const Source source{s.sample_merged ? gimp::visible_layer(image) : drawable, s.sample_merged != 0};
  const Box src = s.sample_merged ? gimp::image_rect(image) : layer;
  const Box mask_box{area.x - src.x, area.y - src.y, area.width, area.height};
  const auto rois = classic ? plan_classic_regions(mask, mask_box, src.width, src.height, io.roi)
                            : plan_rois(mask, mask_box, src.width, src.height, pipeline->native_resolution(), io.roi);

  gimp::progress_start(classic ? "Classic fill" : "Inpainting");
  GimpProgress progress(rois.size());
  std::vector<float> rgba(size_t(area.width * area.height * 4), 0.0f);
  for (size_t i = 0; i < rois.size(); ++i) {
    progress.next_region(i);
    const Box& c = rois[i].crop;  // source coordinates
    // The selection over the crop (zero where the crop leaves the read area).
    const Mask selected = crop_mask(mask, c.x - mask_box.x, c.y - mask_box.y, c.width, c.height);
    const Image pixels = gimp::read_rgb(source.drawable, c);
    RegionOutput out;
    if (classic) {
      progress.stage("Classic fill");
      out = classic_fill_region(pixels, selected, gen.seed, io);
    } else {
      out = inpaint_region(*pipeline, pixels, selected, rois[i], gen, io, progress, nullptr);
    }
    const Box overlap = intersect(c, mask_box);
    for (int64_t y = overlap.y; y < overlap.bottom(); ++y)
      for (int64_t x = overlap.x; x < overlap.right(); ++x) {
        const size_t j = size_t((y - c.y) * c.width + (x - c.x));
        const float a = out.alpha.values[j];
        if (a <= 0.0f) continue;
        float* p = &rgba[size_t((y - mask_box.y) * area.width + (x - mask_box.x)) * 4];
        for (int k = 0; k < 3; ++k) p[k] = out.rgb[j * 3 + k] / 255.0f;
        p[3] = std::min(1.0f, a);
      }
  }
  const std::string name = classic ? std::string("Inpaint: classic fill")
                                   : "Inpaint: " + (gen.prompt.empty() ? std::string("(no prompt)") : gen.prompt.substr(0, 60));
  const int32_t layer_id = gimp::add_layer(image, drawable, name, area, rgba);
  gimp::progress_fraction(1.0);
  if (!loras.empty() && !lora_cached) {  // the next run with these LoRAs skips their cost per step
    gimp::progress_start("Keeping the LoRA merged for the next run");
    try {
      write_lora_cache(*model, loras, {});
    } catch (const Error& e) {
      std::fprintf(stderr, "inpaint: LoRA cache not written: %s\n", e.what());
    }
  }
  return layer_id;
}

Outcome run_inpaint_selection(int32_t image, int32_t drawable, const Settings& settings) {
  try {
    return {Outcome::Done, inpaint_selection(image, drawable, settings), ""};
  } catch (const Cancelled&) {
    return {Outcome::Cancelled, -1, ""};
  } catch (const std::bad_alloc&) {
    return {Outcome::Failed, -1,
            "Inpaint ran out of memory: set a memory limit under Advanced, or a smaller working resolution."};
  } catch (const std::exception& e) {
    return {Outcome::Failed, -1, "Inpaint: " + gimp_message(e.what())};
  }
}

}  // namespace inpaint::plugin
