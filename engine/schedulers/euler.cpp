// EulerDiscreteScheduler and EulerAncestralDiscreteScheduler (k-diffusion samplers on
// sigma = ((1 - acp) / acp)^0.5; the sample is scaled by 1 / (sigma^2 + 1)^0.5).
#include "engine/schedulers/schedulers.h"

#include <cmath>

#include "models/config.h"

namespace inpaint {

EulerScheduler::EulerScheduler(const nlohmann::json& config, bool ancestral)
    : Scheduler(ScheduleConfig::from_json(config, "Euler scheduler config", true)), ancestral_(ancestral) {
  ConfigReader r{config, "Euler scheduler config"};
  if (!ancestral) karras_ = r.boolean("use_karras_sigmas", false);
  if (r.string("interpolation_type", "linear") != "linear")
    r.bad("interpolation_type", "other than linear is not supported");
}

void EulerScheduler::set_timesteps(int64_t steps) {
  num_inference_steps_ = steps;
  timesteps_ = spaced_timesteps(steps, /*fractional_linspace=*/true);
  const std::vector<float> train = train_sigmas();
  std::vector<double> s = interp(timesteps_, train);
  if (karras_) {
    std::vector<float> log_sigmas;
    for (float v : train) log_sigmas.push_back(std::log(v));
    s = karras_sigmas(s.back(), s.front(), steps);
    timesteps_.clear();
    for (double sigma : s) timesteps_.push_back(sigma_to_t(sigma, log_sigmas));
  }
  s.push_back(0.0);
  sigmas_.clear();
  for (double v : s) sigmas_.push_back(static_cast<float>(v));
  step_index_ = -1;
}

double EulerScheduler::init_noise_sigma() const {
  double max_sigma = 0;
  for (double s : sigmas_) max_sigma = std::max(max_sigma, s);
  if (config_.timestep_spacing == "linspace" || config_.timestep_spacing == "trailing") return max_sigma;
  return static_cast<float>(std::sqrt(max_sigma * max_sigma + 1));
}

at::Tensor EulerScheduler::scale_model_input(const at::Tensor& sample, double timestep) {
  if (step_index_ < 0) step_index_ = index_for(timestep);
  const double sigma = sigmas_[step_index_];
  return sample / static_cast<float>(std::sqrt(sigma * sigma + 1));
}

Scheduler::Step EulerScheduler::step(const at::Tensor& out, double timestep, const at::Tensor& x,
                                     at::Generator& gen) {
  if (step_index_ < 0) step_index_ = index_for(timestep);
  const double sigma = sigmas_[step_index_], sigma_next = sigmas_[step_index_ + 1];
  at::Tensor x0;
  if (config_.prediction_type == "epsilon")
    x0 = x - out * static_cast<float>(sigma);
  else
    x0 = out * static_cast<float>(-sigma / std::sqrt(sigma * sigma + 1)) + x / static_cast<float>(sigma * sigma + 1);
  at::Tensor prev;
  if (ancestral_) {
    const double up = std::sqrt(sigma_next * sigma_next * (sigma * sigma - sigma_next * sigma_next) / (sigma * sigma));
    const double down = std::sqrt(sigma_next * sigma_next - up * up);
    prev = x + (x - x0) / static_cast<float>(sigma) * static_cast<float>(down - sigma);
    prev = prev + at::randn(out.sizes(), gen) * static_cast<float>(up);
  } else {
    // diffusers draws this noise even when s_churn is 0 and it goes unused: keep the
    // generator in step with it.
    (void)at::randn(out.sizes(), gen);
    prev = x + (x - x0) / static_cast<float>(sigma) * static_cast<float>(sigma_next - sigma);
  }
  ++step_index_;
  return {prev, x0};
}

at::Tensor EulerScheduler::add_noise(const at::Tensor& original, const at::Tensor& noise, double timestep) const {
  for (size_t i = 0; i < timesteps_.size(); ++i)
    if (timesteps_[i] == timestep) return original + noise * static_cast<float>(sigmas_[i]);
  return Scheduler::add_noise(original, noise, timestep);
}

}  // namespace inpaint
