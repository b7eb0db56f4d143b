// inpaint: the command-line tool. Errors are printed as one message and exit 1.
#include <ATen/Parallel.h>
#include <oneapi/dnnl/dnnl.h>

#include <CLI/CLI.hpp>
#include <iostream>
#include <thread>

#include "engine/cli/commands.h"
#include "engine/error.h"
#include "engine/runtime.h"
#include "models/kernels/cpu.h"

int main(int argc, char** argv) {
  CLI::App app{"inpaint: Stable Diffusion inpainting on the CPU"};
  app.require_subcommand(1);
  // What runs on this machine: the CPU the kernels were chosen for, and the libraries.
  app.set_version_flag("--version", [] {
    const inpaint::CpuFeatures& cpu = inpaint::cpu_features();
    std::string isa = cpu.avx512 ? "AVX-512" : cpu.avx2 ? "AVX2" : "SSE";
    if (!cpu.native_bf16().empty()) isa += ", native bf16 (" + cpu.native_bf16() + ")";
    const dnnl_version_t* v = dnnl_version();
    return "inpaint " + std::string(INPAINT_VERSION) + "\nCPU: " + cpu.name + " (" + isa + ")" +
           "\nprecision: auto = " + inpaint::precision_name(*inpaint::parse_precision("auto")) +
           "\noneDNN " + std::to_string(v->major) + "." + std::to_string(v->minor) + "." + std::to_string(v->patch) +
           ", OpenBLAS kernels " + inpaint::blas_kernels();
  });
  app.fallthrough();  // --threads also after the subcommand
  int threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  app.add_option("--threads", threads, "Intra-op threads (default: all cores)")
      ->check(CLI::Range(1, 1024));
  inpaint::cli::add_info(app);
  inpaint::cli::add_gen_model(app);
  inpaint::cli::add_gen_lora(app);
  inpaint::cli::add_run(app);
  inpaint::cli::add_models(app);
  inpaint::cli::add_convert(app);
  // libtorch starts with one thread here: set it before any subcommand runs.
  app.parse_complete_callback([&] { inpaint::init_runtime(threads); });
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const inpaint::Error& e) {
    std::cerr << "inpaint: " << e.what() << "\n";
    return 1;
  } catch (const std::bad_alloc&) {
    std::cerr << "inpaint: out of memory\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "inpaint: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
