#include "engine/model_source.h"

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <regex>
#include <set>

#include "engine/error.h"
#include "engine/json_file.h"
#include "engine/model_presets.h"
#include "engine/schedulers/scheduler.h"
#include "models/config.h"
#include "models/clip_text.h"
#include "models/unet.h"
#include "models/vae.h"

namespace fs = std::filesystem;

namespace inpaint {
namespace {

bool is_text_encoder(const std::string& component) {
  return component == "text_encoder" || component == "text_encoder_2";
}


// Picks the weights file of a component folder: "<stem>.safetensors" or its fp16 variant.
fs::path pick_weights(const fs::path& dir, const std::string& stem, bool prefer_fp16) {
  const fs::path plain = dir / (stem + ".safetensors");
  const fs::path half = dir / (stem + ".fp16.safetensors");
  const bool has_plain = fs::exists(plain), has_half = fs::exists(half);
  if (has_half && (prefer_fp16 || !has_plain)) return half;
  if (has_plain) return plain;
  for (const char* pickle : {".bin", ".fp16.bin", ".ckpt"})
    if (fs::exists(dir / (stem + pickle))) refuse_pickle(dir / (stem + pickle));
  throw Error(dir.string() + ": no weights (" + plain.filename().string() + ")");
}

Component folder_component(const fs::path& root, const std::string& name, bool prefer_fp16) {
  const fs::path dir = root / name;
  if (!fs::is_directory(dir)) throw Error(root.string() + ": missing the '" + name + "' folder");
  Component c;
  c.name = name;
  c.config_label = (dir / "config.json").string();
  if (!fs::exists(dir / "config.json")) throw Error(c.config_label + ": missing");
  c.config = read_json_file(dir / "config.json");
  const fs::path weights =
      pick_weights(dir, is_text_encoder(name) ? "model" : "diffusion_pytorch_model", prefer_fp16);
  c.files.push_back(weights.string());
  c.tensors = tensors_of(SafetensorsFile::open(weights));
  // transformers 4.30 saves the position_ids buffer with the text encoder: not a weight.
  c.tensors.erase("text_model.embeddings.position_ids");
  return c;
}

// Every config checked as the networks and the scheduler will read it, before anything
// else looks at it: a bad value fails here naming the file and the key.
void validate_configs(const ModelSource& m, const std::string& scheduler_label) {
  for (const auto& [name, c] : m.components) {
    if (!c.config.is_object()) throw Error(c.config_label + ": not a JSON object");
    if (name == "unet") UNetConfig::from_json(c.config, c.config_label);
    else if (name == "vae") VaeConfig::from_json(c.config, c.config_label);
    else if (is_text_encoder(name)) ClipTextConfig::from_json(c.config, c.config_label);
  }
  if (!m.scheduler_config.is_object()) throw Error(scheduler_label + ": not a JSON object");
  try {
    ConfigReader{m.scheduler_config, scheduler_label}.string("_class_name", "");
    make_scheduler("", m.scheduler_config);
  } catch (const Error& e) {
    throw Error(scheduler_label + ": " + e.what());
  }
}

void check_tokenizer_dir(const fs::path& dir, const std::string& model) {
  for (const char* f : {"vocab.json", "merges.txt"})
    if (!fs::exists(dir / f))
      throw Error(model + ": missing tokenizer file " + (dir / f).string());
}

// ---- single-file checkpoints -------------------------------------------------------

// Callers keep copies: a reference to the result, with temporaries among the arguments,
// is what GCC 14's -Wdangling-reference takes for a dangling one.
const TensorInfo& need(const SafetensorsFile& f, const std::string& name, const std::string& why) {
  const TensorInfo* t = f.find(name);
  if (!t) throw Error(f.label() + ": not a Stable Diffusion checkpoint (" + why + ": no tensor '" + name + "')");
  return *t;
}

int64_t count_indexed(const SafetensorsFile& f, const std::string& prefix) {
  std::set<int64_t> seen;
  for (const auto& t : f.tensors())
    if (t.name.rfind(prefix, 0) == 0) seen.insert(std::atoll(t.name.c_str() + prefix.size()));
  return static_cast<int64_t>(seen.size());
}

nlohmann::json single_file_unet_config(const SafetensorsFile& f, Family family) {
  const std::string p = "model.diffusion_model.";
  const TensorInfo conv_in = need(f, p + "input_blocks.0.0.weight", "UNet");
  const TensorInfo conv_out = need(f, p + "out.2.weight", "UNet");
  // Levels: conv_in, then per level two resnets (each with its transformer, if any) and
  // a downsampler, none after the last: SD 12 input blocks (4 levels), SDXL 9 (3).
  const int64_t levels = count_indexed(f, p + "input_blocks.") / 3;
  if (levels < 1 || levels > int64_t(kMaxLevels))
    throw Error(f.label() + ": not a Stable Diffusion checkpoint (UNet of " + std::to_string(levels) + " levels)");
  std::vector<int64_t> channels, depths;
  std::vector<std::string> down, up;
  int64_t context = 0;
  bool linear = false;
  for (int64_t level = 0; level < levels; ++level) {
    const std::string block = p + "input_blocks." + std::to_string(1 + 3 * level) + ".";
    channels.push_back(need(f, block + "0.out_layers.3.weight", "UNet").shape[0]);  // its first resnet's out-conv
    const int64_t depth = count_indexed(f, block + "1.transformer_blocks.");
    down.push_back(depth > 0 ? "CrossAttnDownBlock2D" : "DownBlock2D");
    up.insert(up.begin(), depth > 0 ? "CrossAttnUpBlock2D" : "UpBlock2D");
    depths.push_back(depth > 0 ? depth : level == levels - 1 ? count_indexed(f, p + "middle_block.1.transformer_blocks.") : 1);
    if (depth > 0 && context == 0) {
      context = need(f, block + "1.transformer_blocks.0.attn2.to_k.weight", "UNet").shape[1];
      linear = need(f, block + "1.proj_in.weight", "UNet").shape.size() == 2;
    }
  }
  if (context == 0) throw Error(f.label() + ": not a Stable Diffusion checkpoint (a UNet without cross-attention)");
  // Head counts are not in the weights: SD 1.x has 8 heads, SD 2.x and SDXL heads of 64 channels.
  nlohmann::json heads = 8;
  if (family != Family::SD1) {
    heads = nlohmann::json::array();
    for (int64_t c : channels) heads.push_back(c / 64);
  }
  nlohmann::json config = {{"_class_name", "UNet2DConditionModel"},
                           {"in_channels", conv_in.shape[1]},
                           {"out_channels", conv_out.shape[0]},
                           {"sample_size", family == Family::SDXL ? 128 : 64},
                           {"layers_per_block", 2},
                           {"block_out_channels", channels},
                           {"down_block_types", down},
                           {"up_block_types", up},
                           {"attention_head_dim", heads},
                           {"cross_attention_dim", context},
                           {"use_linear_projection", linear},
                           {"norm_num_groups", 32},
                           {"norm_eps", 1e-5},
                           {"flip_sin_to_cos", true},
                           {"freq_shift", 0}};
  if (std::any_of(depths.begin(), depths.end(), [](int64_t d) { return d != 1; }))
    config["transformer_layers_per_block"] = depths;
  // SDXL's added conditions: label_emb takes the pooled text embedding and the six size
  // conditions of 256 channels each (the width of those is not in the weights).
  if (const TensorInfo* label = f.find(p + "label_emb.0.0.weight"))
    config.update({{"addition_embed_type", "text_time"}, {"addition_time_embed_dim", 256},
                   {"projection_class_embeddings_input_dim", label->shape.at(1)}});
  return config;
}

nlohmann::json single_file_vae_config(const SafetensorsFile& f, Family family) {
  const TensorInfo conv_in = need(f, "first_stage_model.encoder.conv_in.weight", "VAE");
  const TensorInfo post = need(f, "first_stage_model.post_quant_conv.weight", "VAE");
  std::vector<int64_t> channels;
  for (int level = 0; level < 4; ++level)
    channels.push_back(need(f, "first_stage_model.encoder.down." + std::to_string(level) +
                                   ".block.0.conv2.weight", "VAE").shape[0]);
  const std::vector<std::string> down(4, "DownEncoderBlock2D"), up(4, "UpDecoderBlock2D");
  return {{"_class_name", "AutoencoderKL"},
          {"in_channels", conv_in.shape[1]},
          {"out_channels", 3},
          {"latent_channels", post.shape[0]},
          {"layers_per_block", 2},
          {"block_out_channels", channels},
          {"down_block_types", down},
          {"up_block_types", up},
          {"norm_num_groups", 32},
          {"sample_size", family == Family::SDXL ? 1024 : 512},
          {"scaling_factor", family == Family::SDXL ? 0.13025 : 0.18215}};
}

// An OpenCLIP text encoder under `p`: SD 2's (its last layer unused) or SDXL's bigG (all
// layers, and the projection of the pooled output).
nlohmann::json openclip_text_config(const SafetensorsFile& f, const std::string& p, bool drop_last_layer, bool projection) {
  const TensorInfo tok = need(f, p + "token_embedding.weight", "OpenCLIP text encoder");
  const TensorInfo pos = need(f, p + "positional_embedding", "OpenCLIP text encoder");
  const TensorInfo fc = need(f, p + "transformer.resblocks.0.mlp.c_fc.weight", "OpenCLIP text encoder");
  const int64_t layers = count_indexed(f, p + "transformer.resblocks.") - (drop_last_layer ? 1 : 0);
  nlohmann::json c = {{"architectures", {"CLIPTextModel"}}, {"layer_norm_eps", 1e-5},
                      {"vocab_size", tok.shape[0]}, {"hidden_size", tok.shape[1]},
                      {"max_position_embeddings", pos.shape[0]}, {"intermediate_size", fc.shape[0]},
                      {"num_hidden_layers", layers}, {"num_attention_heads", tok.shape[1] / 64},
                      {"hidden_act", "gelu"}};
  if (projection)
    c.update({{"architectures", {"CLIPTextModelWithProjection"}},
              {"projection_dim", need(f, p + "text_projection", "OpenCLIP text encoder").shape.at(1)}});
  return c;
}

// OpenAI's CLIP as transformers stores it, under `p` (SD 1.x, SDXL's first encoder).
nlohmann::json clip_text_config(const SafetensorsFile& f, const std::map<std::string, const TensorInfo*>& by_name,
                                const std::string& p) {
  auto get = [&](const std::string& name) {
    auto it = by_name.find(p + name);
    if (it == by_name.end()) need(f, p + name, "CLIP text encoder");  // throws, naming it
    return *it->second;
  };
  const TensorInfo tok = get("embeddings.token_embedding.weight");
  const TensorInfo pos = get("embeddings.position_embedding.weight");
  const TensorInfo fc = get("encoder.layers.0.mlp.fc1.weight");
  int64_t layers = 0;
  while (by_name.count(p + "encoder.layers." + std::to_string(layers) + ".mlp.fc1.weight")) ++layers;
  return {{"architectures", {"CLIPTextModel"}}, {"layer_norm_eps", 1e-5},
          {"vocab_size", tok.shape[0]}, {"hidden_size", tok.shape[1]},
          {"max_position_embeddings", pos.shape[0]}, {"intermediate_size", fc.shape[0]},
          {"num_hidden_layers", layers}, {"num_attention_heads", tok.shape[1] / 64}, {"hidden_act", "quick_gelu"}};
}

// Tensors outside the three networks, or parts of them the pipeline does not use.
bool ignorable(const std::string& key, Family family, int64_t text_layers) {
  for (const char* prefix : {"model.diffusion_model.", "first_stage_model.", "cond_stage_model.", "conditioner."})
    if (key.rfind(prefix, 0) == 0) {
      if (key == "cond_stage_model.transformer.text_model.embeddings.position_ids" ||
          key == "cond_stage_model.model.text_projection" ||
          key == "cond_stage_model.model.logit_scale" ||
          key.rfind("cond_stage_model.model.visual.", 0) == 0 ||
          key == "conditioner.embedders.0.transformer.text_model.embeddings.position_ids" ||
          key == "conditioner.embedders.1.model.logit_scale")
        return true;
      static const std::regex layer(R"(cond_stage_model\.model\.transformer\.resblocks\.(\d+)\..*)");
      std::smatch m;
      if (family == Family::SD2 && std::regex_match(key, m, layer))
        return std::stoll(m[1]) >= text_layers;
      return false;
    }
  return true;  // EMA copies, noise-schedule buffers, ...
}

ModelSource open_single_file(const fs::path& path, const OpenOptions& options) {
  auto file = SafetensorsFile::open(path);
  // Older text-encoder layouts omit "text_model.": read them as the current one.
  std::map<std::string, const TensorInfo*> by_name;
  for (const auto& t : file->tensors()) {
    std::string name = t.name;
    const std::string old = "cond_stage_model.transformer.";
    if (name.rfind(old, 0) == 0 && name.rfind(old + "text_model.", 0) != 0)
      name = old + "text_model." + name.substr(old.size());
    by_name[name] = &t;
  }

  ModelSource m;
  m.path = path;
  m.single_file = true;
  const bool sgm = file->find("conditioner.embedders.0.transformer.text_model.embeddings.token_embedding.weight") &&
                   file->find("conditioner.embedders.1.model.token_embedding.weight");
  if (sgm)
    m.family = Family::SDXL;
  else if (file->find("cond_stage_model.model.token_embedding.weight"))
    m.family = Family::SD2;
  else if (by_name.count("cond_stage_model.transformer.text_model.embeddings.token_embedding.weight"))
    m.family = Family::SD1;
  else if (file->find("conditioner.embedders.0.model.token_embedding.weight"))
    throw Error(path.string() + ": an SDXL refiner (one OpenCLIP text encoder): not supported, use an SDXL base or inpainting model");
  else
    throw Error(path.string() + ": not a Stable Diffusion 1.x, 2.x or SDXL checkpoint (no CLIP or OpenCLIP text encoder found)");

  std::map<std::string, nlohmann::json> configs = {{"unet", single_file_unet_config(*file, m.family)},
                                                   {"vae", single_file_vae_config(*file, m.family)}};
  if (m.family == Family::SDXL) {
    configs["text_encoder"] = clip_text_config(*file, by_name, "conditioner.embedders.0.transformer.text_model.");
    configs["text_encoder_2"] = openclip_text_config(*file, "conditioner.embedders.1.model.", false, true);
  } else if (m.family == Family::SD2) {
    // SD 2 uses the penultimate layer: the single file's last layer is dropped.
    configs["text_encoder"] = openclip_text_config(*file, "cond_stage_model.model.", true, false);
  } else {
    configs["text_encoder"] = clip_text_config(*file, by_name, "cond_stage_model.transformer.text_model.");
  }
  // Our generator records the exact configs (group counts, head sizes: not in the
  // weights) in the metadata; they win over what the shapes suggest.
  for (auto& [name, config] : configs) {
    auto it = file->metadata().find(name + "_config");
    if (it == file->metadata().end()) continue;
    try {
      config = nlohmann::json::parse(it->second);
    } catch (const nlohmann::json::exception& e) {
      throw Error(path.string() + ": __metadata__ " + name + "_config is not valid JSON");
    }
  }
  const CheckpointLayout layout = checkpoint_layout(m.family, configs["unet"], configs["vae"]);
  std::set<std::string> used;
  const std::vector<std::string> components = component_names(m.family);
  for (const std::string& name : components) {
    Component c;
    c.name = name;
    c.config = configs[name];
    c.config_label = path.string() + " (" + name + " config derived from tensor shapes)";
    c.files.push_back(path.string());
    for (const ParamSpec& spec : declared_params(name, c.config)) {
      const OriginalKey key = original_key(name, spec.name, layout);
      auto it = by_name.find(key.name);
      if (it == by_name.end()) continue;  // reported as missing when the network loads
      used.insert(key.name);
      const TensorInfo* t = it->second;
      TensorRef ref{file, t, t->shape, 0};
      if (key.parts > 1 && !t->shape.empty() && t->shape[0] % key.parts == 0) {
        ref.shape[0] /= key.parts;
        ref.byte_offset = static_cast<uint64_t>(key.part) * (t->nbytes() / key.parts);
      }
      if (key.conv1x1 && ref.shape.size() == 4 && ref.shape[2] == 1 && ref.shape[3] == 1)
        ref.shape.resize(2);
      if (key.transposed && ref.shape.size() == 2) {
        ref.shape = {ref.shape[1], ref.shape[0]};
        ref.transposed = true;
      }
      c.tensors[spec.name] = ref;
    }
    m.components[name] = std::move(c);
  }
  const int64_t text_layers = configs["text_encoder"]["num_hidden_layers"].get<int64_t>();
  for (const auto& [name, t] : by_name) {
    if (used.count(name)) continue;
    if (ignorable(name, m.family, text_layers)) {
      m.ignored.push_back(t->name);
      continue;
    }
    for (const std::string& comp : components)
      if (name.rfind(checkpoint_prefix(comp, m.family), 0) == 0)
        m.components[comp].unexpected.push_back(t->name);
  }
  m.scheduler_config = default_scheduler_config(m.family);
  validate_configs(m, path.string() + " (scheduler config)");
  m.tokenizer_pad = tokenizer_pad(m.family);
  m.force_zeros_for_empty_prompt = m.family == Family::SDXL;  // diffusers' SDXL pipelines' default

  // A single file carries no tokenizer: take it from the option, beside the file, from
  // the user's data folder, or the one shipped with the program (every SD family's; SDXL's
  // second tokenizer is the same vocabulary padded with "!").
  m.tokenizer_dir = find_tokenizer_dir(options.tokenizer_dir, path.parent_path() / "tokenizer",
                                       path.string() + ": missing tokenizer: a single-file checkpoint has none");
  if (m.family == Family::SDXL) {
    m.tokenizer_2_dir = m.tokenizer_dir;
    m.tokenizer_2_pad = tokenizer_pad(m.family, /*second=*/true);
  }
  return m;
}

ModelSource open_folder(const fs::path& path, const OpenOptions& options) {
  if (!fs::exists(path / "model_index.json")) {
    if (fs::is_empty(path)) throw Error(path.string() + ": empty folder, not a model");
    throw Error(path.string() + ": not a diffusers model folder (no model_index.json)");
  }
  const nlohmann::json index = read_json_file(path / "model_index.json");
  if (!index.is_object()) throw Error((path / "model_index.json").string() + ": not an object");
  const ConfigReader pipeline{index, (path / "model_index.json").string()};
  ModelSource m;
  m.path = path;
  for (const char* name : {"unet", "vae", "text_encoder"})
    m.components[name] = folder_component(path, name, options.prefer_fp16);
  // SDXL: a second text encoder and tokenizer, listed in model_index.json.
  const bool two_encoders = pipeline.has("text_encoder_2");
  if (two_encoders) m.components["text_encoder_2"] = folder_component(path, "text_encoder_2", options.prefer_fp16);
  const fs::path sched = path / "scheduler" / "scheduler_config.json";
  if (!fs::exists(sched)) throw Error(sched.string() + ": missing");
  m.scheduler_config = read_json_file(sched);
  validate_configs(m, sched.string());
  std::vector<std::pair<fs::path*, std::string>> tokenizers = {{&m.tokenizer_dir, "tokenizer"}};
  if (two_encoders) tokenizers.emplace_back(&m.tokenizer_2_dir, "tokenizer_2");
  for (const auto& [dir, name] : tokenizers) {
    *dir = path / name;
    if (!fs::is_directory(*dir)) throw Error(path.string() + ": missing tokenizer (no '" + name + "' folder)");
    check_tokenizer_dir(*dir, path.string());
  }
  const bool text_time = m.components["unet"].config.value("addition_embed_type", nlohmann::json()) == "text_time";
  if (two_encoders != text_time)
    throw Error(path.string() + ": " + (text_time ? "the UNet takes SDXL's added conditions but there is no text_encoder_2"
                                                  : "a text_encoder_2 but the UNet takes no SDXL conditions (addition_embed_type)"));
  if (pipeline.boolean("requires_aesthetics_score", false))
    pipeline.bad("requires_aesthetics_score", "true (SDXL refiner models) is not supported");
  m.force_zeros_for_empty_prompt = pipeline.boolean("force_zeros_for_empty_prompt", two_encoders);
  // OpenCLIP (SD 2.x) text encoders use gelu; OpenAI CLIP (SD 1.x) quick_gelu.
  const auto& te = m.components["text_encoder"].config;
  m.family = two_encoders ? Family::SDXL : te.value("hidden_act", "quick_gelu") == "gelu" ? Family::SD2 : Family::SD1;
  return m;
}

}  // namespace

std::vector<fs::path> shipped_tokenizer_dirs() {
  std::vector<fs::path> dirs;
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    dirs.push_back(exe.parent_path() / "clip");                                // the GIMP plug-in's folder
    dirs.push_back(exe.parent_path().parent_path() / "share/inpaint/clip");  // meson install
  }
  dirs.push_back(fs::path(INPAINT_SOURCE_ROOT) / "share/clip");  // a build folder's source tree
  return dirs;
}

