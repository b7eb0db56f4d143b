// Downloading a catalog model: curl (resume, retries, progress) into a staging folder
// beside the final one, each file checked (size, sha256 where known), the whole model
// opened and checked by the loader, and only then renamed into place, so nothing
// half-written ever sits under the final name.
#pragma once
#include <filesystem>
#include <string>

#include "engine/model_catalog.h"

namespace inpaint {

struct FetchOptions {
  std::string base_url;  // empty: $INPAINT_HF_ENDPOINT, else https://huggingface.co
  bool quiet = false;    // no progress bar
};

// Where a catalog model is installed: models_dir()/NAME for pipelines, and
// models_dir()/KIND/NAME for LoRAs and autoencoders (not offered as models).
std::filesystem::path install_dir(const CatalogModel& model);

// Returns the installed folder; one already there that loads is kept. Throws Error
// saying what went wrong: offline (with how
// to place the files by hand), a missing or wrong file, no space, no permission.
std::filesystem::path fetch_model(const CatalogModel& model, const FetchOptions& options);

// Checks an installed or downloaded model folder as the loader sees it; throws Error
// naming the problem.
void check_model_folder(const CatalogModel& model, const std::filesystem::path& folder);

// "1.72 GB", "167.3 MB".
std::string disk_size(uint64_t bytes);

// Lower-case hex sha256 of a file. Throws Error naming it when unreadable.
std::string sha256_of(const std::filesystem::path& path);

}  // namespace inpaint
