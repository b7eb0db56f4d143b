// `inpaint` and `inpaint-gimp` are this small program: it starts the real one (the
// same name with "-engine", beside it) with glibc's malloc asked to back the heap with
// transparent huge pages. The settings glibc reads must be in the environment before a
// process starts, and the engine cannot set them for itself: libtorch is loaded (and
// ~0.7 s spent) before its main(). Huge pages matter because every fresh tensor page
// is a page fault, and they cost several microseconds each in virtual machines: with
// them a 512x512 TAESD run reaches its first denoising step ~0.3 s sooner and the VAE
// encodes ~20 % faster (bench/RESULTS.md), for a few tens of MB more at the peak.
// A user's own glibc.malloc.hugetlb setting is kept. No libtorch here: this starts in
// about a millisecond.
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

int main(int argc, char** argv) {
  (void)argc;
  char self[PATH_MAX];
  const ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) {
    std::fprintf(stderr, "%s: cannot find its own path: %s\n", argv[0], std::strerror(errno));
    return 127;
  }
  self[n] = '\0';
  const std::string engine = std::string(self) + "-engine";
  const char* old = std::getenv("GLIBC_TUNABLES");
  const std::string tunables = old ? std::string(old) : std::string();
  if (tunables.find("glibc.malloc.hugetlb") == std::string::npos)
    setenv("GLIBC_TUNABLES", ((tunables.empty() ? "" : tunables + ":") + "glibc.malloc.hugetlb=1").c_str(), 1);
  execv(engine.c_str(), argv);
  std::fprintf(stderr, "%s: cannot start %s: %s\n", argv[0], engine.c_str(), std::strerror(errno));
  return 127;
}
