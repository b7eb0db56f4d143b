// Choosing a scheduler by user-facing name or by diffusers class name.
#include "engine/schedulers/schedulers.h"

namespace inpaint {

std::vector<std::string> scheduler_names() {
  return {"ddim", "pndm", "euler", "euler_a", "dpmpp_2m", "dpmpp_2m_karras", "lcm"};
}

std::unique_ptr<Scheduler> make_scheduler_by_class(const std::string& cls, const nlohmann::json& c) {
  if (cls == "DDIMScheduler") return std::make_unique<DdimScheduler>(c);
  if (cls == "PNDMScheduler") return std::make_unique<PndmScheduler>(c);
  if (cls == "EulerDiscreteScheduler") return std::make_unique<EulerScheduler>(c, false);
  if (cls == "EulerAncestralDiscreteScheduler") return std::make_unique<EulerScheduler>(c, true);
  if (cls == "DPMSolverMultistepScheduler") return std::make_unique<DpmSolverScheduler>(c, std::nullopt);
  if (cls == "LCMScheduler") return std::make_unique<LcmScheduler>(c);
  throw Error("scheduler class '" + cls + "' is not supported");
}

std::unique_ptr<Scheduler> make_scheduler(const std::string& name, const nlohmann::json& c) {
  if (name.empty()) return make_scheduler_by_class(c.value("_class_name", "PNDMScheduler"), c);
  if (name.size() > 9 && name.compare(name.size() - 9, 9, "Scheduler") == 0)
    return make_scheduler_by_class(name, c);
  if (name == "ddim") return std::make_unique<DdimScheduler>(c);
  if (name == "pndm") return std::make_unique<PndmScheduler>(c);
  if (name == "euler") return std::make_unique<EulerScheduler>(c, false);
  if (name == "euler_a") return std::make_unique<EulerScheduler>(c, true);
  nlohmann::json dpm = c;  // DPM++ 2M: the algorithm is fixed by the name
  dpm["algorithm_type"] = "dpmsolver++";
  dpm["solver_order"] = 2;
  if (name == "dpmpp_2m") return std::make_unique<DpmSolverScheduler>(dpm, false);
  if (name == "dpmpp_2m_karras") return std::make_unique<DpmSolverScheduler>(dpm, true);
  if (name == "lcm") return std::make_unique<LcmScheduler>(c);
  std::string list;
  for (const auto& n : scheduler_names()) list += (list.empty() ? "" : ", ") + n;
  throw Error("unknown scheduler '" + name + "'; choose one of: " + list);
}

}  // namespace inpaint
