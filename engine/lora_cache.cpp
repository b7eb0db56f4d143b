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

// The text an entry is named after (and keeps in kComplete).
std::string description(const ModelSource& model, const std::vector<LoraSpec>& loras) {
  std::ostringstream out;
  out << "model " << model.path.string() << "\n";
  for (const auto& [name, c] : model.components)
    for (const std::string& f : c.files) out << name << " " << file_identity(f) << "\n";
  for (const LoraSpec& l : loras) out << "lora " << file_identity(l.file) << " scale " << l.scale << "\n";
  return out.str();
}

std::vector<const Component*> adapted(const ModelSource& model) {
  std::vector<const Component*> out;
  for (const auto& [name, c] : model.components)
    if (!c.loras.empty()) out.push_back(&c);
  return out;
}

}  // namespace

fs::path lora_cache_entry(const ModelSource& model, const std::vector<LoraSpec>& loras) {
  return cache_root() / "lora-merged" / stable_name(description(model, loras));
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
  if (!has_room(entry.parent_path(), bytes)) {
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
  keep_used_last(entry.parent_path(), keep, [](const fs::path& e) { return e / kComplete; });
  if (progress)
    progress("LoRA merged into the weights for later runs: " + entry.string() + " (" + std::to_string(int(bytes / 1e6)) +
             " MB; the " + std::to_string(keep) + " model + LoRA sets used last are kept)");
  return true;
}

}  // namespace inpaint
