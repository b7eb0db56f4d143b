#include "engine/patchmatch.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "engine/error.h"

namespace inpaint {
namespace {

constexpr int kMinLevelSide = 32;  // the coarsest level is about this small
constexpr int kStripRows = 32;     // rows searched by one task: fixed, so results don't depend on threads
constexpr int32_t kNone = -1;

uint64_t splitmix(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// Pixels within `r` (a square) of a non-zero pixel: two passes of running counts.
std::vector<uint8_t> dilate(const std::vector<uint8_t>& in, int w, int h, int r) {
  std::vector<uint8_t> rows(in.size()), out(in.size());
  for (int y = 0; y < h; ++y) {
    const uint8_t* s = &in[size_t(y) * w];
    int count = 0;
    for (int x = 0; x < std::min(r, w); ++x) count += s[x] != 0;
    for (int x = 0; x < w; ++x) {
      if (x + r < w) count += s[x + r] != 0;
      if (x - r - 1 >= 0) count -= s[x - r - 1] != 0;
      rows[size_t(y) * w + x] = count > 0;
    }
  }
  for (int x = 0; x < w; ++x) {
    int count = 0;
    for (int y = 0; y < std::min(r, h); ++y) count += rows[size_t(y) * w + x];
    for (int y = 0; y < h; ++y) {
      if (y + r < h) count += rows[size_t(y + r) * w + x];
      if (y - r - 1 >= 0) count -= rows[size_t(y - r - 1) * w + x];
      out[size_t(y) * w + x] = count > 0;
    }
  }
  return out;
}

// One level of the pyramid.
struct Level {
  int w = 0, h = 0;
  std::vector<uint8_t> rgb;      // w*h*3
  std::vector<uint8_t> hole;     // 1: to fill
  std::vector<uint8_t> target;   // the patch around this pixel touches the hole
  std::vector<uint8_t> source;   // a patch centred here lies inside the picture and outside the hole
  std::vector<int32_t> sources;  // indices of the source centres

  void classify(int r) {
    target = dilate(hole, w, h, r);
    source.assign(size_t(w) * h, 0);
    sources.clear();
    for (int y = r; y < h - r; ++y)
      for (int x = r; x < w - r; ++x) {
        const int32_t i = y * w + x;
        if (!target[i]) source[i] = 1, sources.push_back(i);
      }
  }
  size_t hole_count() const { return size_t(std::count(hole.begin(), hole.end(), 1)); }
};

// Half the size: a pixel is in the hole when any of its four is; known colours are the
// mean of the known ones.
Level downsample(const Level& f) {
  Level c;
  c.w = (f.w + 1) / 2, c.h = (f.h + 1) / 2;
  c.rgb.assign(size_t(c.w) * c.h * 3, 0);
  c.hole.assign(size_t(c.w) * c.h, 0);
  for (int y = 0; y < c.h; ++y)
    for (int x = 0; x < c.w; ++x) {
      int sum[3] = {0, 0, 0}, n = 0;
      bool hole = false;
      for (int dy = 0; dy < 2; ++dy)
        for (int dx = 0; dx < 2; ++dx) {
          const int fx = std::min(2 * x + dx, f.w - 1), fy = std::min(2 * y + dy, f.h - 1);
          const size_t i = size_t(fy) * f.w + fx;
          if (f.hole[i]) { hole = true; continue; }
          for (int k = 0; k < 3; ++k) sum[k] += f.rgb[i * 3 + k];
          ++n;
        }
      const size_t o = size_t(y) * c.w + x;
      c.hole[o] = hole;
      if (n) for (int k = 0; k < 3; ++k) c.rgb[o * 3 + k] = uint8_t((sum[k] + n / 2) / n);
    }
  return c;
}

// A first guess for the coarsest hole: layer by layer from its edge, the mean of the
// already known neighbours.
void onion_peel(Level& l) {
  std::vector<uint8_t> known(l.hole.size());
  for (size_t i = 0; i < known.size(); ++i) known[i] = !l.hole[i];
  for (bool changed = true; changed;) {
    changed = false;
    std::vector<uint8_t> next = known;
    for (int y = 0; y < l.h; ++y)
      for (int x = 0; x < l.w; ++x) {
        const size_t i = size_t(y) * l.w + x;
        if (known[i]) continue;
        int sum[3] = {0, 0, 0}, n = 0;
        for (int dy = -1; dy <= 1; ++dy)
          for (int dx = -1; dx <= 1; ++dx) {
            const int nx = x + dx, ny = y + dy;
            if (nx < 0 || ny < 0 || nx >= l.w || ny >= l.h || !known[size_t(ny) * l.w + nx]) continue;
            for (int k = 0; k < 3; ++k) sum[k] += l.rgb[(size_t(ny) * l.w + nx) * 3 + k];
            ++n;
          }
        if (!n) continue;
        for (int k = 0; k < 3; ++k) l.rgb[i * 3 + k] = uint8_t((sum[k] + n / 2) / n);
        next[i] = 1;
        changed = true;
      }
    known.swap(next);
  }
}

// The nearest-neighbour field of one level: for every target pixel, the centre of the
// most similar source patch and their distance.
struct Field {
  std::vector<int32_t> match;
  std::vector<int32_t> dist;
};

class Matcher {
 public:
  Matcher(Level& level, int r) : l_(level), r_(r) {}

  // Sum of squared colour differences between the patches at t and s, over the part of
  // t's patch inside the picture (s's is always inside); stops once above `bound`.
  int32_t distance(int32_t t, int32_t s, int32_t bound) const {
    const int w = l_.w, tx = t % w, ty = t / w, sx = s % w, sy = s / w;
    const int x0 = std::max(-r_, -tx), x1 = std::min(r_, w - 1 - tx);
    const int y0 = std::max(-r_, -ty), y1 = std::min(r_, l_.h - 1 - ty);
    const int n = (x1 - x0 + 1) * 3;
    int32_t d = 0;
    for (int dy = y0; dy <= y1; ++dy) {
      const uint8_t* a = &l_.rgb[(size_t(ty + dy) * w + tx + x0) * 3];
      const uint8_t* b = &l_.rgb[(size_t(sy + dy) * w + sx + x0) * 3];
      for (int k = 0; k < n; ++k) {
        const int32_t e = int32_t(a[k]) - int32_t(b[k]);
        d += e * e;
      }
      if (d >= bound) return d;
    }
    return d;
  }

  // One PatchMatch pass over rows [y0, y1): propagation from the previous pixel and
  // row (within these rows only, so strips can run in parallel), then random search.
  void search(Field& f, int y0, int y1, bool forward, uint64_t rng) const {
    const int w = l_.w, h = l_.h, step = forward ? 1 : -1;
    for (int yi = 0; yi < y1 - y0; ++yi) {
      const int y = forward ? y0 + yi : y1 - 1 - yi;
      for (int xi = 0; xi < w; ++xi) {
        const int x = forward ? xi : w - 1 - xi;
        const int32_t t = y * w + x;
        if (!l_.target[t]) continue;
        int32_t best = f.match[t];
        int32_t bd = distance(t, best, std::numeric_limits<int32_t>::max());
        auto consider = [&](int32_t s) {
          if (s == best || !l_.source[s]) return;
          const int32_t d = distance(t, s, bd);
          if (d < bd) bd = d, best = s;
        };
        // The neighbour's match, shifted by the step: continues a coherent copy.
        const int px = x - step, py = y - step;
        if (px >= 0 && px < w && l_.target[t - step]) {
          const int32_t s = f.match[t - step];
          const int sx = s % w + step;
          if (sx >= 0 && sx < w) consider(s + step);
        }
        if (py >= y0 && py < y1 && py < h && l_.target[t - step * w]) {
          const int32_t s = f.match[t - step * w];
          const int sy = s / w + step;
          if (sy >= 0 && sy < h) consider(s + step * w);
        }
        // Random search in windows halving from the whole level down to one pixel.
        for (int radius = std::max(w, h); radius >= 1; radius /= 2) {
          const uint64_t u = splitmix(rng);
          const int bx = best % w, by = best / w;
          const int cx = std::clamp(bx + int(u % uint64_t(2 * radius + 1)) - radius, r_, w - 1 - r_);
          const int cy = std::clamp(by + int((u >> 32) % uint64_t(2 * radius + 1)) - radius, r_, h - 1 - r_);
          consider(cy * w + cx);
        }
        f.match[t] = best;
        f.dist[t] = bd;
      }
    }
  }

  void measure(Field& f) const {
    at::parallel_for(0, l_.h, 16, [&](int64_t begin, int64_t end) {
      for (int32_t t = int32_t(begin) * l_.w; t < int32_t(end) * l_.w; ++t)
        if (l_.target[t]) f.dist[t] = distance(t, f.match[t], std::numeric_limits<int32_t>::max());
    });
  }

  // Every hole pixel becomes the weighted mean of what the patches covering it copy
  // there; close matches weigh more. Sources never overlap the hole, so this can write
  // in place.
  void vote(const Field& f) const {
    const int w = l_.w, h = l_.h;
    std::vector<int32_t> ds;
    for (size_t i = 0; i < f.dist.size(); ++i)
      if (l_.target[i]) ds.push_back(f.dist[i]);
    if (ds.empty()) return;
    // The scale of the weights: a low quantile of the match distances keeps textures sharp.
    auto q = ds.begin() + std::ptrdiff_t(ds.size() / 4);
    std::nth_element(ds.begin(), q, ds.end());
    const double scale = 1.0 / (2.0 * std::max<double>(1.0, *q));
    std::vector<float> weight(f.dist.size(), 0.0f);
    at::parallel_for(0, int64_t(weight.size()), 4096, [&](int64_t begin, int64_t end) {
      for (int64_t t = begin; t < end; ++t)
        if (l_.target[t]) weight[t] = float(std::exp(-double(f.dist[t]) * scale));
    });
    at::parallel_for(0, h, 16, [&](int64_t begin, int64_t end) {
      for (int y = int(begin); y < int(end); ++y)
        for (int x = 0; x < w; ++x) {
          const int32_t p = y * w + x;
          if (!l_.hole[p]) continue;
          float acc[3] = {0, 0, 0}, plain[3] = {0, 0, 0}, total = 0;
          int n = 0;
          for (int dy = -r_; dy <= r_; ++dy)
            for (int dx = -r_; dx <= r_; ++dx) {
              const int tx = x - dx, ty = y - dy;
              if (tx < 0 || ty < 0 || tx >= w || ty >= h) continue;
              const int32_t t = ty * w + tx;
              const uint8_t* src = &l_.rgb[size_t(f.match[t] + dy * w + dx) * 3];
              const float wt = weight[t];
              for (int k = 0; k < 3; ++k) {
                acc[k] += wt * src[k];
                plain[k] += src[k];
              }
              total += wt;
              ++n;
            }
          for (int k = 0; k < 3; ++k) {
            const float v = total > 1e-20f ? acc[k] / total : plain[k] / float(n);
            l_.rgb[size_t(p) * 3 + k] = uint8_t(std::lround(std::clamp(v, 0.0f, 255.0f)));
          }
        }
    });
  }

 private:
  Level& l_;
  int r_;
};

Field random_field(const Level& l, uint64_t seed) {
  Field f{std::vector<int32_t>(l.target.size(), kNone), std::vector<int32_t>(l.target.size(), 0)};
  uint64_t rng = seed;
  for (size_t i = 0; i < l.target.size(); ++i)
    if (l.target[i]) f.match[i] = l.sources[splitmix(rng) % l.sources.size()];
  return f;
}

// The coarser level's field, doubled: each fine pixel keeps its coarse match's offset.
Field upsample(const Field& coarse, const Level& c, const Level& l, uint64_t seed) {
  Field f = random_field(l, seed);
  for (int y = 0; y < l.h; ++y)
    for (int x = 0; x < l.w; ++x) {
      const int32_t t = y * l.w + x;
      if (!l.target[t]) continue;
      const int32_t ct = std::min(y / 2, c.h - 1) * c.w + std::min(x / 2, c.w - 1);
      if (coarse.match[ct] == kNone) continue;
      const int sx = 2 * (coarse.match[ct] % c.w) + x % 2, sy = 2 * (coarse.match[ct] / c.w) + y % 2;
      if (sx < l.w && sy < l.h && l.source[sy * l.w + sx]) f.match[t] = sy * l.w + sx;
    }
  return f;
}

// Hole pixels of the finer level start from the coarser level's result.
void upsample_fill(const Level& c, Level& l) {
  for (int y = 0; y < l.h; ++y)
    for (int x = 0; x < l.w; ++x) {
      const size_t i = size_t(y) * l.w + x;
      if (!l.hole[i]) continue;
      const size_t ci = size_t(std::min(y / 2, c.h - 1)) * c.w + std::min(x / 2, c.w - 1);
      for (int k = 0; k < 3; ++k) l.rgb[i * 3 + k] = c.rgb[ci * 3 + k];
    }
}

uint64_t mix(uint64_t seed, uint64_t a, uint64_t b, uint64_t c) {
  uint64_t s = seed ^ (a * 0x100000001b3ULL) ^ (b << 20) ^ (c << 40);
  return splitmix(s);
}

}  // namespace

void patchmatch_fill(std::vector<uint8_t>& rgb, const std::vector<uint8_t>& hole, int w, int h,
                     const PatchMatchOptions& o) {
  const int r = o.patch_radius;
  if (rgb.size() != size_t(w) * h * 3 || hole.size() != size_t(w) * h) throw Error("patchmatch_fill: size mismatch");
  std::vector<Level> levels(1);
  levels[0].w = w, levels[0].h = h, levels[0].rgb = rgb;
  for (size_t i = 0; i < hole.size(); ++i) levels[0].hole.push_back(hole[i] != 0);
  levels[0].classify(r);
  if (levels[0].hole_count() == 0) return;
  if (levels[0].sources.empty())
    throw Error("the area to fill leaves no " + std::to_string(2 * r + 1) + "x" + std::to_string(2 * r + 1) +
                " patch of the picture around it to copy from: select less or include more of the picture");
  while (std::min(levels.back().w, levels.back().h) >= 2 * kMinLevelSide) {
    Level c = downsample(levels.back());
    c.classify(r);
    if (c.sources.size() < 16 || c.hole_count() == 0) break;
    levels.push_back(std::move(c));
  }

  onion_peel(levels.back());
  Field field;
  for (int li = int(levels.size()) - 1; li >= 0; --li) {
    Level& l = levels[size_t(li)];
    if (li == int(levels.size()) - 1) {
      field = random_field(l, mix(o.seed, uint64_t(li), 0, 0));
    } else {
      upsample_fill(levels[size_t(li) + 1], l);
      field = upsample(field, levels[size_t(li) + 1], l, mix(o.seed, uint64_t(li), 0, 0));
    }
    const Matcher m(l, r);
    if (li != int(levels.size()) - 1) {
      // Rebuild the hole from the finer sources the doubled field points at: textures
      // come back at this resolution instead of the coarse level's blur.
      m.measure(field);
      m.vote(field);
    }
    // More passes where they are cheap; the finest levels start from a good field.
    const int passes = std::min(8, 2 + 2 * li);
    for (int pass = 0; pass < passes; ++pass) {
      const int offset = (pass % 2) * kStripRows / 2;  // strip borders move between passes
      const int strips = (l.h + offset + kStripRows - 1) / kStripRows;
      at::parallel_for(0, strips, 1, [&](int64_t begin, int64_t end) {
        for (int64_t s = begin; s < end; ++s) {
          const int y0 = std::max(0, int(s) * kStripRows - offset), y1 = std::min(l.h, int(s + 1) * kStripRows - offset);
          m.search(field, y0, y1, pass % 2 == 0, mix(o.seed, uint64_t(li), uint64_t(pass) + 1, uint64_t(s)));
        }
      });
      m.vote(field);
    }
  }
  const Level& fine = levels[0];
  for (size_t i = 0; i < hole.size(); ++i)
    if (hole[i]) std::copy_n(&fine.rgb[i * 3], 3, &rgb[i * 3]);
}

}  // namespace inpaint
