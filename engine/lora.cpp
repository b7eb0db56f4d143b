#include "engine/lora.h"

#include <cmath>
#include <cstdlib>

#include "engine/error.h"

namespace fs = std::filesystem;

namespace inpaint {
namespace {

struct Target {
  std::string component, weight;  // the parameter the LoRA adapts
};

struct Factors {
  at::Tensor down, up, alpha;
};

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

std::string underscored(std::string s) {
  for (char& c : s)
    if (c == '.') c = '_';
  return s;
}

// Every linear/convolution weight of the UNet and the text encoder under the names LoRA
// files use for its module: "unet.down_blocks.0...to_q" and "lora_unet_down_blocks_0_..._to_q".
std::map<std::string, Target> lora_targets(const ModelSource& m) {
  std::map<std::string, Target> t;
  // SDXL's kohya files number the text encoders (lora_te1_, lora_te2_).
  std::vector<std::pair<std::string, std::string>> components = {{"unet", "lora_unet_"}, {"text_encoder", "lora_te_"}};
  if (m.has("text_encoder_2")) components = {{"unet", "lora_unet_"}, {"text_encoder", "lora_te1_"}, {"text_encoder_2", "lora_te2_"}};
  for (const auto& [component, kohya] : components) {
    for (const ParamSpec& s : declared_params(component, m.component(component).config)) {
      if (!s.matrix) continue;
      const std::string module = s.name.substr(0, s.name.size() - std::string(".weight").size());
      t[component + "." + module] = {component, s.name};
      t[kohya + underscored(module)] = {component, s.name};
    }
  }
  return t;
}

// A LoRA tensor name as (module key, part): part is "down", "up" or "alpha"; empty
// when the name is not a LoRA factor.
std::pair<std::string, std::string> split_key(const std::string& name) {
  static const std::vector<std::pair<std::string, std::string>> suffixes = {
      {".lora_down.weight", "down"}, {".lora_up.weight", "up"}, {".lora_A.weight", "down"},
      {".lora_B.weight", "up"},      {".lora.down.weight", "down"}, {".lora.up.weight", "up"},
      {".down.weight", "down"},      {".up.weight", "up"},          {".alpha", "alpha"}};
  for (const auto& [suffix, part] : suffixes) {
    if (!ends_with(name, suffix)) continue;
    std::string key = name.substr(0, name.size() - suffix.size());
    // The attention-processor layout: "...attn1.processor.to_q_lora" is "...attn1.to_q".
    const size_t p = key.find(".processor.");
    if (p != std::string::npos && ends_with(key, "_lora")) {
      std::string proj = key.substr(p + 11, key.size() - p - 11 - 5);
      key = key.substr(0, p) + "." + (proj == "to_out" ? "to_out.0" : proj);
    }
    return {key, part};
  }
  return {};
}

}  // namespace

LoraSpec parse_lora_spec(const std::string& text) {
  LoraSpec spec{text, 1.0};
  const size_t colon = text.rfind(':');
  if (colon != std::string::npos && colon + 1 < text.size() && !fs::exists(text)) {
    char* end = nullptr;
    const std::string number = text.substr(colon + 1);
    const double v = std::strtod(number.c_str(), &end);
    if (!end || *end || !std::isfinite(v)) throw Error("--lora " + text + ": the scale after ':' must be a number");
    // LoRAs are made for scales about 1: far beyond, the weights overflow to Inf.
    if (std::abs(v) > 100) throw Error("--lora " + text + ": the scale after ':' must lie in [-100, 100]");
    spec = {text.substr(0, colon), v};
  }
  return spec;
}

LoraReport apply_lora(ModelSource& model, const LoraSpec& lora) {
  const auto file = SafetensorsFile::open(lora.file);  // throws naming a bad file
  std::map<std::string, Factors> groups;
  for (const auto& [name, ref] : tensors_of(file)) {
    const auto [key, part] = split_key(name);
    if (key.empty()) continue;
    at::Tensor t = view_of(ref).to(at::kFloat);
    Factors& f = groups[key];
    (part == "down" ? f.down : part == "up" ? f.up : f.alpha) = t;
  }
  const auto targets = lora_targets(model);
  LoraReport report;
  for (const auto& [key, f] : groups) {
    const auto target = targets.find(key);
    if (target == targets.end() || !f.down.defined() || !f.up.defined()) {
      report.ignored.push_back(key);
      continue;
    }
    Component& c = model.components.at(target->second.component);
    const std::string& weight = target->second.weight;
    const std::vector<int64_t>& shape = c.tensors.at(weight).shape;
    const int64_t rank = f.down.size(0), out = shape[0], in = c.tensors.at(weight).numel() / out;
    if (f.up.dim() < 2 || f.up.size(1) != rank || f.up.size(0) != out || f.down.numel() != rank * in)
      throw Error(lora.file.string() + ": " + key + " has shapes " + shape_str(f.down.sizes().vec()) + " and " +
                  shape_str(f.up.sizes().vec()) + ", which do not fit " + weight + " " + shape_str(shape) +
                  " (a LoRA for another model?)");
    const double alpha = f.alpha.defined() ? f.alpha.item<double>() : double(rank);
    const at::Tensor up = f.up.reshape({out, rank}) * (lora.scale * alpha / double(rank));
    const at::Tensor down = f.down.reshape({rank, in}).contiguous();
    LoraFactors& have = c.loras[weight];
    have = have.defined() ? LoraFactors{at::cat({have.up, up}, 1), at::cat({have.down, down}, 0)}
                          : LoraFactors{up.contiguous(), down};
    ++report.layers;
  }
  if (report.layers == 0)
    throw Error(lora.file.string() + ": none of its " + std::to_string(groups.size()) +
                " LoRA layers adapts this model's UNet or text encoder (not a LoRA, or one for another "
                "architecture such as SDXL)");
  return report;
}

at::Tensor merged_weight(const TensorRef& ref, const LoraFactors& lora) {
  const at::Tensor w = view_of(ref).to(at::kFloat, false, /*copy=*/true);
  w.view({w.size(0), -1}).addmm_(lora.up, lora.down);
  return w.to(scalar_type_of(ref.info->dtype));
}

}  // namespace inpaint
