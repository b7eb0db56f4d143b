// inpaint info MODEL: what a model folder or checkpoint holds, and whether it fits.
#include <iostream>

#include "engine/cli/commands.h"
#include "engine/error.h"
#include "engine/model_info.h"

namespace inpaint::cli {

void add_info(CLI::App& app) {
  struct Args {
    std::string model, tokenizer;
    bool json = false, fp16 = false, check_values = false;
  };
  auto args = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand("info", "Inspect and validate a model");
  cmd->add_option("model", args->model, "diffusers folder or .safetensors checkpoint")->required();
  cmd->add_flag("--json", args->json, "Print the report as JSON");
  cmd->add_flag("--fp16", args->fp16, "Prefer *.fp16.safetensors weights in a folder");
  cmd->add_option("--tokenizer", args->tokenizer, "Tokenizer folder for a single-file checkpoint");
  cmd->add_flag("--check-values", args->check_values, "Also scan every weight for NaN/Inf (reads all of them)");
  cmd->callback([args] {
    OpenOptions options;
    options.prefer_fp16 = args->fp16;
    options.tokenizer_dir = args->tokenizer;
    const ModelReport report = inspect_model(ModelSource::open(args->model, options), args->check_values);
    std::cout << (args->json ? report.to_json().dump(2) + "\n" : report.to_text());
    if (!report.ok()) throw Error(args->model + ": the model cannot be used as it is (see above)");
  });
}

}  // namespace inpaint::cli
