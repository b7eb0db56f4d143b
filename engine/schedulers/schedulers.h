// The concrete schedulers (one .cpp each). Use make_scheduler() from scheduler.h.
#pragma once
#include "engine/error.h"
#include "engine/schedulers/scheduler.h"

namespace inpaint {

class DdimScheduler : public Scheduler {
 public:
  explicit DdimScheduler(const nlohmann::json& config);
  void set_timesteps(int64_t steps) override;
  Step step(const at::Tensor& out, double t, const at::Tensor& x, at::Generator& gen) override;
};

class PndmScheduler : public Scheduler {
 public:
  explicit PndmScheduler(const nlohmann::json& config);
  void set_timesteps(int64_t steps) override;
  Step step(const at::Tensor& out, double t, const at::Tensor& x, at::Generator& gen) override;

 private:
  std::vector<at::Tensor> ets_;
  int64_t counter_ = 0;
  at::Tensor cur_sample_;
};

class EulerScheduler : public Scheduler {
 public:
  EulerScheduler(const nlohmann::json& config, bool ancestral);
  void set_timesteps(int64_t steps) override;
  double init_noise_sigma() const override;
  at::Tensor scale_model_input(const at::Tensor& sample, double t) override;
  Step step(const at::Tensor& out, double t, const at::Tensor& x, at::Generator& gen) override;
  at::Tensor add_noise(const at::Tensor& original, const at::Tensor& noise, double t) const override;

 private:
  bool ancestral_, karras_ = false;
  int64_t step_index_ = -1;
};

class DpmSolverScheduler : public Scheduler {
 public:
  DpmSolverScheduler(const nlohmann::json& config, std::optional<bool> karras);
  void set_timesteps(int64_t steps) override;
  Step step(const at::Tensor& out, double t, const at::Tensor& x, at::Generator& gen) override;

 private:
  bool karras_ = false, lower_order_final_ = true, euler_at_final_ = false, heun_ = false;
  int64_t order_solver_ = 2, lower_order_nums_ = 0, step_index_ = -1;
  double lambda_min_clipped_;
  std::vector<at::Tensor> outputs_;
};

class LcmScheduler : public Scheduler {
 public:
  explicit LcmScheduler(const nlohmann::json& config);
  void set_timesteps(int64_t steps) override;
  Step step(const at::Tensor& out, double t, const at::Tensor& x, at::Generator& gen) override;

 private:
  int64_t original_steps_ = 50, step_index_ = -1;
  double timestep_scaling_ = 10.0;
};

}  // namespace inpaint
