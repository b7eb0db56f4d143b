#include "models/op_profile.h"

namespace inpaint {
namespace {
bool g_on = false;
OpProfile g_profile;
thread_local OpTimer* g_current = nullptr;
}  // namespace

const char* op_class_name(OpClass c) {
  static const char* names[] = {"convolution", "linear", "attention", "normalisation", "weight widening"};
  return names[size_t(c)];
}

void set_op_profiling(bool on) { g_on = on; }
bool op_profiling() { return g_on; }
OpProfile& op_profile() { return g_profile; }
void reset_op_profile() { g_profile = OpProfile{}; }

OpTimer::OpTimer(OpClass c, double flops) : class_(c), active_(g_on) {
  if (!active_) return;
  const auto now = Clock::now();
  parent_ = g_current;
  if (parent_) {  // the parent's time so far is its own; it restarts when this one ends
    g_profile.seconds[size_t(parent_->class_)] += std::chrono::duration<double>(now - parent_->start_).count();
  }
  g_current = this;
  g_profile.flops[size_t(c)] += flops;
  ++g_profile.calls[size_t(c)];
  start_ = now;
}

OpTimer::~OpTimer() {
  if (!active_) return;
  const auto now = Clock::now();
  g_profile.seconds[size_t(class_)] += std::chrono::duration<double>(now - start_).count();
  g_current = parent_;
  if (parent_) parent_->start_ = now;
}

}  // namespace inpaint
