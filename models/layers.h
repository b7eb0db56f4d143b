// The building blocks every network shares. Each holds its parameters as stored
// (f32, f16 or bf16 views of the mapped file) and widens them to f32 at use.
#pragma once
#include <ATen/ATen.h>

#include <string>

#include "engine/weights.h"

namespace inpaint {

// f16/bf16 weights are widened just before use (no f16 convolution on CPU here).
at::Tensor widen(const at::Tensor& w);

struct Linear {
  at::Tensor weight, bias;
  Linear() = default;
  Linear(ParamLoader& p, const std::string& name, int64_t in, int64_t out, bool has_bias = true);
  at::Tensor operator()(const at::Tensor& x) const;
};

struct Conv2d {
  at::Tensor weight, bias;
  int64_t stride = 1, padding = 0;
  Conv2d() = default;
  Conv2d(ParamLoader& p, const std::string& name, int64_t in, int64_t out, int64_t kernel,
         int64_t stride = 1, int64_t padding = 0, bool has_bias = true);
  at::Tensor operator()(const at::Tensor& x) const;
};

struct GroupNorm {
  at::Tensor weight, bias;
  int64_t groups = 32;
  double eps = 1e-5;
  GroupNorm() = default;
  GroupNorm(ParamLoader& p, const std::string& name, int64_t groups, int64_t channels, double eps);
  at::Tensor operator()(const at::Tensor& x) const;
};

struct LayerNorm {
  at::Tensor weight, bias;
  int64_t dim = 0;
  double eps = 1e-5;
  LayerNorm() = default;
  LayerNorm(ParamLoader& p, const std::string& name, int64_t dim, double eps);
  at::Tensor operator()(const at::Tensor& x) const;
};

// Multi-head scaled dot-product attention on [B, N, heads*D] tensors.
// `mask` (optional) is added to the scores, e.g. a causal mask of -inf.
at::Tensor attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, int64_t heads,
                     const at::Tensor& mask = {});

}  // namespace inpaint
