#include "models/layers.h"

#include <cmath>

namespace inpaint {

at::Tensor widen(const at::Tensor& w) {
  if (!w.defined() || w.scalar_type() == at::kFloat) return w;
  return w.to(at::kFloat);
}

Linear::Linear(ParamLoader& p, const std::string& name, int64_t in, int64_t out, bool has_bias) {
  weight = p.take(join(name, "weight"), {out, in});
  if (has_bias) bias = p.take(join(name, "bias"), {out});
}

at::Tensor Linear::operator()(const at::Tensor& x) const {
  return at::linear(x, widen(weight), widen(bias));
}

Conv2d::Conv2d(ParamLoader& p, const std::string& name, int64_t in, int64_t out, int64_t kernel,
               int64_t stride_, int64_t padding_, bool has_bias)
    : stride(stride_), padding(padding_) {
  weight = p.take(join(name, "weight"), {out, in, kernel, kernel});
  if (has_bias) bias = p.take(join(name, "bias"), {out});
}

at::Tensor Conv2d::operator()(const at::Tensor& x) const {
  return at::conv2d(x, widen(weight), widen(bias), {stride, stride}, {padding, padding});
}

GroupNorm::GroupNorm(ParamLoader& p, const std::string& name, int64_t groups_, int64_t channels,
                     double eps_)
    : groups(groups_), eps(eps_) {
  weight = p.take(join(name, "weight"), {channels});
  bias = p.take(join(name, "bias"), {channels});
}

at::Tensor GroupNorm::operator()(const at::Tensor& x) const {
  return at::group_norm(x, groups, widen(weight), widen(bias), eps);
}

LayerNorm::LayerNorm(ParamLoader& p, const std::string& name, int64_t dim_, double eps_)
    : dim(dim_), eps(eps_) {
  weight = p.take(join(name, "weight"), {dim});
  bias = p.take(join(name, "bias"), {dim});
}

at::Tensor LayerNorm::operator()(const at::Tensor& x) const {
  return at::layer_norm(x, {dim}, widen(weight), widen(bias), eps);
}

namespace {
// Scores of one query chunk are at most this many floats (16 MiB): peak memory is
// bounded by the chunk, not by tokens^2, and the buffers stay small enough to reuse.
constexpr int64_t kMaxScoreElements = 4 << 20;
}  // namespace

at::Tensor attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, int64_t heads,
                     const at::Tensor& mask) {
  const int64_t b = q.size(0), nq = q.size(1), nk = k.size(1), c = q.size(2);
  const int64_t d = c / heads;
  auto split = [&](const at::Tensor& t, int64_t n) {
    return t.reshape({b, n, heads, d}).permute({0, 2, 1, 3}).reshape({b * heads, n, d});
  };
  const double scale = 1.0 / std::sqrt(static_cast<double>(d));
  const at::Tensor qs = split(q, nq), kt = split(k, nk).transpose(1, 2), vs = split(v, nk);
  const int64_t chunk = std::max<int64_t>(1, std::min(nq, kMaxScoreElements / std::max<int64_t>(1, b * heads * nk)));
  at::Tensor out = at::empty({b * heads, nq, d}, q.options());
  for (int64_t start = 0; start < nq; start += chunk) {
    const int64_t len = std::min(chunk, nq - start);
    // bmm then scale: libtorch 1.13's baddbmm with beta=0 can read uninitialised memory.
    at::Tensor scores = at::bmm(qs.narrow(1, start, len), kt).mul_(scale);
    if (mask.defined()) scores.add_(mask.narrow(0, start, len));
    out.narrow(1, start, len).copy_(at::bmm(at::softmax(scores, -1), vs));
  }
  return out.reshape({b, heads, nq, d}).permute({0, 2, 1, 3}).reshape({b, nq, c});
}

}  // namespace inpaint
