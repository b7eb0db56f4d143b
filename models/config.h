// Reading network configs (config.json): every value is checked, and an error names
// the file and the key.
#pragma once
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "engine/error.h"

namespace inpaint {

// Bounds shared by the network configs: far above any real model, low enough that
// nothing built from them can run away (SDXL: 3 levels, 2 layers, 1280 channels).
constexpr size_t kMaxLevels = 8;
constexpr int64_t kMaxLayers = 32, kMaxChannels = 8192, kMaxGroups = 1024;

struct ConfigReader {
  const nlohmann::json& json;
  std::string label;  // the config file, for messages

  bool has(const std::string& key) const { return json.contains(key) && !json[key].is_null(); }

  [[noreturn]] void bad(const std::string& key, const std::string& what) const {
    throw Error(label + ": '" + key + "' " + what);
  }

  // Every number read is checked against the range a real model can have, so a wrong or
  // absurd value fails here with the file and key, before anything is built from it.
  int64_t integer(const std::string& key, int64_t lo, int64_t hi) const {
    if (!has(key)) bad(key, "is missing");
    if (!json[key].is_number_integer()) bad(key, "is not an integer (" + json[key].dump() + ")");
    if (json[key].is_number_unsigned() && json[key].get<uint64_t>() > uint64_t(hi)) out_of_range(key, lo, hi);
    const int64_t v = json[key].get<int64_t>();
    if (v < lo || v > hi) out_of_range(key, lo, hi);
    return v;
  }
  int64_t integer(const std::string& key, int64_t fallback, int64_t lo, int64_t hi) const {
    return has(key) ? integer(key, lo, hi) : fallback;
  }
  // NaN is never in range; lo or hi may be infinite.
  double number(const std::string& key, double lo, double hi) const {
    if (!has(key)) bad(key, "is missing");
    const auto& v = json[key];
    double d = 0;
    if (v.is_string()) {  // Python's json writes these bare; engine/json_file.h reads them so
      const std::string s = v.get<std::string>();
      if (s == "Infinity") d = std::numeric_limits<double>::infinity();
      else if (s == "-Infinity") d = -std::numeric_limits<double>::infinity();
      else if (s == "NaN") d = std::numeric_limits<double>::quiet_NaN();
      else bad(key, "is not a number (" + v.dump() + ")");
    } else if (v.is_number()) {
      d = v.get<double>();
    } else {
      bad(key, "is not a number (" + v.dump() + ")");
    }
    if (!(d >= lo && d <= hi))
      bad(key, "is " + v.dump() + "; it must lie in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
    return d;
  }
  double number(const std::string& key, double fallback, double lo, double hi) const {
    return has(key) ? number(key, lo, hi) : fallback;
  }
  bool boolean(const std::string& key, bool fallback) const {
    if (!has(key)) return fallback;
    if (!json[key].is_boolean()) bad(key, "is not true or false");
    return json[key].get<bool>();
  }
  std::string string(const std::string& key, const std::string& fallback) const {
    if (!has(key)) return fallback;
    if (!json[key].is_string()) bad(key, "is not a string");
    return json[key].get<std::string>();
  }
  std::vector<int64_t> integers(const std::string& key, int64_t lo, int64_t hi, size_t max_count) const {
    if (!has(key) || !json[key].is_array()) bad(key, "is missing or not a list");
    if (json[key].empty() || json[key].size() > max_count)
      bad(key, "must have 1 to " + std::to_string(max_count) + " entries, has " + std::to_string(json[key].size()));
    std::vector<int64_t> out;
    for (const auto& v : json[key]) {
      if (!v.is_number_integer()) bad(key, "has a non-integer entry (" + v.dump() + ")");
      if ((v.is_number_unsigned() && v.get<uint64_t>() > uint64_t(hi)) || v.get<int64_t>() < lo || v.get<int64_t>() > hi)
        out_of_range(key, lo, hi);
      out.push_back(v.get<int64_t>());
    }
    return out;
  }
  std::vector<std::string> strings(const std::string& key) const {
    if (!has(key) || !json[key].is_array()) bad(key, "is missing or not a list");
    if (json[key].size() > kMaxLevels) bad(key, "has more than " + std::to_string(kMaxLevels) + " entries");
    std::vector<std::string> out;
    for (const auto& v : json[key]) {
      if (!v.is_string()) bad(key, "has a non-string entry");
      out.push_back(v.get<std::string>());
    }
    return out;
  }
  [[noreturn]] void out_of_range(const std::string& key, int64_t lo, int64_t hi) const {
    bad(key, "is " + json[key].dump() + "; it must lie in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
  }
};

}  // namespace inpaint
