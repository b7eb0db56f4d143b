#include "engine/packed_cache.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <mutex>
#include <set>
#include <sstream>

#include <ATen/Parallel.h>

#include "engine/cache_files.h"
#include "engine/error.h"
#include "engine/own_files.h"
#include "engine/safetensors.h"
#include "models/layers.h"
#include "models/kernels/packed_conv.h"
#include "models/kernels/packed_layout.h"

namespace fs = std::filesystem;

namespace inpaint {
namespace {
const char* const kSignature = "packing";  // metadata: packing_signature() when written

std::string layout_key(const std::string& name) { return "layout:" + name; }

void discard(const fs::path& file, const std::string& why) { discard_entry(file, "packed weights", why, "packing again"); }
}  // namespace

fs::path packed_cache_file(const fs::path& dir, const Component& component, const Compute& compute,
                           const std::string& shapes) {
  std::set<std::string> files;
  for (const auto& [name, ref] : component.tensors) files.insert(ref.file->label());
  std::ostringstream text;
  text << component.name << "\n" << packing_signature(compute) << "\n" << shapes << "\n";
  for (const std::string& f : files) text << file_identity(f) << "\n";
  return dir / (component.name + "-" + stable_name(text.str()) + ".safetensors");
}

std::string unet_shapes(int64_t batch, int64_t latent_height, int64_t latent_width) {
  return "batch " + std::to_string(batch) + ", latents " + std::to_string(latent_height) + "x" + std::to_string(latent_width);
}

std::string vae_shapes(int64_t height, int64_t width) {
  return "image " + std::to_string(height) + "x" + std::to_string(width);
}

bool is_packed_cache_name(const std::string& name) {
  const size_t dash = name.rfind('-');
  const std::string suffix = ".safetensors";
  return dash != std::string::npos && name.size() == dash + 1 + 16 + suffix.size() &&
         name.compare(dash + 17, suffix.size(), suffix) == 0 &&
         name.substr(dash + 1, 16).find_first_not_of("0123456789abcdef") == std::string::npos;
}

namespace {
// Long bf16 runs may read their weights from memory of our own: the big-block range has
// 2 MB pages (engine/big_blocks.h), and oneDNN's bf16 kernels, which stream the weights,
// lose to the TLB on the page cache's 4 KB ones (6-8 % per UNet step, aligned data, side
// by side). Kernels that keep large page-cache folios (Linux 6.16+ on ext4) map nearly all
// of a file SafetensorsWriter wrote with 2 MB entries, and the mapped step is as fast
// (1.45-1.63 s against 1.55-1.64 s) without the copy's 1.7 GB of fresh memory before the
// first step: 1.2-2.6 s in a VM that hands freed memory back to its host. Short runs
// (LCM's 4 steps) map in any case: 4 steps lose less to the TLB than the copy costs.
// A copy per weight, whose mapped pages are released after it. fp32 weights stay
// mapped: their copies (Winograd's transformed weights among them) raised a 512x512
// picture's peak from 2.6 to 4.0 GB for a 1.15x faster step.
at::Tensor into_memory(const at::Tensor& mapped) {
  at::Tensor copy = mapped.clone();
  release_mapped_pages(mapped.data_ptr(), mapped.nbytes());
  return copy;
}
}  // namespace

size_t use_packed_cache(const fs::path& file, PackedSlots& slots, const Compute& compute, bool few_calls) {
  std::error_code ec;
  remove_stale_partials(file.parent_path());
  if (!fs::exists(file, ec)) return 0;
  std::shared_ptr<SafetensorsFile> kept;
  try {
    kept = SafetensorsFile::open(file);
  } catch (const Error& e) {
    discard(file, std::string("cannot be read (") + e.what() + ")");
    return 0;
  }
  // Unaligned packed weights make every tile row of oneDNN's kernels span two cache lines
  // (engine/safetensors.h): such a file (written before the writer aligned its data) is
  // packed again once.
  for (const TensorInfo& t : kept->tensors())
    if (reinterpret_cast<uintptr_t>(kept->data(t)) % kDataAlignment != 0) {
      discard(file, "are not aligned for the kernels (written by an older version)");
      return 0;
    }
  const auto signature = kept->metadata().find(kSignature);
  if (signature == kept->metadata().end() || signature->second != packing_signature(compute)) {
    discard(file, "were packed for another oneDNN or CPU");
    return 0;
  }
  // Every byte checked before any is used: a flipped bit would otherwise paint garbage
  // at every run. Streamed weights drop the pages read again (--max-memory).
  // Once per process and file version: the VAE's file is used for encoding and decoding.
  // Kept with each: the share of its pages the kernel maps with 2 MB entries (all read
  // just now), measured only where it decides between the mapping and a copy (long bf16
  // runs): reading /proc/self/smaps takes ~25 ms here (40,000 lines); 0 elsewhere.
  static std::mutex mutex;
  static std::map<std::string, double> verified;
  // By inode (a rewritten file is a new one), not time: using the file touches its time.
  struct stat st {};
  ::stat(file.c_str(), &st);
  const std::string identity = file.string() + " " + std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino) +
                               " " + std::to_string(st.st_size);
  const bool bf16_resident = compute.precision == Precision::bf16 && !compute.policy.stream_weights;
  const bool share_decides = bf16_resident && !few_calls;
  std::unique_lock<std::mutex> lock(mutex);
  if (!verified.count(identity)) {
    const auto checksum = kept->verify_checksum(compute.policy.stream_weights, at::get_num_threads());
    if (checksum != SafetensorsFile::Checksum::ok) {
      lock.unlock();
      discard(file, checksum == SafetensorsFile::Checksum::absent ? "have no checksum" : "are damaged (checksum mismatch)");
      return 0;
    }
    verified[identity] = share_decides ? kept->mapped_bytes().share_in_2mb_pages() : 0;
  }
  const bool copy = share_decides && verified[identity] < 0.5;
  lock.unlock();
  const TensorMap tensors = tensors_of(kept);
  size_t used = 0;
  for (auto& [name, slot] : slots) {
    const auto ref = tensors.find(name);
    const auto layout = kept->metadata().find(layout_key(name));
    std::string bytes;
    if (ref == tensors.end() || layout == kept->metadata().end() || !layout_from_hex(layout->second, &bytes)) continue;
    const at::Tensor mapped = view_of(ref->second);
    used += restore_packed(*slot, copy ? into_memory(mapped) : mapped, bytes) ? 1 : 0;
  }
  fs::last_write_time(file, fs::file_time_type::clock::now(), ec);  // used last
  return used;
}

