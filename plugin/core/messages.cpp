#include "plugin/core/messages.h"

#include <cctype>
#include <utility>

namespace inpaint {

std::string gimp_message(std::string text) {
  // Every option an engine message can name that the plug-in sets, and its label.
  static const std::pair<const char*, const char*> kLabels[] = {
      {"--negative-prompt", "Negative prompt"}, {"--prompt", "Prompt"},     {"--steps", "Steps"},
      {"--guidance", "Guidance"},               {"--strength", "Strength"}, {"--seed", "Seed"},
      {"--scheduler", "Scheduler"},             {"--model", "Model"},       {"--context", "Context margin"},
      {"--resolution", "Working resolution"},   {"--max-memory", "Memory limit"},
      {"--threads", "Threads"},                 {"--lora", "LoRA"},         {"--vae", "Fast image encoder/decoder"},
      {"--grow", "the mask's growth"},          {"--feather", "the mask's feathering"},
      {"--roi off", "whole-image inpainting"},  {"--precision", "Precision"},
  };
  for (const auto& [option, label] : kLabels) {
    const std::string o = option;
    for (size_t at = text.find(o); at != std::string::npos; at = text.find(o, at)) {
      const size_t end = at + o.size();
      const bool whole = end == text.size() || !(std::isalnum(static_cast<unsigned char>(text[end])) || text[end] == '-');
      if (!whole) {
        at = end;
        continue;
      }
      text.replace(at, o.size(), label);
      at += std::string(label).size();
    }
  }
  return text;
}

}  // namespace inpaint
