// Reading a fixture set (../shared/fixtures/<set>): index.json and reference tensors.
#pragma once
#include <ATen/ATen.h>

#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "engine/image.h"
#include "engine/safetensors.h"

namespace test {

struct FixtureFile {
  std::shared_ptr<inpaint::SafetensorsFile> file;
  at::Tensor get(const std::string& key) const;  // a copy, so it outlives the mapping
};
FixtureFile fixture_file(const std::filesystem::path& path);

double max_abs_diff(const at::Tensor& a, const at::Tensor& b);
// An 8-bit RGB picture as [1, 3, H, W] floats in [0, 1].
at::Tensor image_tensor(const inpaint::Image& rgb);

}  // namespace test
