#include "plugin/core/settings.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "engine/error.h"

namespace inpaint::plugin {
namespace {
template <size_t N>
bool terminate(char (&text)[N]) {
  const bool cut = std::find(text, text + N, '\0') == text + N;
  text[N - 1] = cut ? '\0' : text[N - 1];
  return cut;
}

template <class T>
bool clamp_to(T& v, T lo, T hi, T fallback) {
  const T before = v;
  if (!(v >= lo && v <= hi)) v = std::isnan(double(v)) ? fallback : std::clamp(v, lo, hi);
  return !(before == v);
}

template <size_t N>
void copy(char (&dst)[N], const char* src) {
  std::strncpy(dst, src ? src : "", N - 1);
  dst[N - 1] = '\0';
}

// Whole numbers arrive as doubles (Script-Fu, GIMP 2.10's floats): saturate, never wrap.
int32_t to_int(double v) {
  if (std::isnan(v)) return 0;
  return static_cast<int32_t>(std::clamp(std::round(v), -2147483648.0, 2147483647.0));
}
}  // namespace

void assign_text(Settings& s, const std::string& name, const char* value) {
  const std::string v = value ? value : "";
  if (name == "prompt") copy(s.prompt, value);
  else if (name == "negative-prompt") copy(s.negative_prompt, value);
  else if (name == "model") copy(s.model, value);
  else if (name == "scheduler") copy(s.scheduler, v == kModelScheduler ? "" : value);
  else if (name == "lora") copy(s.loras, value);
  else if (name == "vae") copy(s.taesd, v == "full" ? "" : value);  // as run --vae: full, taesd or a TAESD folder
  else if (name == "max-memory") copy(s.max_memory, value);
  else if (name == "precision") copy(s.precision, value);
  else throw Error("no text argument named " + name);
}

void assign_number(Settings& s, const std::string& name, double value) {
  const int32_t i = to_int(value);
  if (name == "steps") s.steps = i;
  else if (name == "guidance") s.guidance = value;
  else if (name == "strength") s.strength = value;
  else if (name == "seed") {
    s.random_seed = i < 0;
    s.seed = static_cast<uint32_t>(std::max(0, i));
  } else if (name == "context") s.context = i;
  else if (name == "resolution") s.resolution = i;
  else if (name == "grow") s.grow = i;
  else if (name == "feather") s.feather = i;
  else if (name == "threads") s.threads = i;
  else if (name == "sample-merged") s.sample_merged = i != 0;
  else throw Error("no number argument named " + name);
}

bool sanitize(Settings& s) {
  const Settings defaults;
  if (s.version != defaults.version) {
    s = defaults;
    return true;
  }
  bool changed = false;
  for (bool cut : {terminate(s.prompt), terminate(s.negative_prompt), terminate(s.model), terminate(s.scheduler),
                   terminate(s.max_memory), terminate(s.loras), terminate(s.taesd), terminate(s.precision)})
    changed = changed || cut;
  changed = clamp_to(s.steps, 1, 1000, defaults.steps) || changed;
  changed = clamp_to(s.guidance, 0.0, 100.0, defaults.guidance) || changed;
  changed = clamp_to(s.strength, 0.01, 1.0, defaults.strength) || changed;
  changed = clamp_to(s.random_seed, 0, 1, defaults.random_seed) || changed;
  changed = clamp_to(s.context, -1, 100000, defaults.context) || changed;
  changed = clamp_to(s.resolution, 0, 2048, defaults.resolution) || changed;
  changed = clamp_to(s.threads, 0, 1024, defaults.threads) || changed;
  changed = clamp_to(s.sample_merged, 0, 1, defaults.sample_merged) || changed;
  changed = clamp_to(s.grow, 0, 1000, defaults.grow) || changed;
  changed = clamp_to(s.feather, 0, 1000, defaults.feather) || changed;
  return changed;
}

}  // namespace inpaint::plugin
