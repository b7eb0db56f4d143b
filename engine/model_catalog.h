// The models `inpaint models fetch` knows (models/catalog.json): where each file is on
// the Hugging Face hub, its size and, where known, its sha256.
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace inpaint {

struct CatalogFile {
  std::string path;      // below the model's folder, as in the repository
  std::string fallback;  // fetched instead when the server has no `path`; may be empty
  std::string sha256;    // lower-case hex; empty: not known, the loader's check only
  uint64_t bytes = 0;    // exact size when known, else 0
  uint64_t approx_bytes = 0;  // for the free-space check
};

struct CatalogModel {
  std::string name, kind, description, repo, revision, licence;  // kind: pipeline, lora, taesd
  std::vector<CatalogFile> files;
  uint64_t approx_size() const;  // bytes, for messages and the free-space check
};

struct Catalog {
  std::string default_model;
  std::vector<CatalogModel> models;
  // Throws Error listing the known names.
  const CatalogModel& find(const std::string& name) const;
};

// $INPAINT_CATALOG, else the catalog of the source tree this was built from.
std::filesystem::path catalog_path();
// Throws Error naming the file and the bad entry.
Catalog load_catalog(const std::filesystem::path& path = catalog_path());

}  // namespace inpaint
