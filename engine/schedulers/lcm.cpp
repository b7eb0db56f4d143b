// LCMScheduler (latent consistency models, also LCM-LoRA): few steps, each a
// consistency-function jump to x0 followed by fresh noise.
#include "engine/schedulers/schedulers.h"

#include <cmath>

#include "models/config.h"

namespace inpaint {

LcmScheduler::LcmScheduler(const nlohmann::json& config)
    : Scheduler(ScheduleConfig::from_json(config, "LCM scheduler config", true)) {
  ConfigReader r{config, "LCM scheduler config"};
  original_steps_ = r.integer("original_inference_steps", 50, 1, 1000);
  timestep_scaling_ = r.number("timestep_scaling", 10.0, 1e-3, 1e3);
  if (original_steps_ > config_.num_train_timesteps) r.bad("original_inference_steps", "exceeds num_train_timesteps");
}

void LcmScheduler::set_timesteps(int64_t steps) {
  const int64_t k = config_.num_train_timesteps / original_steps_;
  if (steps > original_steps_)
    throw Error("LCM scheduler: at most " + std::to_string(original_steps_) + " steps");
  // Training schedule k-1, 2k-1, ..., reversed; pick evenly spaced entries.
  timesteps_.clear();
  for (int64_t i = 0; i < steps; ++i) {
    const int64_t index = static_cast<int64_t>(std::floor(double(i) * original_steps_ / steps));
    timesteps_.push_back(double((original_steps_ - index) * k - 1));
  }
  num_inference_steps_ = steps;
  step_index_ = -1;
}

Scheduler::Step LcmScheduler::step(const at::Tensor& out, double timestep, const at::Tensor& x,
                                   at::Generator& gen) {
  if (step_index_ < 0) step_index_ = index_for(timestep);
  const bool last = step_index_ + 1 >= static_cast<int64_t>(timesteps_.size());
  const double prev_t = last ? timestep : timesteps_[step_index_ + 1];
  const double a = alpha_cumprod(timestep), a_prev = alpha_cumprod(prev_t);
  const double sigma_data = 0.5, scaled = timestep * timestep_scaling_;
  const double c_skip = sigma_data * sigma_data / (scaled * scaled + sigma_data * sigma_data);
  const double c_out = scaled / std::sqrt(scaled * scaled + sigma_data * sigma_data);
  at::Tensor x0 = config_.prediction_type == "epsilon"
                      ? (x - out * static_cast<float>(std::sqrt(1 - a))) / static_cast<float>(std::sqrt(a))
                      : x * static_cast<float>(std::sqrt(a)) - out * static_cast<float>(std::sqrt(1 - a));
  at::Tensor denoised = x0 * static_cast<float>(c_out) + x * static_cast<float>(c_skip);
  at::Tensor prev = denoised;
  if (step_index_ != num_inference_steps_ - 1)
    prev = denoised * static_cast<float>(std::sqrt(a_prev)) +
           at::randn(out.sizes(), gen) * static_cast<float>(std::sqrt(1 - a_prev));
  ++step_index_;
  return {prev, denoised};
}

}  // namespace inpaint