fs::path find_tokenizer_dir(const fs::path& given, const fs::path& beside, const std::string& what) {
  std::vector<fs::path> candidates;
  if (!given.empty()) candidates.push_back(given);
  if (const char* env = std::getenv("INPAINT_TOKENIZER")) candidates.emplace_back(env);
  if (!beside.empty()) candidates.push_back(beside);
  const char* xdg = std::getenv("XDG_DATA_HOME");
  const char* home = std::getenv("HOME");
  if (xdg && *xdg) candidates.push_back(fs::path(xdg) / "inpaint" / "tokenizer");
  else if (home) candidates.push_back(fs::path(home) / ".local/share/inpaint/tokenizer");
  for (const fs::path& dir : shipped_tokenizer_dirs()) candidates.push_back(dir);
  for (const auto& dir : candidates)
    if (fs::exists(dir / "vocab.json") && fs::exists(dir / "merges.txt")) return dir;
  std::string tried;
  for (const auto& d : candidates) tried += "\n  " + d.string();
  throw Error(what + ", and no vocab.json + merges.txt was found in:" + tried +
              "\nPass --tokenizer DIR or set INPAINT_TOKENIZER.");
}

void refuse_pickle(const fs::path& path) {
  throw Error(path.string() + ": a pickle checkpoint (.ckpt/.pt/.pth/.bin) can run arbitrary code "
              "when opened, so inpaint does not read it. Convert it once to .safetensors, e.g.\n"
              "  python3 -c \"import torch, safetensors.torch as s; d = torch.load('IN', "
              "map_location='cpu', weights_only=True); d = d.get('state_dict', d); "
              "s.save_file({k: v.contiguous() for k, v in d.items() if torch.is_tensor(v)}, "
              "'OUT.safetensors')\"");
}

