#include "engine/packed_cache.h"

#include <unistd.h>

#include <algorithm>
#include <set>
#include <sstream>

#include "engine/cache_files.h"
#include "engine/error.h"
#include "engine/safetensors.h"
#include "models/packed_conv.h"

namespace fs = std::filesystem;

namespace inpaint {
namespace {
const char* const kSignature = "packing";  // metadata: packing_signature() when written

// Layout bytes as hex in the file's metadata (safetensors metadata holds strings).
std::string to_hex(const std::string& bytes) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) out += {digits[c >> 4], digits[c & 15]};
  return out;
}

bool from_hex(const std::string& hex, std::string& bytes) {
  if (hex.size() % 2) return false;
  bytes.clear();
  for (size_t i = 0; i < hex.size(); i += 2) {
    const std::string pair = hex.substr(i, 2);
    if (pair.find_first_not_of("0123456789abcdef") != std::string::npos) return false;
    bytes += static_cast<char>(std::stoi(pair, nullptr, 16));
  }
  return true;
}

std::string layout_key(const std::string& name) { return "layout:" + name; }
}  // namespace

fs::path packed_cache_file(const fs::path& dir, const Component& component) {
  std::set<std::string> files;
  for (const auto& [name, ref] : component.tensors) files.insert(ref.file->label());
  std::ostringstream text;
  text << component.name << "\n" << packing_signature() << "\n";
  for (const std::string& f : files) text << file_identity(f) << "\n";
  return dir / (component.name + "-" + stable_name(text.str()) + ".safetensors");
}

size_t use_packed_cache(const fs::path& file, PackedSlots& slots) {
  std::error_code ec;
  if (!fs::exists(file, ec)) return 0;
  std::shared_ptr<SafetensorsFile> kept;
  try {
    kept = SafetensorsFile::open(file);
  } catch (const Error&) {
    return 0;  // damaged: packed in memory, and written again
  }
  const auto signature = kept->metadata().find(kSignature);
  if (signature == kept->metadata().end() || signature->second != packing_signature()) return 0;
  const TensorMap tensors = tensors_of(kept);
  size_t used = 0;
  for (auto& [name, slot] : slots) {
    const auto ref = tensors.find(name);
    const auto layout = kept->metadata().find(layout_key(name));
    std::string bytes;
    if (ref == tensors.end() || layout == kept->metadata().end() || !from_hex(layout->second, bytes)) continue;
    used += restore_packed(*slot, view_of(ref->second), bytes) ? 1 : 0;
  }
  fs::last_write_time(file, fs::file_time_type::clock::now(), ec);  // used last
  return used;
}

bool packed_in_memory(const PackedSlots& slots) {
  return std::any_of(slots.begin(), slots.end(), [](const auto& s) { return packed_in_process(*s.second); });
}

bool write_packed_cache(const fs::path& file, const PackedSlots& slots, int keep) {
  std::vector<SafetensorsWriter::Entry> entries;
  std::vector<at::Tensor> data;
  std::map<std::string, std::string> metadata{{kSignature, packing_signature()}, {"written_by", "inpaint packed weights"}};
  double bytes = 0;
  for (const auto& [name, slot] : slots) {
    at::Tensor d;
    std::string layout;
    if (!packed_contents(*slot, d, layout)) continue;
    entries.push_back({name, dtype_of(d.scalar_type()), {d.numel()}});
    data.push_back(d);
    metadata[layout_key(name)] = to_hex(layout);
    bytes += double(d.nbytes());
  }
  std::error_code ec;
  fs::create_directories(file.parent_path(), ec);
  if (entries.empty() || ec || !has_room(file.parent_path(), bytes)) return false;
  // A name of this process's own, renamed into place at the end: two runs keeping the
  // same file at once never write into one another's.
  const fs::path own = file.string() + "." + std::to_string(getpid());
  try {
    SafetensorsWriter writer(own, entries, metadata);
    for (size_t i = 0; i < entries.size(); ++i) writer.write_next(entries[i].name, data[i].data_ptr(), data[i].nbytes());
    writer.finish();
    fs::rename(own, file);
  } catch (const std::exception& e) {  // Error, or the file system's
    fs::remove(own, ec);
    throw Error("packed weights " + file.string() + ": " + e.what());
  }
  keep_used_last(file.parent_path(), keep, [](const fs::path& f) { return f; });
  return true;
}

}  // namespace inpaint
