// inpaint convert: a model rewritten as a diffusers folder, optionally smaller (f16
// floats, int8 weights).
#include <iostream>

#include "engine/cli/commands.h"
#include "engine/error.h"
#include "engine/lora.h"
#include "engine/model_convert.h"
#include "engine/model_info.h"

namespace inpaint::cli {

void add_convert(CLI::App& app) {
  struct Args {
    std::string model, out, tokenizer;
    std::vector<std::string> int8_components = {"unet", "text_encoder"}, loras;
    bool int8 = false, half = false, force = false;
  };
  auto a = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand("convert", "Rewrite a model as a diffusers folder, optionally in f16 or int8");
  cmd->add_option("model", a->model, "diffusers folder or .safetensors checkpoint")->required();
  cmd->add_option("--out", a->out, "Output folder")->required();
  cmd->add_flag("--int8", a->int8, "Linear and convolution weights as int8 with per-output-channel scales");
  cmd->add_option("--int8-components", a->int8_components, "Which networks --int8 applies to")
      ->delimiter(',')->check(CLI::IsMember({"unet", "text_encoder", "vae"}))->capture_default_str();
  cmd->add_flag("--half", a->half, "Other f32 tensors as f16");
  cmd->add_option("--lora", a->loras, "LoRA to merge in for good, FILE or FILE:SCALE (repeatable)");
  cmd->add_flag("--force", a->force, "Replace an existing output");
  cmd->add_option("--tokenizer", a->tokenizer, "Tokenizer folder for a single-file checkpoint");
  cmd->callback([a] {
    OpenOptions open;
    open.tokenizer_dir = a->tokenizer;
    ModelSource model = ModelSource::open(a->model, open);
    ConvertOptions o;
    for (const std::string& text : a->loras) {
      const LoraSpec lora = parse_lora_spec(text);
      apply_lora(model, lora);
      o.inputs.push_back(lora.file);
    }
    require_fitting(model, a->model);
    o.out = a->out;
    o.half = a->half;
    o.force = a->force;
    if (a->int8) o.int8.insert(a->int8_components.begin(), a->int8_components.end());
    convert_model(model, o, [](const std::string& msg) { std::cerr << msg << "\n"; });
    const ModelReport after = inspect_model(ModelSource::open(o.out));  // what we wrote loads
    if (!after.ok()) throw Error(o.out.string() + ": the converted model does not load:\n" + after.to_text());
    std::cout << o.out.string() << "\n";
  });
}

}  // namespace inpaint::cli
