#include "engine/model_info.h"

#include <cstdio>
#include <sstream>

#include "engine/error.h"
#include "engine/networks.h"

namespace inpaint {
namespace {

std::string human_bytes(uint64_t b) {
  char buf[32];
  if (b >= (1ull << 30)) std::snprintf(buf, sizeof buf, "%.2f GiB", b / double(1ull << 30));
  else if (b >= (1ull << 20)) std::snprintf(buf, sizeof buf, "%.1f MiB", b / double(1ull << 20));
  else std::snprintf(buf, sizeof buf, "%.1f KiB", b / 1024.0);
  return buf;
}

std::string human_count(int64_t n) {
  char buf[32];
  if (n >= 1000000) std::snprintf(buf, sizeof buf, "%.1f M", n / 1e6);
  else if (n >= 1000) std::snprintf(buf, sizeof buf, "%.1f k", n / 1e3);
  else std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(n));
  return buf;
}

}  // namespace

ModelReport inspect_model(const ModelSource& m, bool check_values) {
  ModelReport r;
  r.values_checked = check_values;
  r.path = m.path.string();
  r.format = m.single_file ? "single-file checkpoint" : "diffusers folder";
  r.architecture = m.architecture();
  r.tokenizer = m.tokenizer_dir.string();
  if (!m.tokenizer_2_dir.empty()) r.tokenizer += ", " + m.tokenizer_2_dir.string();
  r.scheduler = m.scheduler_config.value("_class_name", "?");
  r.ignored = static_cast<int64_t>(m.ignored.size());
  try {
    load_tokenizer(m);
    if (m.has("text_encoder_2")) load_tokenizer(m, true);
  } catch (const Error& e) {
    r.tokenizer_error = e.what();
  }
  for (const char* name : {"text_encoder", "text_encoder_2", "unet", "vae"}) {
    if (!m.has(name)) continue;
    const Component& c = m.component(name);
    ComponentReport cr;
    cr.name = name;
    cr.files = c.files;
    ParamLoader loader(c.tensors, name);
    try {
      declare_network(name, c.config, c.config_label, loader);
    } catch (const Error& e) {
      cr.error = e.what();
    }
    cr.parameters = loader.parameter_count();
    cr.missing = loader.missing();
    cr.wrong_shape = loader.wrong_shape();
    cr.unexpected = loader.unexpected();
    cr.unexpected.insert(cr.unexpected.end(), c.unexpected.begin(), c.unexpected.end());
    for (const auto& [pname, ref] : c.tensors) {
      cr.dtypes[dtype_name(ref.info->dtype)]++;
      cr.bytes += ref.nbytes();
      const DType d = ref.info->dtype;
      if (check_values && (d == DType::F32 || d == DType::F16 || d == DType::BF16 || d == DType::F64)) {
        const at::Tensor v = view_of(ref);
        if (!at::isfinite(v).all().item<bool>()) cr.nonfinite.push_back(pname);
        release_mapped_pages(v.data_ptr(), v.nbytes());  // a scan, not a load
      }
    }
    r.components.push_back(std::move(cr));
  }
  return r;
}

bool ModelReport::ok() const {
  if (!tokenizer_error.empty()) return false;
  for (const auto& c : components)
    if (!c.ok()) return false;
  return true;
}

nlohmann::json ModelReport::to_json() const {
  nlohmann::json j = {{"path", path}, {"format", format}, {"architecture", architecture},
                      {"tokenizer", tokenizer}, {"scheduler", scheduler},
                      {"ignored_tensors", ignored}, {"tokenizer_error", tokenizer_error},
                      {"values_checked", values_checked}, {"ok", ok()}};
  for (const auto& c : components)
    j["components"][c.name] = {{"parameters", c.parameters}, {"bytes", c.bytes},
                               {"dtypes", c.dtypes}, {"files", c.files},
                               {"missing", c.missing}, {"wrong_shape", c.wrong_shape},
                               {"unexpected", c.unexpected}, {"nonfinite", c.nonfinite}, {"error", c.error}};
  return j;
}

std::string ModelReport::to_text() const {
  std::ostringstream s;
  s << path << "\n  format:       " << format << "\n  architecture: " << architecture
    << "\n  scheduler:    " << scheduler << "\n  tokenizer:    " << tokenizer << "\n";
  if (!tokenizer_error.empty()) s << "    ERROR: " << tokenizer_error << "\n";
  for (const auto& c : components) {
    s << "  " << c.name << ": " << human_count(c.parameters) << " parameters ("
      << c.parameters << "), " << human_bytes(c.bytes) << ",";
    for (const auto& [d, n] : c.dtypes) s << " " << d << "×" << n;
    s << "\n";
    if (!c.error.empty()) s << "    ERROR: " << c.error << "\n";
    auto list = [&](const char* what, const std::vector<std::string>& items) {
      if (items.empty()) return;
      s << "    " << items.size() << " " << what << ":\n";
      for (size_t i = 0; i < items.size() && i < 10; ++i) s << "      " << items[i] << "\n";
      if (items.size() > 10) s << "      ... and " << items.size() - 10 << " more\n";
    };
    list("missing", c.missing);
    list("wrongly shaped", c.wrong_shape);
    list("holding NaN or infinite values", c.nonfinite);
    list("unexpected (ignored)", c.unexpected);
  }
  if (ignored > 0) s << "  " << ignored << " tensors outside the networks ignored (EMA, buffers, unused text layers)\n";
  if (!values_checked) s << "  (weight values not scanned for NaN/Inf: --check-values)\n";
  s << (ok() ? "  OK\n" : "  PROBLEMS: the model cannot be used as it is\n");
  return s.str();
}

ModelReport require_fitting(const ModelSource& model, const std::string& label) {
  ModelReport report = inspect_model(model);
  if (!report.ok()) throw Error(label + ": the model cannot be used as it is:\n" + report.to_text());
  return report;
}

}  // namespace inpaint
