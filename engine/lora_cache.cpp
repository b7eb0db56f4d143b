#include "engine/lora_cache.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include <ATen/Parallel.h>

#include "engine/error.h"
#include "engine/json_file.h"
#include "engine/model_folder.h"
#include "engine/own_files.h"
#include "engine/read_checks.h"

namespace fs = std::filesystem;

namespace inpaint {
namespace {

const char* const kComplete = "entry.txt";  // written last: what the entry was made from

// The text an entry is named after (and keeps in kComplete).
std::string description(const ModelSource& model, const std::vector<LoraSpec>& loras) {
  std::ostringstream out;
  // Resolved, as the files' paths (file_identity): a relative and an absolute path to one
  // model are one entry, not two of 1.7 GB.
  out << "model " << resolved_path(model.path).string() << "\n";
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

namespace {
bool is_entry_name(const std::string& name) {
  return name.size() == 16 && name.find_first_not_of("0123456789abcdef") == std::string::npos;
}

std::string read_text(const fs::path& file) {
  try {
    return read_text_file(file);
  } catch (const Error&) {
    return {};
  }
}

void discard(const fs::path& entry, const std::string& why) { discard_entry(entry, "LoRA cache", why, "merging again"); }

// The UNet's merged weights are checked at their first read: matrices only (read where
// layers widen or pack them), with a header whose own digest matches (files written
// since the digests were per chunk).
bool deferrable(const Component& c, const SafetensorsFile& file) {
  return c.name == "unet" && file.verify_header_checksum() == SafetensorsFile::Checksum::ok &&
         std::all_of(file.tensors().begin(), file.tensors().end(), [](const TensorInfo& t) { return t.shape.size() >= 2; });
}
}  // namespace

fs::path lora_cache_entry(const ModelSource& model, const std::vector<LoraSpec>& loras) {
  return cache_root() / "lora-merged" / stable_name(description(model, loras));
}

bool use_lora_cache(ModelSource& model, const std::vector<LoraSpec>& loras) {
  const fs::path entry = lora_cache_entry(model, loras);
  remove_stale_partials(entry.parent_path());
  if (loras.empty() || !fs::exists(entry / kComplete)) return false;
  if (read_text(entry / kComplete) != description(model, loras)) {
    discard(entry, "was made from other files");
    return false;
  }
  // Every replacement found and checked before any is made: every byte of every file,
  // but the UNet's data, checked where it is first read (engine/read_checks.h): the kept
  // packed weights usually replace all of it. The entry holds each adapted weight of
  // each adapted component (write_lora_cache): all of them replace the model's, whether
  // or not the LoRAs were applied before.
  std::vector<std::pair<TensorRef*, TensorRef>> replace;
  std::vector<std::shared_ptr<SafetensorsFile>> check_later;
  try {
    for (auto& [key, c] : model.components) {
      const fs::path merged = entry / (c.name + ".safetensors");
      if (c.loras.empty() && !fs::exists(merged)) continue;
      const auto file = SafetensorsFile::open(merged);
      if (deferrable(c, *file))
        check_later.push_back(file);
      else if (file->verify_checksum(/*release_pages=*/true, at::get_num_threads()) != SafetensorsFile::Checksum::ok)
        throw Error(file->label() + ": checksum missing or wrong");
      for (const auto& [name, factors] : c.loras)
        if (!file->find(name)) throw Error(file->label() + ": " + name + " missing");
      for (const TensorInfo& info : file->tensors()) {
        const auto ref = c.tensors.find(info.name);
        if (ref == c.tensors.end() || info.dtype != ref->second.info->dtype || info.shape != ref->second.shape)
          throw Error(file->label() + ": " + info.name + " is not one of " + c.name + "'s weights, or of another shape");
        replace.push_back({&ref->second, TensorRef{file, &info, ref->second.shape, 0}});
      }
    }
  } catch (const Error& e) {
    discard(entry, std::string("is damaged (") + e.what() + ")");
    return false;
  }
  if (replace.empty()) return false;
  for (auto& [ref, cached] : replace) *ref = cached;
  for (const auto& file : check_later)
    check_at_first_read(file, "damaged (checksum mismatch): this LoRA cache entry was removed; run again to merge the LoRAs anew",
                        [entry] { discard_entry(entry, "LoRA cache", "is damaged (checksum mismatch)", "the next run merges again"); });
  for (auto& [name, c] : model.components) c.loras.clear();
  std::error_code ec;
  fs::last_write_time(entry / kComplete, fs::file_time_type::clock::now(), ec);  // used last
  return true;
}

bool lora_cache_can_merge(const ModelSource& model) {
  const std::vector<const Component*> components = adapted(model);
  for (const Component* c : components)
    for (const auto& [name, factors] : c->loras)
      if (c->tensors.at(name).info->dtype == DType::I8) return false;
  return !components.empty();
}

bool write_lora_cache(const ModelSource& model, const std::vector<LoraSpec>& loras,
                      const std::function<void(const std::string&)>& progress, int keep) {
  if (!lora_cache_can_merge(model)) return false;
  const std::vector<const Component*> components = adapted(model);
  double bytes = 0;
  for (const Component* c : components)
    for (const auto& [name, factors] : c->loras) bytes += double(c->tensors.at(name).nbytes());
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
  const fs::path partial = partial_name(entry);
  fs::remove_all(partial, ec);  // this process's own name: left by a dead process with our PID
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
                    {}, /*checksum=*/true);
    }
    std::ofstream complete(partial / kComplete);
    complete << description(model, loras);
    complete.close();
    if (!complete) throw Error((partial / kComplete).string() + ": cannot write");
    remove_entry(entry.parent_path(), entry.filename().string());
    fs::rename(partial, entry);
  } catch (const std::exception& e) {  // Error, or the file system's
    fs::remove_all(partial, ec);
    throw Error("LoRA cache " + entry.string() + ": " + e.what());
  }
  keep_used_last(entry.parent_path(), keep, is_entry_name, [](const fs::path& e) { return e / kComplete; });
  if (progress)
    progress("LoRA merged into the weights for later runs: " + entry.string() + " (" + std::to_string(int(bytes / 1e6)) +
             " MB; the " + std::to_string(keep) + " model + LoRA sets used last are kept)");
  return true;
}

}  // namespace inpaint