ModelSource ModelSource::open(const fs::path& path, const OpenOptions& options) {
  std::error_code ec;
  const auto status = fs::status(path, ec);
  if (!fs::exists(status)) throw Error(path.string() + ": no such file or folder");
  if (fs::is_directory(status)) return open_folder(path, options);
  if (!fs::is_regular_file(status)) throw Error(path.string() + ": not a regular file (a FIFO, device or socket)");
  const std::string ext = path.extension().string();
  for (const char* pickle : {".ckpt", ".pt", ".pth", ".bin", ".pkl"})
    if (ext == pickle) refuse_pickle(path);
  // A safetensors file has a JSON header at byte 8; anything else that looks like
  // torch.save output (a zip archive, or a pickle protocol opcode) is a pickle.
  std::ifstream in(path, std::ios::binary);
  unsigned char head[9] = {0};
  in.read(reinterpret_cast<char*>(head), 9);
  const bool zip = head[0] == 'P' && head[1] == 'K';
  const bool pickle = head[0] == 0x80 && head[1] >= 2 && head[1] <= 5;
  if ((zip || pickle) && head[8] != '{') refuse_pickle(path);
  return open_single_file(path, options);
}

const Component& ModelSource::component(const std::string& name) const {
  auto it = components.find(name);
  if (it == components.end()) throw Error(path.string() + ": no " + name);
  return it->second;
}

