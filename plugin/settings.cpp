#include "plugin/settings.h"

#include <algorithm>
#include <cmath>

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
}  // namespace

bool sanitize(Settings& s) {
  const Settings defaults;
  if (s.version != defaults.version) {
    s = defaults;
    return true;
  }
  bool changed = false;
  for (bool cut : {terminate(s.prompt), terminate(s.negative_prompt), terminate(s.model), terminate(s.scheduler),
                   terminate(s.max_memory), terminate(s.loras), terminate(s.taesd)})
    changed = changed || cut;
  changed = clamp_to(s.steps, 1, 1000, defaults.steps) || changed;
  changed = clamp_to(s.guidance, 0.0, 100.0, defaults.guidance) || changed;
  changed = clamp_to(s.strength, 0.01, 1.0, defaults.strength) || changed;
  changed = clamp_to(s.random_seed, 0, 1, defaults.random_seed) || changed;
  changed = clamp_to(s.context, -1, 100000, defaults.context) || changed;
  changed = clamp_to(s.resolution, 0, 2048, defaults.resolution) || changed;
  changed = clamp_to(s.threads, 0, 1024, defaults.threads) || changed;
  changed = clamp_to(s.sample_merged, 0, 1, defaults.sample_merged) || changed;
  return changed;
}

}  // namespace inpaint::plugin
