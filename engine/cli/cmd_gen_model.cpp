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
  cmd->add_option("--tokenizer", args->tokenizer, "Folder with vocab.json and merges.txt");
  cmd->callback([args] {
    GenerateOptions o = args->options;
    o.out = args->out;
    o.tokenizer_dir = args->tokenizer;
    o.dtype = args->dtype == "f16" ? DType::F16 : args->dtype == "bf16" ? DType::BF16 : DType::F32;
    generate_model(o, [](const std::string& msg) { std::cerr << msg << "\n"; });
    std::cout << o.out.string() << "\n";
  });
}

}  // namespace inpaint::cli
