// inpaint models list|fetch|add|remove: the models in the user's data folder.
#include <iostream>

#include "engine/cli/commands.h"
#include "engine/error.h"
#include "engine/installed_models.h"
#include "engine/model_catalog.h"
#include "engine/model_fetch.h"
#include "engine/model_info.h"
#include "engine/own_files.h"

namespace fs = std::filesystem;

namespace inpaint::cli {
namespace {

uint64_t size_on_disk(const fs::path& p) {
  std::error_code ec;
  if (fs::is_regular_file(p, ec)) return fs::file_size(p, ec);
  uint64_t total = 0;
  for (const auto& e : fs::recursive_directory_iterator(p, fs::directory_options::follow_directory_symlink, ec))
    if (e.is_regular_file(ec)) total += e.file_size(ec);
  return total;
}

// "ok", or what is wrong, as the loader sees it.
std::string status_of(const fs::path& p) {
  std::error_code ec;
  if (fs::is_symlink(p, ec) && !fs::exists(p, ec))
    return "broken: " + fs::read_symlink(p, ec).string() + " was deleted or moved";
  try {
    const ModelReport report = inspect_model(ModelSource::open(p));
    return report.ok() ? "ok" : "broken: the model cannot be used as it is (inpaint info " + p.string() + ")";
  } catch (const Error& e) {
    return std::string("broken: ") + e.what();
  }
}

void list_models(const Catalog& catalog) {
  const fs::path dir = models_dir();
  std::cout << "Models in " << dir.string() << ":\n";
  std::vector<fs::directory_entry> entries;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    if (name.empty() || name[0] == '.' || name == "lora" || name == "taesd") continue;
    entries.push_back(e);
  }
  std::sort(entries.begin(), entries.end());
  if (entries.empty()) std::cout << "  (none: the classic fill is used; `inpaint models fetch` gets the default model)\n";
  for (const auto& e : entries) {
    const fs::path& p = e.path();
    std::string where = fs::is_symlink(p, ec) ? " -> " + fs::read_symlink(p, ec).string() : "";
    std::cout << "  " << p.filename().string() << where << "  " << disk_size(size_on_disk(p)) << "  "
              << status_of(p) << "\n";
  }
  for (const CatalogModel& m : catalog.models) {
    const fs::path p = install_dir(m);
    if (m.kind != "pipeline" && fs::exists(p)) {
      std::cout << "  " << m.kind << "/" << m.name << "  " << disk_size(size_on_disk(p)) << "  ";
      try {
        check_model_folder(m, p);
        std::cout << "ok\n";
      } catch (const Error& e) {
        std::cout << "broken: " << e.what() << "\n";
      }
    }
  }
  std::cout << "Available (inpaint models fetch NAME):\n";
  for (const CatalogModel& m : catalog.models) {
    const bool installed = fs::exists(install_dir(m));
    std::cout << "  " << m.name << (m.name == catalog.default_model ? " (default)" : "") << "  about "
              << disk_size(m.approx_size()) << "  " << m.description << (installed ? "  [installed]" : "") << "\n";
  }
}

void add_model(const std::string& path_text, std::string name) {
  const fs::path path = fs::weakly_canonical(fs::absolute(path_text));
  if (!fs::exists(path)) throw Error(path_text + ": no such file or folder");
  const ModelReport report = require_fitting(ModelSource::open(path), path_text);
  if (name.empty()) name = path.filename().string();
  if (fs::is_regular_file(path) && fs::path(name).extension() != ".safetensors") name += ".safetensors";
  if (name == kClassicFill || name.find('/') != std::string::npos || name[0] == '.')
    throw Error("'" + name + "' cannot be a model name");
  const fs::path link = models_dir() / name;
  std::error_code ec;
  if (fs::exists(link, ec) || fs::is_symlink(link, ec))
    throw Error("a model named " + name + " is already installed (inpaint models remove " + name + " first)");
  fs::create_directories(models_dir(), ec);
  fs::create_symlink(path, link, ec);
  if (ec) throw Error("cannot add " + link.string() + ": " + ec.message());
  std::cout << "added " << name << " -> " << path.string() << " (" << report.architecture << ")\n";
}

// Only entries of the models folder (or its lora/ and taesd/ folders), by plain name: an
// added model's link is removed, never what it points to.
void remove_model(const Catalog& catalog, const std::string& name) {
  require_plain_name(name, "model");
  std::vector<std::pair<fs::path, std::string>> candidates = {{models_dir(), name}, {models_dir(), name + ".safetensors"}};
  for (const CatalogModel& m : catalog.models)
    if (m.name == name) candidates.push_back({install_dir(m).parent_path(), m.name});
  std::error_code ec;
  for (const auto& [dir, entry] : candidates) {
    const fs::path p = dir / entry;
    if (fs::is_symlink(p, ec)) {
      const fs::path target = fs::read_symlink(p, ec);
      remove_entry(dir, entry);
      std::cout << "removed " << p.string() << " (the files at " << target.string() << " are kept)\n";
      return;
    }
    if (fs::exists(p, ec)) {
      const uint64_t bytes = size_on_disk(p);
      remove_entry(dir, entry);
      std::cout << "deleted " << p.string() << " (" << disk_size(bytes) << ")\n";
      return;
    }
  }
  throw Error("no installed model named '" + name + "' in " + models_dir().string() + " (see inpaint models list)");
}

}  // namespace

void add_models(CLI::App& app) {
  struct Args {
    std::string name, path, add_name, base_url;
    bool quiet = false;
  };
  auto a = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand("models", "List, download, add and remove models");
  cmd->require_subcommand(1);
  cmd->add_subcommand("list", "Installed models (checked) and the ones that can be fetched")->callback([] {
    list_models(load_catalog());
  });
  CLI::App* fetch = cmd->add_subcommand("fetch", "Download a catalog model, verify it, install it");
  fetch->add_option("name", a->name, "Catalog name (default: the catalog's default)");
  fetch->add_option("--base-url", a->base_url, "Hub address (default: $INPAINT_HF_ENDPOINT or https://huggingface.co)");
  fetch->add_flag("--quiet", a->quiet, "No progress bar");
  fetch->callback([a] {
    const Catalog catalog = load_catalog();
    const CatalogModel& m = catalog.find(a->name.empty() ? catalog.default_model : a->name);
    const fs::path dir = fetch_model(m, {a->base_url, a->quiet});
    std::cout << "installed " << m.name << " in " << dir.string() << "\n";
  });
  CLI::App* add = cmd->add_subcommand("add", "Add a diffusers folder or .safetensors checkpoint by path (linked, not copied)");
  add->add_option("path", a->path, "Model folder or checkpoint")->required();
  add->add_option("--name", a->add_name, "Name to list it under (default: its file name)");
  add->callback([a] { add_model(a->path, a->add_name); });
  CLI::App* remove = cmd->add_subcommand("remove", "Remove an installed model (for an added one, only the link)");
  remove->add_option("name", a->name, "Installed name")->required();
  remove->callback([a] { remove_model(load_catalog(), a->name); });
}

}  // namespace inpaint::cli
