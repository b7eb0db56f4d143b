// Reading network configs (config.json): every value is checked, and an error names
// the file and the key.
#pragma once
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "engine/error.h"

namespace inpaint {

struct ConfigReader {
  const nlohmann::json& json;
  std::string label;  // the config file, for messages

  bool has(const std::string& key) const { return json.contains(key) && !json[key].is_null(); }

  [[noreturn]] void bad(const std::string& key, const std::string& what) const {
    throw Error(label + ": '" + key + "' " + what);
  }

  int64_t integer(const std::string& key) const {
    if (!has(key)) bad(key, "is missing");
    if (!json[key].is_number_integer()) bad(key, "is not an integer");
    return json[key].get<int64_t>();
  }
  int64_t integer(const std::string& key, int64_t fallback) const {
    return has(key) ? integer(key) : fallback;
  }
  double number(const std::string& key) const {
    if (!has(key)) bad(key, "is missing");
    const auto& v = json[key];
    if (v.is_string()) {  // Python's json writes these bare; engine/json_file.h reads them so
      const std::string s = v.get<std::string>();
      if (s == "Infinity") return std::numeric_limits<double>::infinity();
      if (s == "-Infinity") return -std::numeric_limits<double>::infinity();
      if (s == "NaN") return std::numeric_limits<double>::quiet_NaN();
    }
    if (!v.is_number()) bad(key, "is not a number");
    return v.get<double>();
  }
  double number(const std::string& key, double fallback) const {
    return has(key) ? number(key) : fallback;
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
  std::vector<int64_t> integers(const std::string& key) const {
    if (!has(key) || !json[key].is_array()) bad(key, "is missing or not a list");
    std::vector<int64_t> out;
    for (const auto& v : json[key]) {
      if (!v.is_number_integer()) bad(key, "has a non-integer entry");
      out.push_back(v.get<int64_t>());
    }
    return out;
  }
  std::vector<std::string> strings(const std::string& key) const {
    if (!has(key) || !json[key].is_array()) bad(key, "is missing or not a list");
    std::vector<std::string> out;
    for (const auto& v : json[key]) {
      if (!v.is_string()) bad(key, "has a non-string entry");
      out.push_back(v.get<std::string>());
    }
    return out;
  }
  void positive(const std::string& key, int64_t v) const {
    if (v <= 0) bad(key, "must be positive, is " + std::to_string(v));
  }
};

}  // namespace inpaint
