#include "engine/checkpoint_keys.h"

#include <regex>

#include "engine/error.h"

namespace inpaint {
namespace {

// Replaces a leading `from` by `to`; false if `s` does not start with `from`.
bool swap_prefix(std::string& s, const std::string& from, const std::string& to) {
  if (s.compare(0, from.size(), from) != 0) return false;
  s = to + s.substr(from.size());
  return true;
}

std::string resnet_unet(std::string rest) {
  for (const auto& [from, to] : std::vector<std::pair<std::string, std::string>>{
           {"norm1.", "in_layers.0."},
           {"conv1.", "in_layers.2."},
           {"time_emb_proj.", "emb_layers.1."},
           {"norm2.", "out_layers.0."},
           {"conv2.", "out_layers.3."},
           {"conv_shortcut.", "skip_connection."}})
    if (swap_prefix(rest, from, to)) return rest;
  throw Error("no checkpoint name for resnet parameter '" + rest + "'");
}

std::string unet_key(const std::string& name, const CheckpointLayout& l) {
  static const std::regex block(R"((down|up)_blocks\.(\d+)\.(resnets|attentions|downsamplers|upsamplers)\.(\d+)\.(.*))");
  static const std::regex mid(R"(mid_block\.(resnets|attentions)\.(\d+)\.(.*))");
  std::string s = name;
  if (swap_prefix(s, "conv_in.", "input_blocks.0.0.") ||
      swap_prefix(s, "time_embedding.linear_1.", "time_embed.0.") ||
      swap_prefix(s, "time_embedding.linear_2.", "time_embed.2.") ||
      swap_prefix(s, "add_embedding.linear_1.", "label_emb.0.0.") ||  // SDXL
      swap_prefix(s, "add_embedding.linear_2.", "label_emb.0.2.") ||
      swap_prefix(s, "conv_norm_out.", "out.0.") || swap_prefix(s, "conv_out.", "out.2."))
    return s;
  std::smatch m;
  const int per = l.layers_per_block + 1;  // original blocks per level
  if (std::regex_match(name, m, mid)) {
    const int j = std::stoi(m[2]);
    const int index = m[1] == "resnets" ? (j == 0 ? 0 : 2) : 1;
    const std::string rest = m[3];
    return "middle_block." + std::to_string(index) + "." +
           (m[1] == "resnets" ? resnet_unet(rest) : rest);
  }
  if (!std::regex_match(name, m, block)) throw Error("no checkpoint name for '" + name + "'");
  const bool down = m[1] == "down";
  const int b = std::stoi(m[2]), j = std::stoi(m[4]);
  const std::string kind = m[3], rest = m[5];
  if (down) {
    const int base = 1 + b * per;
    if (kind == "resnets") return "input_blocks." + std::to_string(base + j) + ".0." + resnet_unet(rest);
    if (kind == "attentions") return "input_blocks." + std::to_string(base + j) + ".1." + rest;
    return "input_blocks." + std::to_string(base + l.layers_per_block) + ".0.op." +
           rest.substr(rest.find('.') + 1);  // conv.weight -> weight
  }
  const int base = b * per;
  if (kind == "resnets") return "output_blocks." + std::to_string(base + j) + ".0." + resnet_unet(rest);
  if (kind == "attentions") return "output_blocks." + std::to_string(base + j) + ".1." + rest;
  const bool attn = b < static_cast<int>(l.up_block_has_attention.size()) &&
                    l.up_block_has_attention[b];
  return "output_blocks." + std::to_string(base + l.layers_per_block) + (attn ? ".2." : ".1.") + rest;
}

OriginalKey vae_key(const std::string& name, const CheckpointLayout& l) {
  static const std::regex level(R"((encoder\.down|decoder\.up)_blocks\.(\d+)\.(resnets|downsamplers|upsamplers)\.(\d+)\.(.*))");
  static const std::regex mid(R"((encoder|decoder)\.mid_block\.(resnets|attentions)\.(\d+)\.(.*))");
  std::string s = name;
  if (swap_prefix(s, "encoder.conv_norm_out.", "encoder.norm_out.") ||
      swap_prefix(s, "decoder.conv_norm_out.", "decoder.norm_out."))
    return {s};
  for (const char* same : {"encoder.conv_in.", "encoder.conv_out.", "decoder.conv_in.",
                           "decoder.conv_out.", "quant_conv.", "post_quant_conv."})
    if (name.rfind(same, 0) == 0) return {name};
  auto resnet = [](std::string rest) {
    swap_prefix(rest, "conv_shortcut.", "nin_shortcut.");
    return rest;
  };
  std::smatch m;
  if (std::regex_match(name, m, mid)) {
    const std::string part = m[1], rest = m[4];
    if (m[2] == "resnets")
      return {part + ".mid.block_" + std::to_string(std::stoi(m[3]) + 1) + "." + resnet(rest)};
    std::string r = rest;
    if (swap_prefix(r, "group_norm.", "norm.")) return {part + ".mid.attn_1." + r};
    const bool linear = swap_prefix(r, "to_q.", "q.") || swap_prefix(r, "to_k.", "k.") ||
                        swap_prefix(r, "to_v.", "v.") || swap_prefix(r, "to_out.0.", "proj_out.");
    if (!linear) throw Error("no checkpoint name for '" + name + "'");
    return {part + ".mid.attn_1." + r, 0, 1, r.size() > 7 && r.substr(r.size() - 7) == ".weight"};
  }
  if (!std::regex_match(name, m, level)) throw Error("no checkpoint name for '" + name + "'");
  const bool enc = m[1] == "encoder.down";
  int i = std::stoi(m[2]);
  if (!enc) i = l.vae_levels - 1 - i;  // the original decoder counts levels the other way
  const std::string base = std::string(enc ? "encoder.down." : "decoder.up.") + std::to_string(i);
  const std::string kind = m[3], rest = m[5];
  if (kind == "resnets") return {base + ".block." + std::string(m[4]) + "." + resnet(rest)};
  return {base + (enc ? ".downsample." : ".upsample.") + rest};
}

OriginalKey openclip_key(const std::string& name) {
  static const std::regex layer(R"(text_model\.encoder\.layers\.(\d+)\.(.*))");
  if (name == "text_model.embeddings.token_embedding.weight") return {"token_embedding.weight"};
  if (name == "text_model.embeddings.position_embedding.weight") return {"positional_embedding"};
  if (name == "text_projection.weight") return {"text_projection", 0, 1, false, true};
  std::string s = name;
  if (swap_prefix(s, "text_model.final_layer_norm.", "ln_final.")) return {s};
  std::smatch m;
  if (!std::regex_match(name, m, layer)) throw Error("no checkpoint name for '" + name + "'");
  const std::string base = "transformer.resblocks." + std::string(m[1]) + ".";
  std::string rest = m[2];
  const bool weight = rest.size() > 7 && rest.substr(rest.size() - 7) == ".weight";
  const std::string suffix = weight ? "weight" : "bias";
  for (int k = 0; k < 3; ++k) {
    const char* proj[] = {"self_attn.q_proj.", "self_attn.k_proj.", "self_attn.v_proj."};
    if (rest.rfind(proj[k], 0) == 0) return {base + "attn.in_proj_" + suffix, k, 3};
  }
  if (swap_prefix(rest, "self_attn.out_proj.", "attn.out_proj.") ||
      swap_prefix(rest, "layer_norm1.", "ln_1.") || swap_prefix(rest, "layer_norm2.", "ln_2.") ||
      swap_prefix(rest, "mlp.fc1.", "mlp.c_fc.") || swap_prefix(rest, "mlp.fc2.", "mlp.c_proj."))
    return {base + rest};
  throw Error("no checkpoint name for '" + name + "'");
}

}  // namespace

std::vector<std::string> component_names(Family family) {
  if (family == Family::SDXL) return {"unet", "vae", "text_encoder", "text_encoder_2"};
  return {"unet", "vae", "text_encoder"};
}

std::string tokenizer_pad(Family family, bool second) {
  return family == Family::SD2 || second ? "!" : "<|endoftext|>";
}

const char* checkpoint_prefix(const std::string& component, Family family) {
  if (component == "unet") return "model.diffusion_model.";
  if (component == "vae") return "first_stage_model.";
  if (family == Family::SDXL)  // CLIP ViT-L as transformers has it, OpenCLIP bigG
    return component == "text_encoder" ? "conditioner.embedders.0.transformer." : "conditioner.embedders.1.model.";
  return family == Family::SD2 ? "cond_stage_model.model." : "cond_stage_model.transformer.";
}

OriginalKey original_key(const std::string& component, const std::string& name,
                         const CheckpointLayout& layout) {
  OriginalKey key;
  if (component == "unet")
    key.name = unet_key(name, layout);
  else if (component == "vae")
    key = vae_key(name, layout);
  else if (component == "text_encoder")
    key = layout.family == Family::SD2 ? openclip_key(name) : OriginalKey{name};
  else if (component == "text_encoder_2" && layout.family == Family::SDXL)
    key = openclip_key(name);
  else
    throw Error("unknown component '" + component + "'");
  key.name = checkpoint_prefix(component, layout.family) + key.name;
  return key;
}

}  // namespace inpaint
