// Files of our own whose data is checked at its first read rather than when opened: the
// LoRA cache's merged UNet weights, which the kept packed weights usually replace whole
// (checking 1.7 GB took 0.17 s of every LCM-LoRA run before its first step, for weights
// it never read). Code that reads weight data calls check_before_read() on it first: the
// layers where they widen or pack a weight (models/layers.cpp, models/kernels/packed_conv.cpp)
// and the loader where it widens a vector (engine/weights.cpp).
#pragma once
#include <ATen/ATen.h>

#include <functional>
#include <memory>
#include <string>

#include "engine/safetensors.h"

namespace inpaint {

// From now on, the first read of any tensor in `file` verifies the whole file's checksum
// (SafetensorsFile::verify_checksum, on all threads, its pages released as read). When
// that fails, `on_damage` runs (it removes the entry) and the read throws Error with
// `what` and the file's name. Held weakly: a file no longer used is forgotten.
void check_at_first_read(const std::shared_ptr<SafetensorsFile>& file, const std::string& what,
                         std::function<void()> on_damage);

// Throws Error when t's data lies in a file given to check_at_first_read whose checksum
// fails; verifies it there the first time. Nothing to do (one atomic load) otherwise.
void check_before_read(const at::Tensor& t);

}  // namespace inpaint
