#include "engine/own_files.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "engine/error.h"

namespace fs = std::filesystem;

namespace inpaint {
namespace {

fs::path real_location(const fs::path& p) {
  std::error_code ec;
  fs::path r = fs::weakly_canonical(fs::absolute(p, ec), ec);
  return ec ? fs::absolute(p).lexically_normal() : r;
}

// A partial file still being written is touched continuously; one untouched this long
// whose process is gone is left over (the time guards against a writer in another PID
// namespace, whose process we cannot see).
constexpr auto kStaleAfter = std::chrono::minutes(10);

}  // namespace

void require_plain_name(const std::string& name, const std::string& what) {
  if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos ||
      name.find('\0') != std::string::npos)
    throw Error("'" + name + "' is not a plain " + what + " name (no '/', not '.' or '..')");
}

bool is_within(const fs::path& inner, const fs::path& outer) {
  const fs::path in = real_location(inner), out = real_location(outer);
  auto i = in.begin();
  for (const fs::path& part : out) {
    if (part.empty()) continue;  // a trailing separator
    while (i != in.end() && i->empty()) ++i;
    if (i == in.end() || *i != part) return false;
    ++i;
  }
  return true;
}

bool same_file(const fs::path& a, const fs::path& b) {
  struct stat sa {}, sb {};
  if (::stat(a.c_str(), &sa) == 0 && ::stat(b.c_str(), &sb) == 0)
    return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
  return real_location(a) == real_location(b);  // one of them is not there yet
}

bool remove_entry(const fs::path& dir, const std::string& name) {
  require_plain_name(name, "entry");
  const fs::path entry = dir / name;
  std::error_code ec;
  const fs::file_status st = fs::symlink_status(entry, ec);
  if (!fs::exists(st)) return false;
  // The entry's folder is `dir` itself (name is one component); a symlink is removed as
  // a link, and remove_all never follows links inside a folder.
  if (fs::is_directory(st)) fs::remove_all(entry, ec);
  else fs::remove(entry, ec);
  if (ec) throw Error("cannot remove " + entry.string() + ": " + ec.message());
  return true;
}

void check_output_file(const fs::path& path, const std::string& option,
                       const std::vector<std::pair<std::string, fs::path>>& inputs) {
  if (path.empty()) throw Error(option + ": empty path");
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  if (fs::is_directory(st)) throw Error(option + " " + path.string() + " is a folder: give a file name");
  if (fs::exists(st) && !fs::is_regular_file(st))
    throw Error(option + " " + path.string() + " is not a regular file (a device, FIFO or socket): give a file name");
  const fs::path folder = path.has_parent_path() ? path.parent_path() : fs::path(".");
  if (!fs::is_directory(folder, ec)) throw Error(option + " " + path.string() + ": the folder " + folder.string() + " does not exist");
  if (::access(folder.c_str(), W_OK) != 0)
    throw Error(option + " " + path.string() + ": cannot write in " + folder.string() + ": " + std::strerror(errno));
  if (fs::exists(st) && ::access(path.c_str(), W_OK) != 0)
    throw Error(option + " " + path.string() + ": the file is read-only (" + std::strerror(errno) + ")");
  for (const auto& [input_option, input] : inputs)
    if (!input.empty() && same_file(path, input))
      throw Error(option + " " + path.string() + " is the same file as " + input_option + " " + input.string() +
                  ": it would be replaced; choose another name");
}

fs::path write_target(const fs::path& path) {
  std::error_code ec;
  if (!fs::is_symlink(path, ec)) return path;
  const fs::path target = fs::weakly_canonical(path, ec);
  return ec ? path : target;
}

fs::path partial_name(const fs::path& path) {
  return path.string() + "." + std::to_string(::getpid()) + ".partial";
}

long partial_owner(const std::string& name) {
  const std::string suffix = ".partial";
  if (name.size() <= suffix.size() || name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0) return 0;
  const std::string head = name.substr(0, name.size() - suffix.size());
  const size_t dot = head.rfind('.');
  if (dot == std::string::npos || dot + 1 == head.size() || head.size() - dot > 11) return 0;
  for (size_t i = dot + 1; i < head.size(); ++i)
    if (head[i] < '0' || head[i] > '9') return 0;
  return std::stol(head.substr(dot + 1));
}

int remove_stale_partials(const fs::path& dir) {
  int removed = 0;
  std::error_code ec;
  const auto now = fs::file_time_type::clock::now();
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    const long pid = partial_owner(name);
    if (pid <= 0 || pid == long(::getpid())) continue;
    if (::kill(pid_t(pid), 0) == 0 || errno != ESRCH) continue;  // still running (or not ours to ask)
    std::error_code tec;
    const auto touched = fs::last_write_time(e.path(), tec);
    if (tec || now - touched < kStaleAfter) continue;
    try {
      removed += remove_entry(dir, name) ? 1 : 0;
    } catch (const Error&) {
    }  // another process cleaned it first, or no permission: not ours to insist
  }
  return removed;
}

void write_file_atomically(const fs::path& path, const std::string& text) {
  const fs::path partial = partial_name(path);
  std::error_code ec;
  fs::remove(partial, ec);  // this process's own name: left by a dead process with our PID
  const int fd = ::open(partial.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) throw Error(path.string() + ": cannot write: " + std::strerror(errno));
  size_t done = 0;
  int err = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      err = errno ? errno : EIO;
      break;
    }
    done += size_t(n);
  }
  if (!err && ::fsync(fd) != 0) err = errno;
  if (::close(fd) != 0 && !err) err = errno;
  if (!err && ::rename(partial.c_str(), path.c_str()) != 0) err = errno;
  if (err) {
    fs::remove(partial, ec);
    throw Error(path.string() + ": cannot write: " + std::strerror(err));
  }
}

}  // namespace inpaint
