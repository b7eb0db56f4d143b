#include "engine/schedulers/scheduler.h"

#include <cmath>

#include "engine/error.h"
#include "models/config.h"

namespace inpaint {

ScheduleConfig ScheduleConfig::from_json(const nlohmann::json& j, const std::string& label,
                                         bool default_set_alpha_to_one) {
  ConfigReader r{j, label};
  ScheduleConfig c;
  c.num_train_timesteps = r.integer("num_train_timesteps", 1000, 1, 100000);
  c.beta_start = r.number("beta_start", 0.0001, 0, 1);
  c.beta_end = r.number("beta_end", 0.02, 0, 1);
  c.beta_schedule = r.string("beta_schedule", "linear");
  if (r.has("trained_betas")) {
    if (!j["trained_betas"].is_array() || j["trained_betas"].size() > 100000) r.bad("trained_betas", "is not a list of betas");
    for (const auto& b : j["trained_betas"]) {
      if (!b.is_number() || !(b.get<double>() > 0 && b.get<double>() < 1)) r.bad("trained_betas", "has an entry outside (0, 1)");
      c.trained_betas.push_back(b.get<double>());
    }
    if (static_cast<int64_t>(c.trained_betas.size()) != c.num_train_timesteps)
      r.bad("trained_betas", "must have num_train_timesteps entries");
  }
  c.prediction_type = r.string("prediction_type", "epsilon");
  c.timestep_spacing = r.string("timestep_spacing", "leading");
  c.steps_offset = r.integer("steps_offset", 0, 0, 1000);
  c.set_alpha_to_one = r.boolean("set_alpha_to_one", default_set_alpha_to_one);
  if (c.prediction_type != "epsilon" && c.prediction_type != "v_prediction")
    r.bad("prediction_type", "is '" + c.prediction_type + "'; supported: epsilon, v_prediction");
  if (c.timestep_spacing != "leading" && c.timestep_spacing != "linspace" && c.timestep_spacing != "trailing")
    r.bad("timestep_spacing", "is '" + c.timestep_spacing + "'; supported: leading, linspace, trailing");
  if (c.beta_schedule != "linear" && c.beta_schedule != "scaled_linear" &&
      c.beta_schedule != "squaredcos_cap_v2" && c.trained_betas.empty())
    r.bad("beta_schedule", "is '" + c.beta_schedule + "'; supported: linear, scaled_linear, squaredcos_cap_v2");
  if (r.boolean("thresholding", false)) r.bad("thresholding", "is not supported");
  if (r.boolean("rescale_betas_zero_snr", false)) r.bad("rescale_betas_zero_snr", "is not supported");
  return c;
}

Scheduler::Scheduler(ScheduleConfig c) : config_(std::move(c)) {
  const int64_t n = config_.num_train_timesteps;
  at::Tensor betas;
  if (!config_.trained_betas.empty()) {
    betas = at::tensor(config_.trained_betas).to(at::kFloat);
  } else if (config_.beta_schedule == "linear") {
    betas = at::linspace(config_.beta_start, config_.beta_end, n, at::kFloat);
  } else if (config_.beta_schedule == "scaled_linear") {
    betas = at::linspace(std::sqrt(config_.beta_start), std::sqrt(config_.beta_end), n, at::kFloat).pow(2);
  } else {  // squaredcos_cap_v2 (Glide cosine schedule)
    std::vector<double> b;
    auto alpha_bar = [](double t) { return std::pow(std::cos((t + 0.008) / 1.008 * M_PI / 2), 2); };
    for (int64_t i = 0; i < n; ++i)
      b.push_back(std::min(1 - alpha_bar(double(i + 1) / n) / alpha_bar(double(i) / n), 0.999));
    betas = at::tensor(b).to(at::kFloat);
  }
  const at::Tensor acp = at::cumprod(1.0 - betas, 0).contiguous();
  alphas_cumprod_.assign(acp.data_ptr<float>(), acp.data_ptr<float>() + n);
  final_alpha_cumprod_ = config_.set_alpha_to_one ? 1.0f : alphas_cumprod_[0];
}

double Scheduler::alpha_cumprod(double timestep) const {
  const int64_t t = static_cast<int64_t>(std::llround(timestep));
  if (t < 0) return final_alpha_cumprod_;
  if (t >= static_cast<int64_t>(alphas_cumprod_.size()))
    throw Error("scheduler: timestep " + std::to_string(t) + " outside the training schedule");
  return alphas_cumprod_[t];
}

std::vector<float> Scheduler::train_sigmas() const {
  std::vector<float> s;
  for (float a : alphas_cumprod_) s.push_back(std::sqrt((1.0f - a) / a));
  return s;
}

std::vector<double> Scheduler::spaced_timesteps(int64_t steps, bool fractional_linspace) const {
  const int64_t n = config_.num_train_timesteps;
  std::vector<double> t;
  if (config_.timestep_spacing == "linspace") {
    for (int64_t i = steps - 1; i >= 0; --i) {
      const double v = steps == 1 ? 0.0 : double(n - 1) * i / (steps - 1);
      t.push_back(fractional_linspace ? static_cast<float>(v) : std::nearbyint(v));
    }
  } else if (config_.timestep_spacing == "leading") {
    const int64_t ratio = n / steps;
    for (int64_t i = steps - 1; i >= 0; --i) t.push_back(double(i * ratio + config_.steps_offset));
  } else {  // trailing
    const double ratio = double(n) / steps;
    for (double v = n; v > 0; v -= ratio) t.push_back(std::nearbyint(v) - 1);
  }
  return t;
}

std::vector<double> Scheduler::trained_timesteps(int64_t steps) const {
  std::vector<double> t = spaced_timesteps(steps);
  const int64_t n = config_.num_train_timesteps;
  if (t.empty() || t.front() < double(n)) return t;
  int64_t most = steps - 1;
  while (most > 1 && spaced_timesteps(most).front() >= double(n)) --most;
  throw Error(std::to_string(steps) + " steps start this scheduler at timestep " +
              std::to_string(int64_t(t.front())) + ", past the model's last trained one (" + std::to_string(n - 1) +
              "; steps_offset " + std::to_string(config_.steps_offset) + "): use at most " + std::to_string(most) +
              " steps, or another scheduler");
}

int64_t Scheduler::index_for(double timestep) const {
  std::vector<int64_t> hits;
  for (size_t i = 0; i < timesteps_.size(); ++i)
    if (timesteps_[i] == timestep) hits.push_back(static_cast<int64_t>(i));
  if (hits.empty()) throw Error("scheduler: timestep " + std::to_string(timestep) + " is not in the schedule");
  return hits.size() > 1 ? hits[1] : hits[0];
}

at::Tensor Scheduler::scale_model_input(const at::Tensor& sample, double) { return sample; }

at::Tensor Scheduler::add_noise(const at::Tensor& original, const at::Tensor& noise, double timestep) const {
  const double a = alpha_cumprod(timestep);
  return original * static_cast<float>(std::sqrt(a)) + noise * static_cast<float>(std::sqrt(1.0 - a));
}

std::vector<double> interp(const std::vector<double>& x, const std::vector<float>& fp) {
  std::vector<double> out;
  for (double v : x) {
    if (v <= 0) {
      out.push_back(fp.front());
      continue;
    }
    const size_t i = static_cast<size_t>(std::floor(v));
    if (i + 1 >= fp.size()) {
      out.push_back(fp.back());
      continue;
    }
    const double w = v - i;
    out.push_back(fp[i] + (double(fp[i + 1]) - double(fp[i])) * w);
  }
  return out;
}

std::vector<double> karras_sigmas(double sigma_min, double sigma_max, int64_t steps) {
  const double rho = 7.0, lo = std::pow(sigma_min, 1 / rho), hi = std::pow(sigma_max, 1 / rho);
  std::vector<double> s;
  for (int64_t i = 0; i < steps; ++i) {
    const double ramp = steps == 1 ? 0.0 : double(i) / (steps - 1);
    s.push_back(std::pow(hi + ramp * (lo - hi), rho));
  }
  return s;
}

double sigma_to_t(double sigma, const std::vector<float>& log_sigmas) {
  const double log_sigma = std::log(std::max(sigma, 1e-10));
  // The last index whose log-sigma is <= log_sigma, kept below the end.
  int64_t low = 0;
  for (size_t i = 0; i < log_sigmas.size(); ++i)
    if (log_sigma - log_sigmas[i] >= 0) low = static_cast<int64_t>(i);
  low = std::min<int64_t>(low, static_cast<int64_t>(log_sigmas.size()) - 2);
  const double lo = log_sigmas[low], hi = log_sigmas[low + 1];
  const double w = std::clamp((lo - log_sigma) / (lo - hi), 0.0, 1.0);
  return (1 - w) * low + w * (low + 1);
}

}  // namespace inpaint
