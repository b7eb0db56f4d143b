#include "engine/model_generator.h"

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>

#include "engine/error.h"
#include "engine/model_presets.h"
#include "engine/model_folder.h"
#include "engine/model_source.h"
#include "engine/own_files.h"

namespace fs = std::filesystem;

namespace inpaint {
namespace {

uint64_t fnv1a(const std::string& s, uint64_t seed) {
  uint64_t h = 1469598103934665603ull ^ seed;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

bool is_norm(const std::string& module) {
  return module.find("norm") != std::string::npos || module.rfind("ln_", 0) == 0;
}

void generate_folder(const ModelPreset& preset, const GenerateOptions& o,
                     const fs::path& tokenizer,
                     const std::function<void(const std::string&)>& progress) {
  const fs::path tmp = fresh_partial(o.out);
  for (const std::string& name : component_names(preset.family)) {
    const nlohmann::json& config = preset.config(name);
    fs::create_directories(tmp / name);
    write_json(tmp / name / "config.json", config);
    std::vector<Pending> tensors;
    for (const ParamSpec& s : declared_params(name, config))
      tensors.push_back({{s.name, o.dtype, s.shape},
                         [s, &o] { return in_dtype(random_parameter(s.name, s.shape, o.seed), o.dtype); }});
    const std::string file = weights_file_name(name);
    write_tensors(tmp / name / file, tensors, {{"format", "pt"}}, progress);
  }
  fs::create_directories(tmp / "scheduler");
  write_json(tmp / "scheduler" / "scheduler_config.json", preset.scheduler);
  write_tokenizer(tmp / "tokenizer", tokenizer, tokenizer_pad(preset.family));
  if (preset.family == Family::SDXL) write_tokenizer(tmp / "tokenizer_2", tokenizer, tokenizer_pad(preset.family, true));
  write_json(tmp / "model_index.json", model_index_json(preset.unet["in_channels"] == 9, preset.family));
  put_in_place(tmp, o.out);
}

// The tensors of a single-file checkpoint, sorted by name, with how to make each.
std::vector<Pending> single_file_tensors(const ModelPreset& preset, const GenerateOptions& o) {
  const CheckpointLayout layout = checkpoint_layout(preset.family, preset.unet, preset.vae);
  // Original key -> the parameters it is made of, in part order.
  std::map<std::string, std::vector<std::pair<OriginalKey, ParamSpec>>> groups;
  for (const std::string& name : component_names(preset.family)) {
    const nlohmann::json& config = preset.config(name);
    for (const ParamSpec& s : declared_params(name, config)) {
      const OriginalKey key = original_key(name, s.name, layout);
      groups[key.name].push_back({key, s});
    }
  }
  std::vector<Pending> tensors;
  for (auto& [name, parts] : groups) {
    std::sort(parts.begin(), parts.end(),
              [](const auto& a, const auto& b) { return a.first.part < b.first.part; });
    std::vector<int64_t> shape = parts[0].second.shape;
    shape[0] *= static_cast<int64_t>(parts.size());
    if (parts[0].first.conv1x1) shape.insert(shape.end(), {1, 1});
    const bool transposed = parts[0].first.transposed;
    if (transposed) std::reverse(shape.begin(), shape.end());
    tensors.push_back({{name, o.dtype, shape}, [parts, shape, transposed, &o] {
                         std::vector<at::Tensor> values;
                         for (const auto& [key, s] : parts)
                           values.push_back(random_parameter(s.name, s.shape, o.seed));
                         const at::Tensor value = at::cat(values, 0);
                         return in_dtype(transposed ? value.t() : value.reshape(shape), o.dtype);
                       }});
  }
  // What real checkpoints also carry: buffers, and for SD 2 the text layer it skips.
  tensors.push_back({{"alphas_cumprod", DType::F32, {1000}},
                     [] { return at::linspace(0.999, 0.005, 1000); }});
  if (preset.family != Family::SD2) {
    const std::string clip = preset.family == Family::SD1 ? "cond_stage_model.transformer." : "conditioner.embedders.0.transformer.";
    tensors.push_back({{clip + "text_model.embeddings.position_ids", DType::I64, {1, 77}},
                       [] { return at::arange(77, at::kLong).unsqueeze(0); }});
    if (preset.family == Family::SDXL)
      tensors.push_back({{"conditioner.embedders.1.model.logit_scale", DType::F32, {}},
                         [] { return at::full({}, 4.6052, at::kFloat); }});
  } else {
    const int64_t layers = preset.text_encoder["num_hidden_layers"].get<int64_t>();
    const int64_t d = preset.text_encoder["hidden_size"].get<int64_t>();
    const std::string base = "cond_stage_model.model.transformer.resblocks." + std::to_string(layers);
    for (const auto& [suffix, shape] : std::vector<std::pair<std::string, std::vector<int64_t>>>{
             {".ln_1.weight", {d}}, {".ln_1.bias", {d}}, {".attn.in_proj_weight", {3 * d, d}},
             {".attn.in_proj_bias", {3 * d}}, {".attn.out_proj.weight", {d, d}},
             {".attn.out_proj.bias", {d}}, {".ln_2.weight", {d}}, {".ln_2.bias", {d}},
             {".mlp.c_fc.weight", {4 * d, d}}, {".mlp.c_fc.bias", {4 * d}},
             {".mlp.c_proj.weight", {d, 4 * d}}, {".mlp.c_proj.bias", {d}}})
      tensors.push_back({{base + suffix, o.dtype, shape}, [n = base + suffix, shape = shape, &o] {
                           return in_dtype(random_parameter(n, shape, o.seed), o.dtype);
                         }});
    tensors.push_back({{"cond_stage_model.model.text_projection", o.dtype, {d, d}}, [d = d, &o] {
                         return in_dtype(random_parameter("text_projection", {d, d}, o.seed), o.dtype);
                       }});
  }
  std::sort(tensors.begin(), tensors.end(),
            [](const Pending& a, const Pending& b) { return a.entry.name < b.entry.name; });
  return tensors;
}

void generate_single_file(const ModelPreset& preset, const GenerateOptions& o,
                          const fs::path& tokenizer,
                          const std::function<void(const std::string&)>& progress) {
  const std::vector<Pending> tensors = single_file_tensors(preset, o);
  if (o.out.has_parent_path()) fs::create_directories(o.out.parent_path());
  const fs::path tmp = fresh_partial(o.out);
  std::map<std::string, std::string> metadata = {{"format", "pt"}, {"generator", "inpaint gen-model"},
                                                 {"preset", preset.name}, {"seed", std::to_string(o.seed)}};
  for (const std::string& name : component_names(preset.family)) metadata[name + "_config"] = preset.config(name).dump();
  write_tensors(tmp, tensors, metadata, progress);
  put_in_place(tmp, o.out);
  // Beside the file, for the loader to find; a tokenizer folder already there (the
  // user's, or an earlier run's) is left as it is.
  const fs::path tok = o.out.parent_path() / "tokenizer";
  std::error_code ec;
  if (!fs::exists(fs::symlink_status(tok, ec))) write_tokenizer(tok, tokenizer, tokenizer_pad(preset.family));
}

}  // namespace

at::Tensor random_parameter(const std::string& name, const std::vector<int64_t>& shape,
                            uint64_t seed) {
  at::Generator gen = at::detail::createCPUGenerator(fnv1a(name, seed));
  const size_t dot = name.rfind('.');
  const std::string last = dot == std::string::npos ? name : name.substr(dot + 1);
  const std::string head = dot == std::string::npos ? "" : name.substr(0, dot);
  const std::string module = head.substr(head.rfind('.') == std::string::npos ? 0 : head.rfind('.') + 1);
  if (shape.size() <= 1) {
    if (last == "weight" && is_norm(module))  // norm scales about 1 +- 0.1
      return at::rand(shape, gen) * 0.2 + 0.9;
    return at::randn(shape, gen) * 0.02;
  }
  int64_t fan_in = 1;
  for (size_t i = 1; i < shape.size(); ++i) fan_in *= shape[i];
  return at::randn(shape, gen) / std::sqrt(static_cast<double>(fan_in));
}

std::vector<SafetensorsWriter::Entry> single_file_entries(const std::string& preset, DType dtype) {
  GenerateOptions o;
  o.dtype = dtype;
  std::vector<SafetensorsWriter::Entry> entries;
  for (const auto& t : single_file_tensors(model_preset(preset), o)) entries.push_back(t.entry);
  return entries;
}

void generate_model(const GenerateOptions& o,
                    const std::function<void(const std::string&)>& progress) {
  const ModelPreset& preset = model_preset(o.preset);
  if (o.dtype != DType::F32 && o.dtype != DType::F16 && o.dtype != DType::BF16)
    throw Error(std::string("gen-model: dtype ") + dtype_name(o.dtype) + " is not f32, f16 or bf16");
  const fs::path tokenizer = find_tokenizer_dir(o.tokenizer_dir, {}, "gen-model needs CLIP tokenizer files to copy");
  check_model_output(o.out, o.force, {tokenizer});
  try {
    if (o.single_file)
      generate_single_file(preset, o, tokenizer, progress);
    else
      generate_folder(preset, o, tokenizer, progress);
  } catch (...) {
    std::error_code ec;
    fs::remove_all(partial_name(o.out), ec);  // this process's own partial output
    throw;
  }
}

void generate_lora(const std::string& preset_name, int64_t rank, uint64_t seed, const fs::path& out) {
  const ModelPreset& preset = model_preset(preset_name);
  std::vector<Pending> tensors;
  for (const ParamSpec& s : declared_params("unet", preset.unet)) {
    if (!s.matrix) continue;
    std::string key = "lora_unet_" + s.name.substr(0, s.name.size() - 7);  // without ".weight"
    for (size_t i = 10; i < key.size(); ++i)
      if (key[i] == '.') key[i] = '_';
    std::vector<int64_t> down = s.shape, up = {s.shape[0], rank};
    down[0] = rank;
    if (s.shape.size() == 4) up.insert(up.end(), {1, 1});
    tensors.push_back({{key + ".alpha", DType::F16, {}}, [rank] { return at::full({}, double(rank), at::kHalf); }});
    tensors.push_back({{key + ".lora_down.weight", DType::F16, down},
                       [n = key + "d", down, seed] { return in_dtype(random_parameter(n, down, seed), DType::F16); }});
    tensors.push_back({{key + ".lora_up.weight", DType::F16, up},
                       [n = key + "u", up, seed] { return in_dtype(random_parameter(n, up, seed) * 0.01, DType::F16); }});
  }
  std::sort(tensors.begin(), tensors.end(), [](const Pending& a, const Pending& b) { return a.entry.name < b.entry.name; });
  check_model_output(out, /*force=*/true, {});  // replaces only a file inpaint wrote
  if (out.has_parent_path()) fs::create_directories(out.parent_path());
  write_tensors(out, tensors, {{"format", "pt"}, {"generator", "inpaint gen-lora"}, {"rank", std::to_string(rank)}}, {});
}

}  // namespace inpaint
