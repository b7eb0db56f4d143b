// Precompiled header: ATen is the slow part of every translation unit (~10 s each).
#include <ATen/ATen.h>
#include <nlohmann/json.hpp>
#include <filesystem>
#include <map>
#include <string>
#include <vector>
