#define DOCTEST_CONFIG_IMPLEMENT
#include <ATen/Parallel.h>
#include <doctest/doctest.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <thread>

#include "engine/runtime.h"
#include "tests/test_support.h"

namespace fs = std::filesystem;

namespace test {

static bool in_ci() {
  const char* ci = std::getenv("CI");
  return ci && std::string(ci) == "true";
}

fs::path shared_dir() {
  if (const char* env = std::getenv("INPAINT_SHARED")) return env;
  return fs::path(INPAINT_SOURCE_DIR).parent_path() / "shared";
}

fs::path shared(const std::string& sub) {
  const fs::path p = shared_dir() / sub;
  if (fs::exists(p)) return p;
  if (in_ci()) FAIL("CI=true but the shared asset is missing: " << p.string());
  MESSAGE("SKIPPED (no shared asset " << p.string() << "; this clone has no ../shared)");
  return {};
}

fs::path temp_dir(const std::string& name) {
  static const fs::path root = [] {
    fs::path r = fs::temp_directory_path() / ("inpaint-tests-" + std::to_string(getpid()));
    fs::create_directories(r);
    std::atexit([] {
      std::error_code ec;
      fs::remove_all(fs::temp_directory_path() / ("inpaint-tests-" + std::to_string(getpid())), ec);
    });
    return r;
  }();
  const fs::path p = root / name;
  fs::remove_all(p);
  fs::create_directories(p);
  return p;
}

std::string inpaint_exe() { return INPAINT_EXE; }

int run(const std::string& command, std::string* output) {
  std::string out;
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (!pipe) return -1;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), pipe)) > 0) out.append(buf.data(), n);
  const int status = pclose(pipe);
  if (output) *output = out;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace test

namespace {

// How many test cases the run's filters let through: meson runs one file's cases at a
// time (--source-file), and a filter that matches nothing must not pass as a green test.
struct SelectedCount : doctest::IReporter {
  static inline unsigned selected = 0;
  explicit SelectedCount(const doctest::ContextOptions&) {}
  void test_run_end(const doctest::TestRunStats& stats) override { selected = stats.numTestCasesPassingFilters; }
  void report_query(const doctest::QueryData&) override {}
  void test_run_start() override {}
  void test_case_start(const doctest::TestCaseData&) override {}
  void test_case_reenter(const doctest::TestCaseData&) override {}
  void test_case_end(const doctest::CurrentTestCaseStats&) override {}
  void test_case_exception(const doctest::TestCaseException&) override {}
  void subcase_start(const doctest::SubcaseSignature&) override {}
  void subcase_end() override {}
  void log_assert(const doctest::AssertData&) override {}
  void log_message(const doctest::MessageData&) override {}
  void test_case_skipped(const doctest::TestCaseData&) override {}
};
REGISTER_LISTENER("selected-count", 1, SelectedCount);

}  // namespace

int main(int argc, char** argv) {
  inpaint::init_runtime(static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
  doctest::Context context(argc, argv);
  const int status = context.run();
  if (status == 0 && SelectedCount::selected == 0 && !context.shouldExit()) {
    std::fprintf(stderr, "no test case matches the filters given\n");
    return 1;
  }
  return status;
}