bool packed_in_memory(const PackedSlots& slots) {
  return std::any_of(slots.begin(), slots.end(), [](const auto& s) { return packed_in_process(*s.second); });
}

bool write_packed_cache(const fs::path& file, const PackedSlots& slots, const Compute& compute, int keep) {
  std::vector<SafetensorsWriter::Entry> entries;
  std::vector<at::Tensor> data;
  std::map<std::string, std::string> metadata{{kSignature, packing_signature(compute)}, {"written_by", "inpaint packed weights"}};
  double bytes = 0;
  for (const auto& [name, slot] : slots) {
    at::Tensor d;
    std::string layout;
    if (!packed_contents(*slot, d, layout)) continue;
    entries.push_back({name, dtype_of(d.scalar_type()), {d.numel()}});
    data.push_back(d);
    metadata[layout_key(name)] = layout_to_hex(layout);
    bytes += double(d.nbytes());
  }
  std::error_code ec;
  fs::create_directories(file.parent_path(), ec);
  if (entries.empty() || ec || !has_room(file.parent_path(), bytes)) return false;
  // SafetensorsWriter writes a file of this process's own, renamed into place at the
  // end: two runs keeping the same file at once never write into one another's.
  try {
    SafetensorsWriter writer(file, entries, metadata, /*checksum=*/true);
    for (size_t i = 0; i < entries.size(); ++i) writer.write_next(entries[i].name, data[i].data_ptr(), data[i].nbytes());
    writer.finish();
  } catch (const std::exception& e) {  // Error, or the file system's
    throw Error("packed weights " + file.string() + ": " + e.what());
  }
  keep_used_last(file.parent_path(), keep, is_packed_cache_name, [](const fs::path& f) { return f; });
  return true;
}

}  // namespace inpaint
