#include "engine/json_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "engine/error.h"

namespace inpaint {

nlohmann::json parse_python_json(const std::string& text, const std::string& label) {
  std::string out;
  out.reserve(text.size());
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      out += c;
      if (c == '\\' && i + 1 < text.size()) out += text[++i];
      else if (c == '"') in_string = false;
      continue;
    }
    if (c == '"') in_string = true;
    bool replaced = false;
    for (const char* word : {"-Infinity", "Infinity", "NaN"}) {
      const size_t n = std::char_traits<char>::length(word);
      if (text.compare(i, n, word) == 0) {
        out += std::string("\"") + word + "\"";
        i += n - 1;
        replaced = true;
        break;
      }
    }
    if (!replaced) out += c;
  }
  try {
    return nlohmann::json::parse(out);
  } catch (const nlohmann::json::exception& e) {
    throw Error(label + ": not valid JSON: " + e.what());
  }
}

std::string read_text_file(const std::filesystem::path& path, size_t max_bytes) {
  // Non-blocking, so that opening a FIFO returns at once; then only regular files.
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) throw Error(path.string() + ": cannot read: " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw Error(path.string() + ": not a regular file (a FIFO, device or folder)");
  }
  if (uint64_t(st.st_size) > max_bytes) {
    ::close(fd);
    throw Error(path.string() + ": " + std::to_string(st.st_size) + " bytes, more than the " +
                std::to_string(max_bytes >> 20) + " MB such a file can have");
  }
  std::string text(size_t(st.st_size), '\0');
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::read(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    done += size_t(n);
  }
  ::close(fd);
  text.resize(done);
  return text;
}

nlohmann::json read_json_file(const std::filesystem::path& path) {
  return parse_python_json(read_text_file(path), path.string());
}

}  // namespace inpaint
