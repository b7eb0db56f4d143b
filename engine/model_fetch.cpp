#include "engine/model_fetch.h"

#include <glib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>

#include "engine/error.h"
#include "engine/own_files.h"
#include "engine/installed_models.h"
#include "engine/model_info.h"
#include "engine/safetensors.h"

namespace fs = std::filesystem;

namespace inpaint {
namespace {

std::string base_url(const FetchOptions& o) {
  if (!o.base_url.empty()) return o.base_url;
  if (const char* env = std::getenv("INPAINT_HF_ENDPOINT"); env && *env) return env;
  return "https://huggingface.co";
}

std::string file_url(const std::string& base, const CatalogModel& m, const std::string& path) {
  return base + "/" + m.repo + "/resolve/" + m.revision + "/" + path;
}

// What to do without us: the files and where they go.
std::string by_hand(const CatalogModel& m, const std::string& base) {
  std::string list;
  for (const CatalogFile& f : m.files) list += "\n  " + file_url(base, m, f.path);
  return "To install it by hand, download these files into " + install_dir(m).string() +
         "/ keeping their sub-folders (or put any diffusers folder or .safetensors checkpoint in " +
         models_dir().string() + "):" + list;
}

// Runs curl with these arguments (no shell); returns its exit status, 127 when curl
// cannot be started.
int run_curl(const std::vector<std::string>& args) {
  std::fflush(nullptr);
  const pid_t pid = fork();
  if (pid < 0) throw Error("cannot start curl: fork failed");
  if (pid == 0) {
    std::vector<char*> argv;
    argv.push_back(const_cast<char*>("curl"));
    for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execvp("curl", argv.data());
    _exit(127);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

enum class Outcome { ok, not_found, offline };

// curl's exit codes, grouped by what the user can do about them.
Outcome outcome_of(int code, const std::string& url, const fs::path& part) {
  switch (code) {
    case 0: return Outcome::ok;
    case 22: case 37: case 78: return Outcome::not_found;  // HTTP error, no such file
    case 5: case 6: case 7: case 28: case 35: case 52: case 55: case 56: return Outcome::offline;
    case 23: throw Error("cannot write " + part.string() + " (disk full or no permission?)");
    case 127: throw Error("curl is not installed (apt install curl)");
    default: throw Error(url + ": download failed (curl exit status " + std::to_string(code) + ", see above)");
  }
}

// One file into `dest` through `dest.part`, resuming what an earlier run left.
Outcome download(const std::string& url, const fs::path& dest, bool quiet) {
  const fs::path part = dest.string() + ".part";
  fs::create_directories(dest.parent_path());
  std::vector<std::string> args = {"--fail", "--location", "--retry", "5", "--retry-delay", "2",
                                   "--connect-timeout", "20", "--show-error", quiet ? "--silent" : "--progress-bar",
                                   "--continue-at", "-", "--output", part.string(), url};
  int code = run_curl(args);
  if ((code == 33 || code == 36) && fs::exists(part)) {  // the server cannot resume: start over
    fs::remove(part);
    code = run_curl(args);
  }
  const Outcome o = outcome_of(code, url, part);
  if (o == Outcome::ok) fs::rename(part, dest);
  if (o == Outcome::not_found) fs::remove(part);  // a broken connection keeps it to resume
  return o;
}

void verify(const CatalogFile& f, const fs::path& file, const std::string& url) {
  const uint64_t size = fs::file_size(file);
  if (f.bytes && size != f.bytes) {
    fs::remove(file);
    throw Error(url + ": got " + std::to_string(size) + " bytes, the catalog expects " + std::to_string(f.bytes) +
                " (removed; run the command again)");
  }
  if (!f.sha256.empty()) {
    const std::string got = sha256_of(file);
    if (got != f.sha256) {
      fs::remove(file);
      throw Error(url + ": sha256 " + got + " differs from the catalog's " + f.sha256 +
                  ": not the expected file (removed)");
    }
  }
}

uint64_t bytes_in(const fs::path& dir) {
  uint64_t total = 0;
  std::error_code ec;
  for (const auto& e : fs::recursive_directory_iterator(dir, ec))
    if (e.is_regular_file(ec)) total += e.file_size(ec);
  return total;
}

// The nearest existing folder at or above `p`, for the free-space check.
fs::path existing_parent(fs::path p) {
  while (!p.empty() && !fs::exists(p)) p = p.parent_path();
  return p.empty() ? fs::current_path() : p;
}

// One quick request before any download, so that being offline is said once, at once.
bool reachable(const std::string& base) {
  if (base.rfind("http", 0) != 0) return true;
  const int code = run_curl({"--silent", "--head", "--max-time", "15", "--output", "/dev/null", base});
  return code == 0 || outcome_of(code, base, "/dev/null") != Outcome::offline;
}

}  // namespace

std::string disk_size(uint64_t bytes) {
  char text[32];
  if (bytes >= 1000ull * 1000 * 1000) std::snprintf(text, sizeof text, "%.2f GB", double(bytes) / 1e9);
  else std::snprintf(text, sizeof text, "%.1f MB", double(bytes) / 1e6);
  return text;
}

fs::path install_dir(const CatalogModel& m) {
  return m.kind == "pipeline" ? models_dir() / m.name : models_dir() / m.kind / m.name;
}

std::string sha256_of(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path.string() + ": cannot read");
  GChecksum* sum = g_checksum_new(G_CHECKSUM_SHA256);
  std::vector<char> buffer(1 << 20);
  while (in) {
    in.read(buffer.data(), std::streamsize(buffer.size()));
    g_checksum_update(sum, reinterpret_cast<const guchar*>(buffer.data()), gssize(in.gcount()));
  }
  std::string hex = g_checksum_get_string(sum);
  g_checksum_free(sum);
  return hex;
}

void check_model_folder(const CatalogModel& m, const fs::path& folder) {
  if (m.kind == "pipeline") {
    require_fitting(ModelSource::open(folder), folder.string());
    return;
  }
  for (const CatalogFile& f : m.files)
    if (fs::path(f.path).extension() == ".safetensors") SafetensorsFile::open(folder / f.path);  // throws naming it
}

// Each file into the staging folder, verified; files an earlier run finished are kept.
void fetch_files(const CatalogModel& m, const std::string& base, const fs::path& staging, bool quiet) {
  for (const CatalogFile& f : m.files) {
    std::string path = f.path;
    if (fs::exists(staging / path) || (!f.fallback.empty() && fs::exists(staging / f.fallback))) continue;
    if (!quiet) std::fprintf(stderr, "  %s\n", path.c_str());
    Outcome got = download(file_url(base, m, path), staging / path, quiet);
    if (got == Outcome::not_found && !f.fallback.empty()) {
      path = f.fallback;
      if (!quiet) std::fprintf(stderr, "  not there; %s instead\n", path.c_str());
      got = download(file_url(base, m, path), staging / path, quiet);
    }
    if (got == Outcome::offline)
      throw Error("offline: cannot reach " + base + " (what was fetched so far is kept for the next try). " +
                  by_hand(m, base));
    if (got == Outcome::not_found)
      throw Error(file_url(base, m, path) + ": not on the server (moved or renamed?). " + by_hand(m, base));
    verify(path == f.path ? f : CatalogFile{}, staging / path, file_url(base, m, path));
  }
}

fs::path fetch_model(const CatalogModel& m, const FetchOptions& o) {
  const std::string base = base_url(o);
  const fs::path final_dir = install_dir(m);
  const fs::path staging = final_dir.parent_path() / ("." + m.name + ".partial");
  std::error_code ec;
  if (fs::exists(final_dir, ec)) {
    try {
      check_model_folder(m, final_dir);
      if (!o.quiet) std::fprintf(stderr, "%s is installed already and loads: nothing to fetch\n", m.name.c_str());
      return final_dir;
    } catch (const Error& e) {  // broken: fetch it again, replacing it at the end
      if (!o.quiet) std::fprintf(stderr, "%s is installed but broken (%s): fetching it again\n", m.name.c_str(), e.what());
    }
  }
  fs::create_directories(staging, ec);
  if (ec || access(staging.c_str(), W_OK) != 0)
    throw Error("cannot write to " + final_dir.parent_path().string() + " (" +
                (ec ? ec.message() : std::string("permission denied")) +
                "): set INPAINT_MODELS to a folder you can write");
  // Whatever fails, keep only what a next try can resume.
  auto drop_if_empty = [&] {
    if (bytes_in(staging) == 0) fs::remove_all(staging, ec);
  };

  const uint64_t have = bytes_in(staging), need = m.approx_size() > have ? m.approx_size() - have : 0;
  const uint64_t free_bytes = fs::space(existing_parent(staging)).available;
  if (need > free_bytes) {
    drop_if_empty();
    throw Error("not enough disk space in " + staging.parent_path().string() + ": " + m.name + " needs about " +
                disk_size(need) + " more, " + disk_size(free_bytes) + " is free");
  }
  if (!reachable(base)) {
    drop_if_empty();
    throw Error("offline: cannot reach " + base + ". " + by_hand(m, base));
  }
  if (!o.quiet)
    std::fprintf(stderr, "fetching %s (about %s) from %s/%s\n", m.name.c_str(), disk_size(m.approx_size()).c_str(),
                 base.c_str(), m.repo.c_str());
  try {
    fetch_files(m, base, staging, o.quiet);
  } catch (const Error&) {
    drop_if_empty();
    throw;
  }
  try {
    check_model_folder(m, staging);
  } catch (const Error& e) {
    fs::remove_all(staging, ec);
    throw Error(std::string(e.what()) + "\n(the download was removed)");
  }
  // Into place: an older copy is moved aside first and removed once the new one is there.
  // The aside name is hidden, as the staging folder's: no model the user added has it.
  const fs::path folder = final_dir.parent_path();
  const std::string old = "." + m.name + ".old";
  remove_entry(folder, old);
  if (fs::exists(final_dir) || fs::is_symlink(final_dir)) fs::rename(final_dir, folder / old);
  fs::rename(staging, final_dir);
  remove_entry(folder, old);
  return final_dir;
}

}  // namespace inpaint
