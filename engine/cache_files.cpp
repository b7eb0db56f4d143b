#include "engine/cache_files.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <utility>
#include <vector>

#include "engine/error.h"
#include "engine/own_files.h"

namespace fs = std::filesystem;

namespace inpaint {

fs::path cache_root() {
  if (const char* dir = std::getenv("INPAINT_CACHE"); dir && *dir) return dir;
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg) return fs::path(xdg) / "inpaint";
  const char* home = std::getenv("HOME");
  return fs::path(home && *home ? home : ".") / ".cache" / "inpaint";
}

fs::path resolved_path(const fs::path& path) {
  std::error_code ec;
  const fs::path p = fs::weakly_canonical(path, ec);
  return ec ? path : p;
}

std::string file_identity(const fs::path& file) {
  const fs::path p = resolved_path(file);
  std::error_code ec;
  const auto size = fs::file_size(p, ec);  // a missing file: size -1, the earliest time
  const auto time = fs::last_write_time(p, ec).time_since_epoch().count();
  std::ostringstream out;
  out << p.string() << " " << size << " " << time;
  return out.str();
}

std::string stable_name(const std::string& text) {
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char ch : text) h = (h ^ ch) * 1099511628211ULL;
  char name[17];
  std::snprintf(name, sizeof name, "%016llx", static_cast<unsigned long long>(h));
  return name;
}

void keep_used_last(const fs::path& dir, int keep, const std::function<bool(const std::string&)>& ours,
                    const std::function<fs::path(const fs::path&)>& used_stamp) {
  std::vector<std::pair<fs::file_time_type, fs::path>> entries;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (!ours(e.path().filename().string())) continue;
    const fs::file_time_type t = fs::last_write_time(used_stamp(e.path()), ec);
    entries.push_back({ec ? fs::file_time_type::min() : t, e.path()});
  }
  std::sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  for (size_t i = size_t(std::max(keep, 0)); i < entries.size(); ++i) {
    try {
      remove_entry(dir, entries[i].second.filename().string());
    } catch (const Error&) {
    }  // in use elsewhere, or no permission: pruned at a later run
  }
}

void discard_entry(const fs::path& entry, const std::string& what, const std::string& why, const std::string& then) {
  std::fprintf(stderr, "inpaint: %s %s %s: deleted, %s\n", what.c_str(), entry.string().c_str(), why.c_str(), then.c_str());
  try {
    remove_entry(entry.parent_path(), entry.filename().string());
  } catch (const Error& e) {
    std::fprintf(stderr, "inpaint: %s\n", e.what());
  }
}

bool has_room(const fs::path& dir, double bytes) {
  std::error_code ec;
  const fs::space_info space = fs::space(dir, ec);
  return !ec && double(space.available) >= bytes + 512.0 * 1024 * 1024;
}

}  // namespace inpaint
