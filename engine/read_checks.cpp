#include "engine/read_checks.h"

#include <ATen/Parallel.h>

#include <atomic>
#include <mutex>
#include <vector>

#include "engine/error.h"

namespace inpaint {
namespace {

struct Pending {
  std::weak_ptr<SafetensorsFile> file;
  std::string what;
  std::function<void()> on_damage;
  bool damaged = false;
};

std::mutex g_mutex;
std::vector<Pending> g_pending;          // files not verified yet (or found damaged)
std::atomic<bool> g_any_pending{false};  // the reads' fast path

}  // namespace

void check_at_first_read(const std::shared_ptr<SafetensorsFile>& file, const std::string& what,
                         std::function<void()> on_damage) {
  const std::lock_guard<std::mutex> lock(g_mutex);
  g_pending.push_back({file, what, std::move(on_damage)});
  g_any_pending = true;
}

void check_before_read(const at::Tensor& t) {
  if (!g_any_pending || !t.defined()) return;
  const std::lock_guard<std::mutex> lock(g_mutex);
  const void* data = t.data_ptr();
  for (auto it = g_pending.begin(); it != g_pending.end();) {
    const std::shared_ptr<SafetensorsFile> file = it->file.lock();
    if (!file) {  // no longer used by anyone
      it = g_pending.erase(it);
      continue;
    }
    if (!file->contains(data)) {
      ++it;
      continue;
    }
    if (!it->damaged) {
      if (file->verify_checksum(/*release_pages=*/true, at::get_num_threads()) == SafetensorsFile::Checksum::ok) {
        g_pending.erase(it);
        break;
      }
      it->damaged = true;  // every later read of it fails too
      it->on_damage();
    }
    throw Error(file->label() + ": " + it->what);
  }
  g_any_pending = !g_pending.empty();
}

}  // namespace inpaint
