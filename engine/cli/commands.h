// The subcommands of `inpaint`, each in its own file; main.cpp wires them to CLI11.
#pragma once
#include <CLI/CLI.hpp>

namespace inpaint::cli {

void add_info(CLI::App& app);
void add_gen_model(CLI::App& app);
void add_gen_lora(CLI::App& app);
void add_run(CLI::App& app);
void add_models(CLI::App& app);
void add_convert(CLI::App& app);

}  // namespace inpaint::cli
