#include "engine/model_catalog.h"

#include <cstdlib>

#include "engine/error.h"
#include "engine/own_files.h"
#include "engine/json_file.h"

namespace fs = std::filesystem;

namespace inpaint {

uint64_t CatalogModel::approx_size() const {
  uint64_t total = 0;
  for (const CatalogFile& f : files) total += f.bytes ? f.bytes : f.approx_bytes;
  return total;
}

const CatalogModel& Catalog::find(const std::string& name) const {
  std::string names;
  for (const CatalogModel& m : models) {
    if (m.name == name) return m;
    names += (names.empty() ? "" : ", ") + m.name;
  }
  throw Error("'" + name + "' is not in the model catalog (known: " + names + ")");
}

fs::path catalog_path() {
  if (const char* env = std::getenv("INPAINT_CATALOG"); env && *env) return env;
  return fs::path(INPAINT_SOURCE_ROOT) / "models" / "catalog.json";
}

Catalog load_catalog(const fs::path& path) {
  const nlohmann::json j = read_json_file(path);
  Catalog c;
  try {
    c.default_model = j.value("default", "");
    for (const auto& m : j.at("models")) {
      CatalogModel model;
      model.name = m.at("name").get<std::string>();
      require_plain_name(model.name, "catalog model");  // it names a folder we may replace
      model.kind = m.at("kind").get<std::string>();
      if (model.kind != "pipeline" && model.kind != "lora" && model.kind != "taesd")
        throw Error("model " + model.name + ": unknown kind '" + model.kind + "'");
      model.description = m.value("description", "");
      model.repo = m.at("repo").get<std::string>();
      model.revision = m.value("revision", "main");
      model.licence = m.value("licence", "");
      for (const auto& f : m.at("files")) {
        CatalogFile file;
        file.path = f.at("path").get<std::string>();
        if (file.path.empty() || file.path.front() == '/' || file.path.find("..") != std::string::npos)
          throw Error("model " + model.name + ": file path '" + file.path + "' must stay inside the model's folder");
        file.fallback = f.value("fallback", "");
        file.sha256 = f.value("sha256", "");
        file.bytes = f.value("bytes", uint64_t(0));
        file.approx_bytes = f.value("approx_bytes", uint64_t(0));
        model.files.push_back(std::move(file));
      }
      c.models.push_back(std::move(model));
    }
  } catch (const nlohmann::json::exception& e) {
    throw Error(path.string() + ": " + e.what());
  } catch (const Error& e) {
    throw Error(path.string() + ": " + e.what());
  }
  return c;
}

}  // namespace inpaint
