// PNDMScheduler with skip_prk_steps (PLMS), the SD default: a linear multistep method
// over the last four noise predictions.
#include "engine/schedulers/schedulers.h"

#include <cmath>

#include "engine/error.h"

namespace inpaint {

PndmScheduler::PndmScheduler(const nlohmann::json& config)
    : Scheduler(ScheduleConfig::from_json(config, "PNDM scheduler config", false)) {
  if (config.contains("skip_prk_steps") && config["skip_prk_steps"] == false)
    throw Error("PNDM scheduler config: skip_prk_steps false (Runge-Kutta warm-up) is not supported");
}

void PndmScheduler::set_timesteps(int64_t steps) {
  num_inference_steps_ = steps;
  std::vector<double> t = trained_timesteps(steps);  // descending
  const std::vector<double> asc(t.rbegin(), t.rend());
  // plms = concat(t[:-1], t[-2:-1], t[-1:]) reversed: the second step repeats.
  std::vector<double> plms(asc.begin(), asc.end() - 1);
  if (asc.size() >= 2) plms.push_back(asc[asc.size() - 2]);
  plms.push_back(asc.back());
  timesteps_.assign(plms.rbegin(), plms.rend());
  ets_.clear();
  counter_ = 0;
  cur_sample_ = at::Tensor();
}

Scheduler::Step PndmScheduler::step(const at::Tensor& model_output, double timestep,
                                    const at::Tensor& sample, at::Generator&) {
  const double ratio = double(config_.num_train_timesteps / num_inference_steps_);
  double t = timestep, prev_t = timestep - ratio;
  if (counter_ != 1) {
    if (ets_.size() > 3) ets_.erase(ets_.begin(), ets_.end() - 3);
    ets_.push_back(model_output);
  } else {
    prev_t = timestep;
    t = timestep + ratio;
  }
  at::Tensor e = model_output, x = sample;
  const size_t n = ets_.size();
  if (n == 1 && counter_ == 0) {
    cur_sample_ = sample;
  } else if (n == 1 && counter_ == 1) {
    e = (model_output + ets_.back()) / 2;
    x = cur_sample_;
    cur_sample_ = at::Tensor();
  } else if (n == 2) {
    e = (3 * ets_[1] - ets_[0]) / 2;
  } else if (n == 3) {
    e = (23 * ets_[2] - 16 * ets_[1] + 5 * ets_[0]) / 12;
  } else {
    e = (1.0 / 24) * (55 * ets_[n - 1] - 59 * ets_[n - 2] + 37 * ets_[n - 3] - 9 * ets_[n - 4]);
  }
  const double a = alpha_cumprod(t), a_prev = alpha_cumprod(prev_t);
  const double b = 1 - a, b_prev = 1 - a_prev;
  if (config_.prediction_type == "v_prediction")
    e = e * static_cast<float>(std::sqrt(a)) + x * static_cast<float>(std::sqrt(b));
  const double sample_coeff = std::sqrt(a_prev / a);
  const double denom = a * std::sqrt(b_prev) + std::sqrt(a * b * a_prev);
  at::Tensor prev = x * static_cast<float>(sample_coeff) - e * static_cast<float>((a_prev - a) / denom);
  ++counter_;
  return {prev, {}};
}

}  // namespace inpaint