int64_t ModelSource::unet_in_channels() const {
  return component("unet").config.value("in_channels", 4);
}

std::string ModelSource::architecture() const {
  std::string s = family == Family::SDXL ? "SDXL" : family == Family::SD2 ? "SD 2.x" : "SD 1.x";
  const int64_t in = unet_in_channels();
  s += in == 9 ? " inpainting (9-channel UNet)"
               : " text-to-image (" + std::to_string(in) + "-channel UNet, masked-latent blending)";
  return s;
}

void declare_network(const std::string& component, const nlohmann::json& config,
                     const std::string& label, ParamLoader& p) {
  if (component == "unet")
    UNet(UNetConfig::from_json(config, label), p);
  else if (component == "vae")
    AutoencoderKL(VaeConfig::from_json(config, label), p);
  else if (is_text_encoder(component))
    ClipTextModel(ClipTextConfig::from_json(config, label), p);
  else
    throw Error("unknown component '" + component + "'");
}

std::vector<ParamSpec> declared_params(const std::string& component, const nlohmann::json& config) {
  ParamLoader p(component);
  declare_network(component, config, component + " config", p);
  return p.specs();
}

CheckpointLayout checkpoint_layout(Family family, const nlohmann::json& unet_config,
                                   const nlohmann::json& vae_config) {
  CheckpointLayout l;
  l.family = family;
  const UNetConfig u = UNetConfig::from_json(unet_config, "unet config");
  l.layers_per_block = static_cast<int>(u.layers_per_block);
  for (const auto& t : u.up_block_types) l.up_block_has_attention.push_back(t == "CrossAttnUpBlock2D");
  l.vae_levels = static_cast<int>(VaeConfig::from_json(vae_config, "vae config").block_out_channels.size());
  return l;
}

}  // namespace inpaint
