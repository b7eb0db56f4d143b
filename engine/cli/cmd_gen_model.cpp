// inpaint gen-model: random-weight models with real configs, for tests and benchmarks.
#include <iostream>

#include "engine/cli/commands.h"
#include "engine/error.h"
#include "engine/model_generator.h"
#include "engine/model_presets.h"

namespace inpaint::cli {

void add_gen_model(CLI::App& app) {
  struct Args {
    GenerateOptions options;
    std::string dtype = "f32", out, tokenizer;
  };
  auto args = std::make_shared<Args>();
  std::string presets;
  for (const auto& n : model_preset_names()) presets += (presets.empty() ? "" : ", ") + n;
  CLI::App* cmd = app.add_subcommand("gen-model", "Write a random-weight model");
  cmd->add_option("--preset", args->options.preset, "One of: " + presets)->required();
  cmd->add_option("--dtype", args->dtype, "f32, f16 or bf16")
      ->check(CLI::IsMember({"f32", "f16", "bf16"}));
  cmd->add_option("--seed", args->options.seed, "Seed of the random weights");
  cmd->add_option("--out", args->out,
                  "Output folder (with --single-file: the .safetensors file)")->required();
  cmd->add_flag("--single-file", args->options.single_file,
                "Write one checkpoint with the original key names");
  cmd->add_flag("--force", args->options.force, "Replace an existing output");
  cmd->add_option("--tokenizer", args->tokenizer, "Folder with vocab.json and merges.txt (default: the CLIP vocabulary shipped in share/clip)");
  cmd->callback([args] {
    GenerateOptions o = args->options;
    o.out = args->out;
    o.tokenizer_dir = args->tokenizer;
    o.dtype = args->dtype == "f16" ? DType::F16 : args->dtype == "bf16" ? DType::BF16 : DType::F32;
    generate_model(o, [](const std::string& msg) { std::cerr << msg << "\n"; });
    std::cout << o.out.string() << "\n";
  });
}

void add_gen_lora(CLI::App& app) {
  struct Args {
    std::string preset = "sd15-inpaint", out;
    int64_t rank = 64;
    uint64_t seed = 0;
  };
  auto a = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand("gen-lora", "Write a random kohya-format LoRA for a preset's UNet (benchmarks)");
  cmd->add_option("--preset", a->preset, "Model preset")->capture_default_str();
  cmd->add_option("--rank", a->rank, "LoRA rank (LCM-LoRA SD 1.5: 64)")->capture_default_str()->check(CLI::Range(1, 1024));
  cmd->add_option("--seed", a->seed, "Seed of the random factors");
  cmd->add_option("--out", a->out, "Output .safetensors")->required();
  cmd->callback([a] {
    generate_lora(a->preset, a->rank, a->seed, a->out);
    std::cout << a->out << "\n";
  });
}

}  // namespace inpaint::cli
