// DDIMScheduler (eta = 0: deterministic).
#include "engine/schedulers/schedulers.h"

#include <cmath>

namespace inpaint {

DdimScheduler::DdimScheduler(const nlohmann::json& config)
    : Scheduler(ScheduleConfig::from_json(config, "DDIM scheduler config", true)) {}

void DdimScheduler::set_timesteps(int64_t steps) {
  num_inference_steps_ = steps;
  timesteps_ = trained_timesteps(steps);
}

Scheduler::Step DdimScheduler::step(const at::Tensor& eps, double t, const at::Tensor& x, at::Generator&) {
  const double prev_t = t - double(config_.num_train_timesteps / num_inference_steps_);
  const double a = alpha_cumprod(t), a_prev = alpha_cumprod(prev_t), b = 1 - a;
  at::Tensor x0, e;
  if (config_.prediction_type == "epsilon") {
    x0 = (x - eps * static_cast<float>(std::sqrt(b))) / static_cast<float>(std::sqrt(a));
    e = eps;
  } else {  // v_prediction
    x0 = x * static_cast<float>(std::sqrt(a)) - eps * static_cast<float>(std::sqrt(b));
    e = eps * static_cast<float>(std::sqrt(a)) + x * static_cast<float>(std::sqrt(b));
  }
  at::Tensor prev = x0 * static_cast<float>(std::sqrt(a_prev)) + e * static_cast<float>(std::sqrt(1 - a_prev));
  return {prev, x0};
}

}  // namespace inpaint
