// What `inpaint info` reports about a model: architecture, per-component parameter
// counts, dtypes, bytes, and every missing / wrongly shaped / unexpected tensor.
#pragma once
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "engine/model_source.h"

namespace inpaint {

struct ComponentReport {
  std::string name;
  int64_t parameters = 0;
  uint64_t bytes = 0;
  std::map<std::string, int64_t> dtypes;  // tensors per dtype
  std::vector<std::string> files, missing, wrong_shape, unexpected;
  std::vector<std::string> nonfinite;  // tensors holding NaN/Inf (with check_values)
  std::string error;  // a config the network cannot be built from
  bool ok() const { return error.empty() && missing.empty() && wrong_shape.empty() && nonfinite.empty(); }
};

struct ModelReport {
  std::string path, format, architecture, tokenizer, scheduler;
  std::vector<ComponentReport> components;
  int64_t ignored = 0;  // single file: tensors outside the networks
  std::string tokenizer_error;  // the tokenizer does not load
  bool values_checked = false;
  bool ok() const;
  nlohmann::json to_json() const;
  std::string to_text() const;
};

// Everything `run` needs checked: configs, weights' names and shapes, tokenizer (the
// scheduler config is checked by ModelSource::open). With `check_values`, also every
// float weight for NaN/Inf (reads all of them: seconds for a full-size model).
ModelReport inspect_model(const ModelSource& model, bool check_values = false);
// inspect_model, throwing "<label>: the model cannot be used as it is:" and the report
// when they do not.
ModelReport require_fitting(const ModelSource& model, const std::string& label);

}  // namespace inpaint
