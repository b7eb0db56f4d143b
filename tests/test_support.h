// Helpers shared by the tests: where ../shared is, and temporary folders.
#pragma once
#include <doctest/doctest.h>

#include <filesystem>
#include <string>

namespace test {

// ../shared beside the repository (or $INPAINT_SHARED). Returns an empty path when it
// is missing: the caller skips with a visible message; under CI=true that is a failure.
std::filesystem::path shared_dir();
// Like shared_dir() but for one sub-path; empty when missing (message printed).
std::filesystem::path shared(const std::string& sub);
// A fresh empty folder under the build's temporary area, removed at exit.
std::filesystem::path temp_dir(const std::string& name);
// The built `inpaint` executable.
std::string inpaint_exe();
// Runs a shell command, returns its exit status; stdout+stderr go to *output.
int run(const std::string& command, std::string* output = nullptr);

}  // namespace test

// Skips the rest of a test case when a shared asset is missing (failing under CI=true).
#define REQUIRE_SHARED(path_var, sub)                \
  const std::filesystem::path path_var = test::shared(sub); \
  if (path_var.empty()) return
