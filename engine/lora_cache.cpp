#include "engine/lora_cache.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "engine/error.h"
#include "engine/model_folder.h"

namespace fs = std::filesystem;

namespace inpaint {
namespace {

const char* const kComplete = "entry.txt";  // written last: what the entry was made from

// FNV-1a: a stable name for the same inputs across runs and builds.
uint64_t fnv1a(const std::string& text) {
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char ch : text) h = (h ^ ch) * 1099511628211ULL;
  return h;
}

std::string identity(const fs::path& file) {
  std::error_code ec;
  fs::path p = fs::weakly_canonical(file, ec);
  if (ec) p = file;
  const auto size = fs::file_size(p, ec);  // a missing file: size -1, the earliest time
  const auto time = fs::last_write_time(p, ec).time_since_epoch().count();
  std::ostringstream out;
  out << p.string() << " " << size << " " << time;
  return out.str();
}

// The text an entry is named after (and keeps in kComplete).
std::string description(const ModelSource& model, const std::vector<LoraSpec>& loras) {
  std::ostringstream out;
  out << "model " << model.path.string() << "\n";
  for (const auto& [name, c] : model.components)
    for (const std::string& f : c.files) out << name << " " << identity(f) << "\n";
  for (const LoraSpec& l : loras) out << "lora " << identity(l.file) << " scale " << l.scale << "\n";
  return out.str();
}

std::vector<const Component*> adapted(const ModelSource& model) {
  std::vector<const Component*> out;
  for (const auto& [name, c] : model.components)
    if (!c.loras.empty()) out.push_back(&c);
  return out;
}

// Removes all but the `keep` entries used last (the time of their kComplete file).
void prune(const fs::path& dir, int keep) {
  std::vector<std::pair<fs::file_time_type, fs::path>> entries;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const fs::file_time_type t = fs::last_write_time(e.path() / kComplete, ec);
    entries.push_back({ec ? fs::file_time_type::min() : t, e.path()});
  }
  std::sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  for (size_t i = size_t(std::max(keep, 0)); i < entries.size(); ++i) fs::remove_all(entries[i].second, ec);
}

}  // namespace

fs::path cache_root() {
  if (const char* dir = std::getenv("INPAINT_CACHE"); dir && *dir) return dir;
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg) return fs::path(xdg) / "inpaint";
  const char* home = std::getenv("HOME");
  return fs::path(home && *home ? home : ".") / ".cache" / "inpaint";
}

fs::path lora_cache_entry(const ModelSource& model, const std::vector<LoraSpec>& loras) {
  char name[17];
  std::snprintf(name, sizeof name, "%016llx", static_cast<unsigned long long>(fnv1a(description(model, loras))));
  return cache_root() / "lora-merged" / name;
}

bool use_lora_cache(ModelSource& model, const std::vector<LoraSpec>& loras) {
  const fs::path entry = lora_cache_entry(model, loras);
  if (adapted(model).empty() || !fs::exists(entry / kComplete)) return false;
  // Every replacement found and checked before any is made.
  std::vector<std::pair<TensorRef*, TensorRef>> replace;
  try {
    for (auto& [key, c] : model.components) {
      if (c.loras.empty()) continue;
      const auto file = SafetensorsFile::open(entry / (c.name + ".safetensors"));
      for (const auto& [name, factors] : c.loras) {
        const TensorInfo* info = file->find(name);
        TensorRef& ref = c.tensors.at(name);
        if (!info || info->dtype != ref.info->dtype || info->shape != ref.shape) return false;
        replace.push_back({&ref, TensorRef{file, info, ref.shape, 0}});
      }
    }
  } catch (const Error&) {
    return false;  // a damaged entry: merged on the fly, and written again
  }
  for (auto& [ref, cached] : replace) *ref = cached;
  for (auto& [name, c] : model.components) c.loras.clear();
  std::error_code ec;
  fs::last_write_time(entry / kComplete, fs::file_time_type::clock::now(), ec);  // used last
  return true;
}

bool write_lora_cache(const ModelSource& model, const std::vector<LoraSpec>& loras,
                      const std::function<void(const std::string&)>& progress, int keep) {
  const std::vector<const Component*> components = adapted(model);
  double bytes = 0;
  for (const Component* c : components)
    for (const auto& [name, factors] : c->loras) {
      const TensorRef& ref = c->tensors.at(name);
      if (ref.info->dtype == DType::I8) return false;  // merging would re-quantise
      bytes += double(ref.nbytes());
    }
  if (components.empty()) return false;
  const fs::path entry = lora_cache_entry(model, loras);
  std::error_code ec;
  fs::create_directories(entry.parent_path(), ec);
  if (ec) {
    if (progress) progress("LoRA cache: cannot create " + entry.parent_path().string() + ": " + ec.message());
    return false;
  }
  const fs::space_info space = fs::space(entry.parent_path(), ec);
  if (ec || double(space.available) < bytes + 512.0 * 1024 * 1024) {
    if (progress) progress("LoRA cache: too little free space in " + entry.parent_path().string() + ", not kept");
    return false;
  }
  const fs::path partial = entry.string() + ".partial";
  fs::remove_all(partial, ec);
  try {
    fs::create_directories(partial);
    for (const Component* c : components) {
      std::vector<Pending> tensors;
      for (const auto& [name, factors] : c->loras) {
        const TensorRef& ref = c->tensors.at(name);
        tensors.push_back({{name, ref.info->dtype, ref.shape}, [&ref, &f = factors] {
                             const at::Tensor merged = merged_weight(ref, f);
                             // The stored weight's pages leave this process again (--max-memory).
                             const at::Tensor stored = view_of(ref);
                             release_mapped_pages(stored.data_ptr(), stored.nbytes());
                             return merged;
                           }});
      }
      write_tensors(partial / (c->name + ".safetensors"), tensors, {{"format", "pt"}, {"written_by", "inpaint LoRA cache"}},
                    {});
    }
    std::ofstream complete(partial / kComplete);
    complete << description(model, loras);
    complete.close();
    if (!complete) throw Error((partial / kComplete).string() + ": cannot write");
    fs::remove_all(entry, ec);
    fs::rename(partial, entry);
  } catch (const std::exception& e) {  // Error, or the file system's
    fs::remove_all(partial, ec);
    throw Error("LoRA cache " + entry.string() + ": " + e.what());
  }
  prune(entry.parent_path(), keep);
  if (progress)
    progress("LoRA merged into the weights for later runs: " + entry.string() + " (" + std::to_string(int(bytes / 1e6)) +
             " MB; the " + std::to_string(keep) + " model + LoRA sets used last are kept)");
  return true;
}

}  // namespace inpaint
