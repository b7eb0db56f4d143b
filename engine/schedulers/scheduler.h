// The scheduler interface (diffusers' semantics) and the noise schedule they share.
// Each scheduler is one small file; make_scheduler() picks one by user-facing name
// or by diffusers class name, configured from scheduler_config.json.
#pragma once
#include <ATen/ATen.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace inpaint {

struct ScheduleConfig {
  int64_t num_train_timesteps = 1000;
  double beta_start = 0.0001, beta_end = 0.02;
  std::string beta_schedule = "linear";
  std::vector<double> trained_betas;
  std::string prediction_type = "epsilon";  // or v_prediction
  std::string timestep_spacing = "leading";
  int64_t steps_offset = 0;
  bool set_alpha_to_one = true;
  static ScheduleConfig from_json(const nlohmann::json& config, const std::string& label,
                                  bool default_set_alpha_to_one);
};

class Scheduler {
 public:
  struct Step {
    at::Tensor prev_sample;
    at::Tensor pred_original_sample;  // "denoised" for LCM; undefined where not computed
  };

  virtual ~Scheduler() = default;
  virtual void set_timesteps(int64_t steps) = 0;
  virtual double init_noise_sigma() const { return 1.0; }
  virtual at::Tensor scale_model_input(const at::Tensor& sample, double timestep);
  // `generator` is used by the stochastic schedulers, in diffusers' order of draws.
  virtual Step step(const at::Tensor& model_output, double timestep, const at::Tensor& sample,
                    at::Generator& generator) = 0;
  // The noised sample at `timestep` (img2img start, masked-latent blending).
  virtual at::Tensor add_noise(const at::Tensor& original, const at::Tensor& noise, double timestep) const;

  const std::vector<double>& timesteps() const { return timesteps_; }
  const std::vector<double>& sigmas() const { return sigmas_; }  // empty for DDPM-style ones
  int64_t order() const { return order_; }  // UNet calls per timestep entry (PNDM: 1)
  const ScheduleConfig& schedule() const { return config_; }

 protected:
  explicit Scheduler(ScheduleConfig config);
  double alpha_cumprod(double timestep) const;  // at an integer training step
  std::vector<float> train_sigmas() const;      // ((1 - acp) / acp)^0.5 in float32
  // The spacing of diffusers' set_timesteps for DDIM/PNDM/Euler ("linspace", "leading",
  // "trailing"), descending. Euler keeps linspace steps fractional (as float32) rather
  // than rounded: `fractional_linspace`.
  std::vector<double> spaced_timesteps(int64_t steps, bool fractional_linspace = false) const;
  // spaced_timesteps(steps), refused with the step count that works when its first
  // timestep is past the last trained one ("leading" spacing, steps_offset 1, steps near
  // num_train_timesteps): said at set-up, not at the first step. For schedulers that read
  // alphas_cumprod at the timesteps themselves (DDIM, PNDM).
  std::vector<double> trained_timesteps(int64_t steps) const;
  // Index of `timestep` in timesteps_: first match, or the second when it repeats (diffusers).
  int64_t index_for(double timestep) const;

  ScheduleConfig config_;
  std::vector<float> alphas_cumprod_;
  float final_alpha_cumprod_ = 1.0f;
  std::vector<double> timesteps_, sigmas_;
  int64_t num_inference_steps_ = 0, order_ = 1;
};

// name: ddim, pndm, euler, euler_a, dpmpp_2m, dpmpp_2m_karras, lcm (empty: the model's own)
std::unique_ptr<Scheduler> make_scheduler(const std::string& name, const nlohmann::json& config);
// By diffusers class name (DDIMScheduler, ...), all options from `config`.
std::unique_ptr<Scheduler> make_scheduler_by_class(const std::string& cls, const nlohmann::json& config);
std::vector<std::string> scheduler_names();

// Helpers shared by the sigma-based schedulers (numpy semantics).
std::vector<double> interp(const std::vector<double>& x, const std::vector<float>& fp);
std::vector<double> karras_sigmas(double sigma_min, double sigma_max, int64_t steps);
double sigma_to_t(double sigma, const std::vector<float>& log_sigmas);

}  // namespace inpaint
