#include "models/kernels/bf16_attention.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "models/kernels/cpu.h"

namespace inpaint {
namespace {

// An AMX tile holds 16 rows of 64 bytes: 16 f32, or 32 bf16 (16 pairs). Every tile here
// is used whole, so one configuration serves all. An AVX-512 register holds one such row:
// the products without AMX (AVX512-BF16's VDPBF16PS) read the same layouts a row at a time.
constexpr int64_t kTileRows = 16, kRowBf16 = 32;
constexpr int64_t kTileElements = kTileRows * kRowBf16;  // bf16 in an A or B tile
constexpr int64_t kQueries = 2 * kTileRows;              // query columns a task takes at once
// Keys whose scores (32 KB; and the next block's, being made) and probabilities (16 KB)
// a task holds at a time.
constexpr int64_t kKeyBlock = 256;
constexpr double kLog2e = 1.4426950408889634;

int64_t round_up(int64_t n, int64_t m) { return (n + m - 1) / m * m; }

// LDTILECFG's 64-byte operand (palette 1).
struct alignas(64) TileConfig {
  uint8_t palette = 1, start_row = 0, reserved[14] = {};
  uint16_t bytes_per_row[16] = {};
  uint8_t rows[16] = {};
};

TileConfig whole_tiles() {
  TileConfig config;
  for (int t = 0; t < 8; ++t) {
    config.bytes_per_row[t] = 64;
    config.rows[t] = kTileRows;
  }
  return config;
}

// One task: 32 queries of one head, against all its keys. Everything is computed
// transposed (keys or channels as rows, the 32 queries as columns): the softmax then
// runs down columns, 16 queries to a register, with no sums across a register's lanes.
// The products run on AMX tiles (`tiles`) or on AVX512-BF16 registers.
struct Task {
  const uint16_t* q;   // the 32 queries as B tiles: [2][dk / 32] tiles of 16 channel pairs x 16 queries x 2
  const uint16_t* k;   // key j's dk channels at k + j * dk (bf16, zero past the keys and d)
  const uint16_t* vt;  // channel ch's keys at vt + ch * vt_stride (bf16, zero past the keys)
  float* out;          // query r's d channels at out + r * out_stride (f32), or
  uint16_t* out16;     // at out16 + r * out_stride (bf16)
  int64_t out_stride, queries, nk, nkp, vt_stride, d, dk, dv;
  float scale;  // log2(e) / sqrt(d): the softmax's, in base 2
  bool tiles;
};

// The softmax so far of the task's queries (columns), over the keys seen.
struct Running {
  float* max;      // [32] largest score
  float* sum;      // [32] sum of 2^(scale (score - largest))
  float* rescale;  // [32] this block's 2^(scale (previous largest - largest))
  float* acc;      // [dv][32] weighted values
};

#pragma GCC push_options
#pragma GCC target("avx512f,avx512dq,avx512bw,avx512vl,avx512bf16,fma,amx-tile,amx-bf16")

#include "models/kernels/avx512_vector.inc"
// 2^x for finite x (0 far below), for probabilities to be rounded to bf16 (relative
// error up to 2^-8): 2^f for f = x - floor(x) in [0, 1) by a quadratic fitted to it,
// within 1.73e-3 relative (mean 6e-5), times 2^floor(x) (VSCALEFPS floors by itself).
// VREDUCEPS gives f in one instruction, where rounding and subtracting took two (three
// micro-ops): 4 instead of 6 per 16 scores. Masked forms with every lane live: GCC 12's
// unmasked ones warn of uninitialised variables.
inline V exp2_for_bf16(V x) {
  const __mmask16 all = 0xFFFF;
  const V f = _mm512_maskz_reduce_ps(all, x, _MM_FROUND_TO_NEG_INF);
  V p = splat(0.337185323f);
  p = p * f + splat(0.657638729f);
  p = p * f + splat(1.00172472f);
  return _mm512_maskz_scalef_ps(all, p, x);
}
// 2^x for x <= 0, -inf included (0).
inline V exp2_nonpositive(V x) {
  const __mmask16 live = _mm512_cmp_ps_mask(x, splat(-126.0f), _CMP_GE_OQ);
  const V n = _mm512_maskz_roundscale_ps(live, x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  return _mm512_maskz_scalef_ps(live, exp2_fraction(x - n), n);
}

// GCC 12's tile loads and stores do not tell the compiler they touch memory: fence the
// vector code's stores and loads of the same buffers.
inline void memory_fence() { asm volatile("" ::: "memory"); }

// The tile unit in software: the same tiles, loads, stores and products (TDPBF16PS: row
// m of C += each pair of row m of A dotted with the same pair of each column of B, in
// f32), for any processor. Tests run the AMX code through it where there is no AMX
// ("amx-bf16-emulated"); far slower than the vector products, so never chosen by itself.
namespace emulated {
struct alignas(64) Tile {
  uint8_t bytes[kTileRows * 64];
};
inline Tile* tiles() {
  thread_local Tile registers[8];
  return registers;
}
inline float widen(uint16_t bf16) {
  const uint32_t bits = uint32_t(bf16) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}
inline void zero(int t) { std::memset(tiles()[t].bytes, 0, sizeof(Tile)); }
inline void load(int t, const void* from, int64_t stride) {
  for (int64_t r = 0; r < kTileRows; ++r) std::memcpy(tiles()[t].bytes + r * 64, static_cast<const uint8_t*>(from) + r * stride, 64);
}
inline void store(int t, void* to, int64_t stride) {
  for (int64_t r = 0; r < kTileRows; ++r) std::memcpy(static_cast<uint8_t*>(to) + r * stride, tiles()[t].bytes + r * 64, 64);
}
inline void dot(int c, int a, int b) {
  float* sums = reinterpret_cast<float*>(tiles()[c].bytes);
  const uint16_t* x = reinterpret_cast<const uint16_t*>(tiles()[a].bytes);
  const uint16_t* y = reinterpret_cast<const uint16_t*>(tiles()[b].bytes);
  for (int64_t m = 0; m < kTileRows; ++m)
    for (int64_t n = 0; n < kTileRows; ++n) {
      float sum = sums[m * kTileRows + n];
      for (int64_t k = 0; k < kTileRows; ++k)
        sum += widen(x[m * kRowBf16 + 2 * k]) * widen(y[k * kRowBf16 + 2 * n]) +
               widen(x[m * kRowBf16 + 2 * k + 1]) * widen(y[k * kRowBf16 + 2 * n + 1]);
      sums[m * kTileRows + n] = sum;
    }
}
}  // namespace emulated

// Tile operations in code templated on kEmulated: AMX's instructions, or the software
// unit above. Macros, as GCC's intrinsics spell the tile's number into the instruction:
// it must be a literal.
#define TILE_OP(on_emulated, on_amx)          \
  do {                                         \
    if constexpr (kEmulated) on_emulated;      \
    else on_amx;                               \
  } while (0)
#define TILE_ZERO(tile) TILE_OP(emulated::zero(tile), _tile_zero(tile))
#define TILE_LOAD(tile, from, stride) TILE_OP(emulated::load(tile, from, stride), _tile_loadd(tile, from, stride))
#define TILE_STORE(tile, to, stride) TILE_OP(emulated::store(tile, to, stride), _tile_stored(tile, to, stride))
#define TILE_DOT(c, a, b) TILE_OP(emulated::dot(c, a, b), _tile_dpbf16ps(c, a, b))

// Two bf16 at p (a pair of channels or keys) as one 32-bit word, for a broadcast.
inline int bf16_pair(const uint16_t* p) {
  int pair;
  std::memcpy(&pair, p, 4);
  return pair;
}

// The scores of a block of keys into st [keys][32], 32 keys at a time (tiles 0-3: keys
// j..j+15 / j+16..j+31 against queries 0-15 / 16-31; 4, 5: keys; 6, 7: queries), in
// pieces: each group's channel steps, then its stores. All at once (the first block), or
// a piece at a time between the softmax's vector steps on the block before, so that the
// tile unit works while the vector units do: pieces short enough for the processor to
// run the vector instructions after them meanwhile.
template <bool kEmulated>
struct BlockScores {
  const Task& t;
  int64_t j0, keys;  // none when keys is 0
  float* st;
  int64_t j = 0, step = 0;  // the next piece: group j's step `step` (steps: the stores)

  void next() {
    if (j >= keys) return;
    if (!t.tiles) return on_vectors();
    const int64_t steps = t.dk / kRowBf16;
    if (step == 0) {
      TILE_ZERO(0);
      TILE_ZERO(1);
      TILE_ZERO(2);
      TILE_ZERO(3);
    }
    if (step < steps) {
      const uint16_t* k0 = t.k + (j0 + j) * t.dk + step * kRowBf16;
      const uint16_t* q = t.q + step * kTileElements;
      TILE_LOAD(4, k0, t.dk * 2);
      TILE_LOAD(5, k0 + kTileRows * t.dk, t.dk * 2);
      TILE_LOAD(6, q, 64);
      TILE_LOAD(7, q + steps * kTileElements, 64);
      TILE_DOT(0, 4, 6);
      TILE_DOT(1, 4, 7);
      TILE_DOT(2, 5, 6);
      TILE_DOT(3, 5, 7);
      ++step;
      return;
    }
    float* row = st + j * kQueries;
    const int64_t stride = kQueries * 4;
    TILE_STORE(0, row, stride);
    TILE_STORE(1, row + kTileRows, stride);
    TILE_STORE(2, row + kTileRows * kQueries, stride);
    TILE_STORE(3, row + kTileRows * kQueries + kTileRows, stride);
    j += 2 * kTileRows;
    step = 0;
  }
  void all() {
    while (j < keys) next();
    memory_fence();
  }

  // Without AMX, a piece is the scores of 8 keys against the 32 queries: 16 registers
  // of f32 sums, each channel pair's two query rows loaded once for the 8 keys (whose
  // pairs are broadcast). Only the d channels' pairs: the tiles' padding to dk (64 for
  // SD's 40) is zero.
  void on_vectors() {
    constexpr int kKeys = 8;
    V a[kKeys][2];
    for (int i = 0; i < kKeys; ++i) a[i][0] = a[i][1] = splat(0.0f);
    const uint16_t* k0 = t.k + (j0 + j) * t.dk;
    const uint16_t* q1 = t.q + t.dk / kRowBf16 * kTileElements;  // queries 16-31
    for (int64_t pair = 0; pair < (t.d + 1) / 2; ++pair) {
      const __m512bh q0v = (__m512bh)_mm512_loadu_si512(t.q + pair * kRowBf16);
      const __m512bh q1v = (__m512bh)_mm512_loadu_si512(q1 + pair * kRowBf16);
      for (int i = 0; i < kKeys; ++i) {
        const __m512bh kv = (__m512bh)_mm512_set1_epi32(bf16_pair(k0 + i * t.dk + 2 * pair));
        a[i][0] = _mm512_dpbf16_ps(a[i][0], kv, q0v);
        a[i][1] = _mm512_dpbf16_ps(a[i][1], kv, q1v);
      }
    }
    for (int i = 0; i < kKeys; ++i) {
      store(st + (j + i) * kQueries, a[i][0]);
      store(st + (j + i) * kQueries + kTileRows, a[i][1]);
    }
    j += kKeys;
  }
};

// Probabilities relative to the running largest score may grow to this before the
// block takes its own largest (and the products so far are rescaled): bf16 and f32
// keep their relative precision there, far from overflow.
constexpr float kLargestSum = 65536.0f;

// The largest of `live` scores of a column (16 queries) and `previous`. Four chains of
// maxima: one would wait on each comparison.
V largest_score(const float* column, int64_t live, V previous) {
  V m[4] = {previous, previous, previous, previous};
  int64_t key = 0;
  for (; key + 4 <= live; key += 4)
    for (int i = 0; i < 4; ++i) {
      const V x = load(column + (key + i) * kQueries);
      m[i] = x > m[i] ? x : m[i];
    }
  for (; key < live; ++key) {
    const V x = load(column + key * kQueries);
    m[0] = x > m[0] ? x : m[0];
  }
  m[0] = m[0] > m[1] ? m[0] : m[1];
  m[2] = m[2] > m[3] ? m[2] : m[3];
  return m[0] > m[2] ? m[0] : m[2];
}

// to = 2^(scale score - shift) of a column's keys in bf16 (0 past the `live` ones), keys j
// and j + 1 interleaved query by query: one row of a B tile (the tiles of successive
// keys follow each other: 16 rows of 32). Returns their sums. Every 16 keys, a piece of
// `next`'s scores (when given).
template <bool kEmulated>
V write_probabilities(const float* column, int64_t live, int64_t keys, V scale, V shift, uint16_t* to,
                      BlockScores<kEmulated>* next) {
  const __m512i interleave = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7, 22, 6,
                                              21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
  V sum = splat(0.0f);
  for (int64_t j = 0; j < keys; j += 2, to += kRowBf16) {
    if (next && j % kTileRows == 0) next->next();
    const V e0 = j < live ? exp2_for_bf16(load(column + j * kQueries) * scale - shift) : splat(0.0f);
    const V e1 = j + 1 < live ? exp2_for_bf16(load(column + (j + 1) * kQueries) * scale - shift) : splat(0.0f);
    sum += e0 + e1;
    _mm512_storeu_si512(to, _mm512_permutexvar_epi16(interleave, (__m512i)_mm512_cvtne2ps_pbh(e1, e0)));
  }
  return sum;
}

// pt = 2^(scale (st - largest)) in bf16 (0 for keys past the last), as B tiles of vᵀ pᵀ:
// [2 query halves][keys / 32] tiles of 16 key pairs x 16 queries x 2. After the first
// block, `largest` is the running one while the block's sums stay below kLargestSum
// (the usual case: one pass over the scores, no rescaling); otherwise the block's own
// (a second pass). The running largest scores, sums and rescale factors updated. The
// next block's scores are made along the way (`next`).
template <bool kEmulated>
void probabilities(const Task& t, int64_t j0, int64_t keys, const float* st, uint16_t* pt, const Running& run,
                   BlockScores<kEmulated>& next) {
  const int64_t live = std::min(keys, t.nk - j0);  // >= 1: blocks start before the last key
  const V scale = splat(t.scale);
  for (int64_t half = 0; half < 2; ++half) {
    const float* column = st + half * kTileRows;
    uint16_t* to = pt + half * keys / kRowBf16 * kTileElements;
    const V previous = load(run.max + half * kTileRows);
    if (j0 > 0) {
      const V sum = write_probabilities(column, live, keys, scale, previous * scale, to, &next);
      if (_mm512_cmp_ps_mask(sum, splat(kLargestSum), _CMP_LT_OQ) == 0xFFFF) {
        store(run.rescale + half * kTileRows, splat(1.0f));
        store(run.sum + half * kTileRows, load(run.sum + half * kTileRows) + sum);
        continue;
      }
    }
    const V largest = largest_score(column, live, previous);
    const V sum = write_probabilities(column, live, keys, scale, largest * scale, to, &next);
    // 0 for the first block (previous largest -inf; acc and sum are 0 then).
    const V rescale = exp2_nonpositive((previous - largest) * scale);
    store(run.rescale + half * kTileRows, rescale);
    store(run.max + half * kTileRows, largest);
    store(run.sum + half * kTileRows, load(run.sum + half * kTileRows) * rescale + sum);
  }
  next.all();  // what the steps above left; its fence covers the stores of pt too
}

// Without AMX: acc = acc * rescale + vᵀ pᵀ over keys [j0, j0 + keys), 8 channels at a
// time: 16 registers of sums, each key pair's two probability rows loaded once for the 8
// channels (whose value pairs are broadcast). The d channels rounded up to 8, not to the
// tiles' 16 (dv).
void add_weighted_values_on_vectors(const Task& t, int64_t j0, int64_t keys, const uint16_t* pt, const Running& run) {
  constexpr int kChannels = 8;
  const V rescale[2] = {load(run.rescale), load(run.rescale + kTileRows)};
  const uint16_t* p1 = pt + keys / kRowBf16 * kTileElements;  // queries 16-31
  for (int64_t ch0 = 0; ch0 < t.d; ch0 += kChannels) {
    V a[kChannels][2];
    for (int c = 0; c < kChannels; ++c)
      for (int h = 0; h < 2; ++h) a[c][h] = load(run.acc + (ch0 + c) * kQueries + h * kTileRows) * rescale[h];
    const uint16_t* vt = t.vt + ch0 * t.vt_stride + j0;
    for (int64_t pair = 0; pair < keys / 2; ++pair) {
      const __m512bh p0v = (__m512bh)_mm512_loadu_si512(pt + pair * kRowBf16);
      const __m512bh p1v = (__m512bh)_mm512_loadu_si512(p1 + pair * kRowBf16);
      for (int c = 0; c < kChannels; ++c) {
        const __m512bh vv = (__m512bh)_mm512_set1_epi32(bf16_pair(vt + c * t.vt_stride + 2 * pair));
        a[c][0] = _mm512_dpbf16_ps(a[c][0], vv, p0v);
        a[c][1] = _mm512_dpbf16_ps(a[c][1], vv, p1v);
      }
    }
    for (int c = 0; c < kChannels; ++c)
      for (int h = 0; h < 2; ++h) store(run.acc + (ch0 + c) * kQueries + h * kTileRows, a[c][h]);
  }
}

// acc = acc * rescale + vᵀ pᵀ over keys [j0, j0 + keys), through ot [dv][32]. Channels
// in pairs of groups of 16, each value tile used for both query halves: tiles 0-3:
// products (groups g, g + 1 x queries 0-15, 16-31), 4, 5: probabilities of the halves,
// 6, 7: values of the two groups. Each value tile comes from L2 once per block, where
// one half at a time loaded it twice (the tiles' loads bound these products).
template <bool kEmulated>
void add_weighted_values(const Task& t, int64_t j0, int64_t keys, const uint16_t* pt, float* ot, const Running& run) {
  if (!t.tiles) return add_weighted_values_on_vectors(t, j0, keys, pt, run);
  const int64_t groups = t.dv / kTileRows, vt_bytes = t.vt_stride * 2, ot_stride = kQueries * 4;
  const uint16_t* p1 = pt + keys / kRowBf16 * kTileElements;  // queries 16-31
  for (int64_t g = 0; g < groups; g += 2) {
    const bool pair = g + 1 < groups;
    TILE_ZERO(0);
    TILE_ZERO(1);
    if (pair) {
      TILE_ZERO(2);
      TILE_ZERO(3);
    }
    const uint16_t* vt = t.vt + g * kTileRows * t.vt_stride + j0;
    for (int64_t j = 0; j < keys; j += kRowBf16) {
      TILE_LOAD(4, pt + j / kRowBf16 * kTileElements, 64);
      TILE_LOAD(5, p1 + j / kRowBf16 * kTileElements, 64);
      TILE_LOAD(6, vt + j, vt_bytes);
      TILE_DOT(0, 6, 4);
      TILE_DOT(1, 6, 5);
      if (pair) {
        TILE_LOAD(7, vt + kTileRows * t.vt_stride + j, vt_bytes);
        TILE_DOT(2, 7, 4);
        TILE_DOT(3, 7, 5);
      }
    }
    float* o = ot + g * kTileRows * kQueries;
    TILE_STORE(0, o, ot_stride);
    TILE_STORE(1, o + kTileRows, ot_stride);
    if (pair) {
      TILE_STORE(2, o + kTileRows * kQueries, ot_stride);
      TILE_STORE(3, o + kTileRows * kQueries + kTileRows, ot_stride);
    }
  }
  memory_fence();
  const V rescale0 = load(run.rescale), rescale1 = load(run.rescale + kTileRows);
  for (int64_t ch = 0; ch < t.dv; ++ch) {
    float* acc = run.acc + ch * kQueries;
    const float* o = ot + ch * kQueries;
    store(acc, load(acc) * rescale0 + load(o));
    store(acc + kTileRows, load(acc + kTileRows) * rescale1 + load(o + kTileRows));
  }
}

// The task's output: its keys block by block, then acc / sum, transposed back.
template <bool kEmulated>
void attend(const Task& t, float* work) {
  float* st[2] = {work, work + kKeyBlock * kQueries};  // a block's scores, the next one's
  uint16_t* pt = reinterpret_cast<uint16_t*>(work + 2 * kKeyBlock * kQueries);
  float* ot = work + kKeyBlock * kQueries * 5 / 2;
  const Running run{ot + t.dv * kQueries, ot + t.dv * kQueries + kQueries, ot + t.dv * kQueries + 2 * kQueries,
                    ot + t.dv * kQueries + 3 * kQueries};
  std::fill(run.max, run.max + kQueries, -INFINITY);
  std::fill(run.sum, run.sum + kQueries, 0.0f);
  std::fill(run.acc, run.acc + t.dv * kQueries, 0.0f);
  BlockScores<kEmulated> first{t, 0, std::min(kKeyBlock, t.nkp), st[0]};
  first.all();
  for (int64_t j0 = 0, b = 0; j0 < t.nkp; j0 += kKeyBlock, ++b) {
    const int64_t keys = std::min(kKeyBlock, t.nkp - j0), after = j0 + kKeyBlock;
    BlockScores<kEmulated> next{t, after, after < t.nkp ? std::min(kKeyBlock, t.nkp - after) : 0, st[(b + 1) % 2]};
    probabilities(t, j0, keys, st[b % 2], pt, run, next);
    add_weighted_values<kEmulated>(t, j0, keys, pt, ot, run);
  }
  // Query r's channels are column r of acc: gathered 16 at a time (acc has dv rows).
  const __m512i rows = _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                                          _mm512_set1_epi32(kQueries));
  for (int64_t r = 0; r < t.queries; ++r) {
    const V inv = splat(1.0f / run.sum[r]);
    for (int64_t ch = 0; ch < t.d; ch += kTileRows) {
      const __mmask16 live = ch + kTileRows <= t.d ? 0xFFFF : __mmask16((1u << (t.d - ch)) - 1);
      // Masked, as the stores (and as GCC 12 wants: the unmasked form warns).
      const V value = _mm512_mask_i32gather_ps(splat(0.0f), live, rows, run.acc + ch * kQueries + r, 4) * inv;
      if (t.out16)  // rounded to nearest even
        _mm256_mask_storeu_epi16(t.out16 + r * t.out_stride + ch, live, (__m256i)_mm512_cvtneps_pbh(value));
      else
        _mm512_mask_storeu_ps(t.out + r * t.out_stride + ch, live, value);
    }
  }
}

// A thread configures its tiles before using them, and releases them after (so that
// the kernel need not save them when it switches threads).
void configure_tiles() {
  static const TileConfig config = whole_tiles();
  _tile_loadconfig(&config);
}
void release_tiles() { _tile_release(); }

#undef TILE_OP
#undef TILE_ZERO
#undef TILE_LOAD
#undef TILE_STORE
#undef TILE_DOT

#pragma GCC pop_options

uint16_t* bits(const at::Tensor& t) { return reinterpret_cast<uint16_t*>(t.data_ptr<at::BFloat16>()); }

// A tensor's elements as bf16, contiguous (as it is when it is so already).
at::Tensor bf16_rows(const at::Tensor& x) {
  if (x.scalar_type() == at::kBFloat16 && x.is_contiguous()) return x;
  return at::empty(x.sizes(), at::kBFloat16).copy_(x);
}

// One head's rows (n of them, `stride` apart, d channels) as B tiles: [n / 16][dk / 32]
// tiles of 16 channel pairs x 16 rows x 2, zero past the rows and channels. A row's
// padded copy first, then its pairs moved as 32-bit words.
void pack_b_tiles(const uint16_t* x, int64_t n, int64_t stride, int64_t d, int64_t rows, int64_t dk, uint16_t* tiles) {
  const int64_t steps = dk / kRowBf16;
  std::vector<uint16_t> padded(size_t(dk), 0);
  for (int64_t i = 0; i < rows; ++i) {
    if (i < n) std::memcpy(padded.data(), x + i * stride, size_t(d) * 2);
    if (i == n) std::fill(padded.begin(), padded.end(), uint16_t(0));
    uint16_t* tile_row = tiles + (i / kTileRows * steps * kTileRows) * kRowBf16 + i % kTileRows * 2;
    // Pair p is row p % 16 of tile p / 16 of the row's 16: tiles follow each other.
    for (int64_t pair = 0; pair < dk / 2; ++pair) std::memcpy(tile_row + pair * kRowBf16, padded.data() + 2 * pair, 4);
  }
}

// One head's keys: [nkp][dk], zero past the keys and channels.
void pack_keys(const uint16_t* k, int64_t nk, int64_t stride, int64_t d, int64_t dk, int64_t nkp, uint16_t* kp) {
  std::fill(kp, kp + nkp * dk, uint16_t(0));
  for (int64_t j = 0; j < nk; ++j) std::memcpy(kp + j * dk, k + j * stride, size_t(d) * 2);
}

// One head's values transposed: [dv][vt_stride], zero past the keys and channels. In
// blocks of 64 keys, whose rows stay in L1 while each channel's 64 values are written.
void transpose_values(const uint16_t* v, int64_t nk, int64_t stride, int64_t d, int64_t dv, int64_t vt_stride, uint16_t* vt) {
  std::fill(vt, vt + dv * vt_stride, uint16_t(0));
  constexpr int64_t kBlock = 64;
  for (int64_t j0 = 0; j0 < nk; j0 += kBlock) {
    const int64_t j1 = std::min(nk, j0 + kBlock);
    for (int64_t ch = 0; ch < d; ++ch)
      for (int64_t j = j0; j < j1; ++j) vt[ch * vt_stride + j] = v[j * stride + ch];
  }
}

bool cpu_has(const std::string& isa) {
  const CpuFeatures& cpu = cpu_features();
  const bool vectors = cpu.avx512 && cpu.avx512_bf16;  // the softmax's, and the products' without AMX
  if (isa == "amx-bf16") return vectors && cpu.amx_bf16 && cpu.amx_permitted;
  return (isa == "avx512-bf16" || isa == "amx-bf16-emulated") && vectors;
}

std::string best_isa() {
  for (const char* isa : {"amx-bf16", "avx512-bf16"})
    if (cpu_has(isa)) return isa;
  return "";
}

std::string& isa_in_use() {
  static std::string isa = best_isa();
  return isa;
}

}  // namespace

std::string bf16_attention_isa() { return isa_in_use(); }

void set_bf16_attention_isa(const std::string& isa) {
  TORCH_CHECK(isa.empty() || cpu_has(isa), "bf16 attention: this processor cannot run the ", isa, " products");
  isa_in_use() = isa.empty() ? best_isa() : isa;
}

bool bf16_attention_available(int64_t head_dim) {
  return !isa_in_use().empty() && head_dim <= kBf16AttentionMaxHeadDim;
}

at::Tensor bf16_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, int64_t heads, bool bf16_out) {
  const int64_t b = q.size(0), nq = q.size(1), nk = k.size(1), c = q.size(2), d = c / heads;
  TORCH_CHECK(bf16_attention_available(d), "bf16_attention: no native bf16, or head size ", d);
  const bool emulated = isa_in_use() == "amx-bf16-emulated", tiles = emulated || isa_in_use() == "amx-bf16";
  // Padded sizes: channels to whole tile rows (q kᵀ) and tiles (vᵀ pᵀ); keys to whole
  // tile rows (scores past the last key are left out, values there are zero); queries
  // to whole tasks.
  const int64_t dk = round_up(d, kRowBf16), dv = round_up(d, kTileRows), nkp = round_up(nk, kRowBf16);
  // Rows of transposed values a multiple of 4 KB apart would share the cache's sets
  // (a tile loads 16 of them): 64 bytes more.
  const int64_t vt_stride = nkp + kRowBf16;
  const int64_t tasks_per_head = (nq + kQueries - 1) / kQueries, nqp = tasks_per_head * kQueries;
  // bf16 copies (libtorch's vectorised rounding, to nearest even), then each head's
  // operands together (a head's keys and values stay in L2 while its tasks read them).
  const at::Tensor q16 = bf16_rows(q), k16 = bf16_rows(k), v16 = bf16_rows(v);
  at::Tensor qt = at::empty({b * heads * nqp * dk}, at::kBFloat16), kp = at::empty({b * heads * nkp * dk}, at::kBFloat16),
             vt = at::empty({b * heads * dv * vt_stride}, at::kBFloat16);
  at::parallel_for(0, b * heads, 1, [&](int64_t begin, int64_t end) {
    for (int64_t bh = begin; bh < end; ++bh) {
      const int64_t batch = bh / heads, head = bh % heads;
      pack_b_tiles(bits(q16) + batch * nq * c + head * d, nq, c, d, nqp, dk, bits(qt) + bh * nqp * dk);
      pack_keys(bits(k16) + batch * nk * c + head * d, nk, c, d, dk, nkp, bits(kp) + bh * nkp * dk);
      transpose_values(bits(v16) + batch * nk * c + head * d, nk, c, d, dv, vt_stride, bits(vt) + bh * dv * vt_stride);
    }
  });
  at::Tensor out = at::empty({b, nq, c}, bf16_out ? at::kBFloat16 : at::kFloat);
  // Work buffers made here, one per thread (see fused_attention.cpp): scores,
  // probabilities, products, the running softmax.
  const size_t floats = size_t(kKeyBlock * kQueries * 5 / 2 + 2 * dv * kQueries + 3 * kQueries);
  // (at::empty: 64-byte aligned, as the tiles' rows stored there should be: a row
  // across two cache lines takes twice as long.) `floats` is a multiple of 16.
  const at::Tensor work = at::empty({int64_t(floats) * at::get_num_threads()});
  const float scale = float(kLog2e / std::sqrt(double(d)));
  at::parallel_for(0, b * heads * tasks_per_head, 1, [&](int64_t begin, int64_t end) {
    float* own = work.data_ptr<float>() + floats * size_t(at::get_thread_num());
    if (tiles && !emulated) configure_tiles();
    for (int64_t i = begin; i < end; ++i) {
      const int64_t bh = i / tasks_per_head, batch = bh / heads, head = bh % heads;
      const int64_t query0 = i % tasks_per_head * kQueries;
      const Task t{bits(qt) + (bh * nqp + query0) * dk,
                   bits(kp) + bh * nkp * dk,
                   bits(vt) + bh * dv * vt_stride,
                   bf16_out ? nullptr : out.data_ptr<float>() + (batch * nq + query0) * c + head * d,
                   bf16_out ? bits(out) + (batch * nq + query0) * c + head * d : nullptr,
                   c, std::min(kQueries, nq - query0), nk, nkp, vt_stride, d, dk, dv, scale, tiles};
      if (emulated)
        attend<true>(t, own);
      else
        attend<false>(t, own);
    }
    if (tiles && !emulated) release_tiles();
  });
  return out;
}

}  // namespace inpaint
