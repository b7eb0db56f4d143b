// Where a network's time goes, by kind of operation, and how much arithmetic it does:
// `inpaint run --profile` and the benches. Off by default (then a timer costs one branch).
#pragma once
#include <array>
#include <chrono>
#include <cstdint>

namespace inpaint {

enum class OpClass { conv, linear, attention, norm, widen, count };
const char* op_class_name(OpClass c);

struct OpProfile {
  std::array<double, size_t(OpClass::count)> seconds{}, flops{};
  std::array<int64_t, size_t(OpClass::count)> calls{};
};

void set_op_profiling(bool on);
bool op_profiling();
OpProfile& op_profile();  // accumulated since the last reset
void reset_op_profile();

// Times one operation of class `c` doing `flops` floating-point operations. Nested
// timers (a linear layer widening its weights) count only once: the inner time is
// taken out of the outer one.
class OpTimer {
 public:
  OpTimer(OpClass c, double flops);
  ~OpTimer();
  OpTimer(const OpTimer&) = delete;
  OpTimer& operator=(const OpTimer&) = delete;

 private:
  using Clock = std::chrono::steady_clock;
  OpClass class_;
  bool active_;
  OpTimer* parent_ = nullptr;
  Clock::time_point start_;
};

}  // namespace inpaint
