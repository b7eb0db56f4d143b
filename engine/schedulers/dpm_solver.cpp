// DPMSolverMultistepScheduler, algorithm dpmsolver++ of order 1 or 2 (DPM++ 2M), with
// or without Karras sigmas. Works on data predictions x0; lambda = log(alpha / sigma).
#include "engine/schedulers/schedulers.h"

#include <cmath>

#include "models/config.h"

namespace inpaint {
namespace {
struct AlphaSigma {
  double alpha, sigma, lambda;
};
AlphaSigma alpha_sigma(double sigma) {
  const double a = 1.0 / std::sqrt(sigma * sigma + 1.0), s = sigma * a;
  return {a, s, std::log(a) - std::log(s)};
}
}  // namespace

DpmSolverScheduler::DpmSolverScheduler(const nlohmann::json& config, std::optional<bool> karras)
    : Scheduler(ScheduleConfig::from_json(config, "DPM-Solver scheduler config", true)) {
  ConfigReader r{config, "DPM-Solver scheduler config"};
  karras_ = karras ? *karras : r.boolean("use_karras_sigmas", false);
  order_solver_ = r.integer("solver_order", 2, 1, 3);
  lower_order_final_ = r.boolean("lower_order_final", true);
  euler_at_final_ = r.boolean("euler_at_final", false);
  heun_ = r.string("solver_type", "midpoint") == "heun";
  lambda_min_clipped_ = r.number("lambda_min_clipped", -std::numeric_limits<double>::infinity(),
                                -std::numeric_limits<double>::infinity(), 100);
  const std::string algorithm = r.string("algorithm_type", "dpmsolver++");
  if (algorithm != "dpmsolver++") r.bad("algorithm_type", "is '" + algorithm + "'; supported: dpmsolver++");
  if (order_solver_ != 1 && order_solver_ != 2) r.bad("solver_order", "must be 1 or 2");
  if (r.boolean("use_lu_lambdas", false)) r.bad("use_lu_lambdas", "is not supported");
}

void DpmSolverScheduler::set_timesteps(int64_t steps) {
  const int64_t n = config_.num_train_timesteps;
  // Drop the training steps whose lambda is below lambda_min_clipped.
  int64_t clipped = 0;
  for (int64_t i = n - 1; i >= 0; --i) {
    const double a = alphas_cumprod_[i];
    if (0.5 * std::log(a) - 0.5 * std::log(1 - a) >= lambda_min_clipped_) break;
    ++clipped;
  }
  const int64_t last = n - clipped;
  std::vector<double> t;
  if (config_.timestep_spacing == "linspace") {
    for (int64_t i = steps; i >= 1; --i) t.push_back(std::nearbyint(double(last - 1) * i / steps));
  } else if (config_.timestep_spacing == "leading") {
    const int64_t ratio = last / (steps + 1);
    for (int64_t i = steps; i >= 1; --i) t.push_back(double(i * ratio + config_.steps_offset));
  } else {
    const double ratio = double(n) / steps;
    for (double v = last; v > 0; v -= ratio) t.push_back(std::nearbyint(v) - 1);
  }
  const std::vector<float> train = train_sigmas();
  std::vector<double> s;
  if (karras_) {
    std::vector<float> log_sigmas;
    for (float v : train) log_sigmas.push_back(std::log(v));
    s = karras_sigmas(train.front(), train.back(), steps);
    t.clear();
    for (double sigma : s) t.push_back(std::nearbyint(sigma_to_t(sigma, log_sigmas)));
    s.push_back(s.back());
  } else {
    s = interp(t, train);
    s.push_back(std::sqrt((1.0 - alphas_cumprod_[0]) / alphas_cumprod_[0]));
  }
  timesteps_ = t;
  sigmas_.clear();
  for (double v : s) sigmas_.push_back(static_cast<float>(v));
  num_inference_steps_ = static_cast<int64_t>(timesteps_.size());
  outputs_.assign(2, at::Tensor());
  lower_order_nums_ = 0;
  step_index_ = -1;
}

Scheduler::Step DpmSolverScheduler::step(const at::Tensor& out, double timestep, const at::Tensor& x,
                                         at::Generator&) {
  if (step_index_ < 0) {
    bool found = false;
    for (double v : timesteps_) found = found || v == timestep;
    step_index_ = found ? index_for(timestep) : static_cast<int64_t>(timesteps_.size()) - 1;
  }
  const int64_t count = static_cast<int64_t>(timesteps_.size());
  const bool final_first = step_index_ == count - 1 && (euler_at_final_ || (lower_order_final_ && count < 15));

  const AlphaSigma s0 = alpha_sigma(sigmas_[step_index_]);
  at::Tensor x0 = config_.prediction_type == "epsilon"
                      ? (x - out * static_cast<float>(s0.sigma)) / static_cast<float>(s0.alpha)
                      : x * static_cast<float>(s0.alpha) - out * static_cast<float>(s0.sigma);
  outputs_[0] = outputs_[1];
  outputs_[1] = x0;

  const AlphaSigma st = alpha_sigma(sigmas_[step_index_ + 1]);
  const double h = st.lambda - s0.lambda;
  const float coeff = static_cast<float>(st.alpha * (std::exp(-h) - 1.0));
  at::Tensor prev;
  // (Orders above 2 are refused, so the second-order update is the only other one.)
  if (order_solver_ == 1 || lower_order_nums_ < 1 || final_first) {
    prev = x * static_cast<float>(st.sigma / s0.sigma) - x0 * coeff;
  } else {
    const AlphaSigma s1 = alpha_sigma(sigmas_[step_index_ - 1]);
    const double r0 = (s0.lambda - s1.lambda) / h;
    const at::Tensor d0 = outputs_[1], d1 = (outputs_[1] - outputs_[0]) * static_cast<float>(1.0 / r0);
    if (heun_)
      prev = x * static_cast<float>(st.sigma / s0.sigma) - d0 * coeff +
             d1 * static_cast<float>(st.alpha * ((std::exp(-h) - 1.0) / h + 1.0));
    else
      prev = x * static_cast<float>(st.sigma / s0.sigma) - d0 * coeff - d1 * (0.5f * coeff);
  }
  if (lower_order_nums_ < order_solver_) ++lower_order_nums_;
  ++step_index_;
  return {prev, x0};
}

}  // namespace inpaint
