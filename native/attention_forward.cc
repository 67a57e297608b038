// attention_forward: fused scaled-dot-product attention (semantics in attention.h).
//
// Flash-attention style: for a block of up to BQ query rows, walk the visible keys in
// tiles of BK, keep a running maximum m and sum l per row (online softmax) and an
// unnormalised output O, and never materialise the [Tq, Tk] score matrix. Scores are
// kept transposed, S^T [keys][rows], so each row's statistics live in one vector lane.
// Scores are in log2 units (q is pre-multiplied by scale * log2 e) so exp2 applies.
//
// A block holds rows of every query head that shares one kv head (grouped-query
// attention), (head, i) in head-major order: when Tq is small (KV-cache decode) the
// heads of a group fill the vector lanes together; with at most kDecodeRows rows a kv
// head takes decode_block instead. Each row carries its own causal limit (last visible
// key); keys before the first unmasked key (left padding) and after the block's last
// limit are never visited.
//
// Dropout of the probabilities (Drop = true) multiplies each tile of P by its keep mask
// (attention_tile.h) after the row sums are taken, so O accumulates (P * Z) V while l
// and the saved lse stay those of the undropped softmax. Drop is a template argument:
// without dropout the kernels are exactly the plain ones.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "attention.h"
#include "attention_tile.h"

namespace quartet {

namespace {

using namespace attn;

// Up to this many query rows per kv head (Tq of 1 or 2 times a few heads per group),
// decode_block's dot products beat a score tile whose vector lanes would mostly idle.
constexpr int64_t kDecodeRows = 4;

// First key index with mask != 0 per batch row (Tk when none): everything before it is
// left padding and skipped.
std::vector<int64_t> first_keys(const float* key_mask, int64_t B, int64_t Tk) {
  std::vector<int64_t> first(B, 0);
  if (!key_mask) return first;
  for (int64_t b = 0; b < B; b++) {
    int64_t j = 0;
    while (j < Tk && key_mask[b * Tk + j] == 0.0f) j++;
    first[b] = j;
  }
  return first;
}

// Per-thread buffers of one block (from attn::scratch, reused across calls).
struct Scratch {
  float *qt, *s, *o, *vp, *alpha, *m, *l;
  int32_t* lim;
  uint64_t* drop_base;  // per row: the dropout hash base of its first key (j = 0)
  const float** qrow;
  float** orow;
  float** lrow;
  Scratch(int64_t HS, int64_t HSp, int64_t Tk)
      : qt(scratch<float>(0, HS * BQ)),
        s(scratch<float>(1, std::max(BK * BQ, kDecodeRows * round_up(Tk, L)))),
        o(scratch<float>(2, BQ * HSp)), vp(scratch<float>(3, (Tk > BK ? Tk : BK) * HSp)),
        alpha(scratch<float>(4, BQ)), m(scratch<float>(5, BQ)), l(scratch<float>(6, BQ)),
        lim(scratch<int32_t>(0, BQ)), drop_base(scratch<uint64_t>(0, BQ)), qrow(scratch<const float*>(0, BQ)),
        orow(scratch<float*>(0, BQ)), lrow(scratch<float*>(1, BQ)) {}
};

// Normalises each row's accumulated output by its softmax sum and writes its
// log-sum-exp; a row that saw no key gets out = 0 and lse = -inf.
void finish_rows(Scratch& w, int64_t rows, int64_t HS, int64_t HSp) {
  const float neg_inf = -std::numeric_limits<float>::infinity();
  for (int64_t r = 0; r < rows; r++) {
    const float l = w.l[r];
    float* orow = w.orow[r];
    if (l > 0.0f) {
      const float inv = 1.0f / l;
      for (int64_t c = 0; c < HS; c++) orow[c] = w.o[r * HSp + c] * inv;
      *w.lrow[r] = (w.m[r] + std::log2(l)) * kLn2;
    } else {
      for (int64_t c = 0; c < HS; c++) orow[c] = 0.0f;
      *w.lrow[r] = neg_inf;
    }
  }
}

// One block of rows [r0, r0 + nr) of kv head (b, g).
template <bool Drop>
void forward_block(Scratch& w, float* out, float* lse, const float* q, const float* kb,
                   const float* vb, const float* mask, int64_t first_key, int64_t b, int64_t g,
                   int64_t r0, int64_t nr, int64_t NH, int64_t group, int64_t Tq, int64_t Tk,
                   int64_t HS, int64_t HSp, float scale, bool causal, const Dropout& drop) {
  const float qscale = scale * kLog2e;
  const int64_t nvq = round_up(nr, L) / L;  // vectors of lanes in use
  const int64_t lanes = nvq * L;
  int64_t max_lim = -1;
  for (int64_t r = 0; r < lanes; r++) {
    if (r < nr) {
      const int64_t h = g * group + (r0 + r) / Tq, i = (r0 + r) % Tq;
      const int64_t row = (b * NH + h) * Tq + i;
      w.qrow[r] = q + row * HS;
      w.orow[r] = out + row * HS;
      w.lrow[r] = lse + row;
      if constexpr (Drop) w.drop_base[r] = drop_base(drop, static_cast<uint64_t>(row * Tk));
      int64_t lim = causal ? Tk - Tq + i : Tk - 1;
      if (lim > Tk - 1) lim = Tk - 1;
      w.lim[r] = static_cast<int32_t>(lim < -1 ? -1 : lim);
      if (lim > max_lim) max_lim = lim;
    } else {
      w.lim[r] = -1;  // unused lanes see no key
      if constexpr (Drop) w.drop_base[r] = 0;
    }
  }
  for (int64_t c = 0; c < HS; c++)
    for (int64_t r = 0; r < lanes; r++) w.qt[c * BQ + r] = r < nr ? w.qrow[r][c] * qscale : 0.0f;
  const float neg_inf = -std::numeric_limits<float>::infinity();
  for (int64_t r = 0; r < lanes; r++) {
    w.m[r] = neg_inf;
    w.l[r] = 0.0f;
  }
  std::memset(w.o, 0, sizeof(float) * nr * HSp);

  const bool v_packed = HS % L != 0;
  for (int64_t j0 = first_key; j0 <= max_lim; j0 += BK) {
    const int64_t nk = max_lim + 1 - j0 < BK ? max_lim + 1 - j0 : BK;
    float* s = w.s;
    bmm(nk, lanes, HS, kb + j0 * HS, HS, 1, w.qt, BQ, s, BQ, false);
    // Mask, then the online-softmax update, one vector of rows at a time.
    for (int64_t v = 0; v < nvq; v++) {
      const vi lim = load_i(w.lim + v * L);
      vf mt = splat(neg_inf);
      for (int64_t j = 0; j < nk; j++) {
        float* sj = s + j * BQ + v * L;
        vf x = load(sj);
        if (mask && mask[j0 + j] == 0.0f) x = splat(neg_inf);
        x = lim < static_cast<int32_t>(j0 + j) ? splat(neg_inf) : x;
        store(sj, x);
        mt = mt > x ? mt : x;
      }
      const vf m_old = load(w.m + v * L);
      const vf m_new = m_old > mt ? m_old : mt;
      // A row with no visible key yet keeps m = -inf; subtracting 0 keeps p = 0, not NaN.
      const vf m_use = m_new == splat(neg_inf) ? vf{} : m_new;
      const vf alpha = exp2v(m_old - m_use);
      vf sum{};
      for (int64_t j = 0; j < nk; j++) {
        float* sj = s + j * BQ + v * L;
        const vf p = exp2v(load(sj) - m_use);
        sum += p;
        if constexpr (Drop) {
          store(sj, p * keep_scaled(drop, w.drop_base + v * L, j0 + j));
        } else {
          store(sj, p);
        }
      }
      store(w.l + v * L, load(w.l + v * L) * alpha + sum);
      store(w.m + v * L, m_new);
      store(w.alpha + v * L, alpha);
    }
    for (int64_t r = 0; r < nr; r++) {
      const float a = w.alpha[r];
      if (a == 1.0f) continue;
      float* orow = w.o + r * HSp;
      for (int64_t c = 0; c < HSp; c++) orow[c] *= a;
    }
    const float* vt = vb + j0 * HS;
    int64_t ldv = HS;
    if (v_packed) {
      pack_rows(w.vp, HSp, vt, HS, nk, HS);
      vt = w.vp;
      ldv = HSp;
    }
    // O[r][:] += sum_j P^T[j][r] V[j][:]
    bmm(nr, HSp, nk, s, 1, BQ, vt, ldv, w.o, HSp, true);
  }

  finish_rows(w, nr, HS, HSp);
}

// KV-cache decode: dot products along the head dimension for each of a few query rows,
// then an exact softmax over each whole row of scores, then P V.

template <bool Drop>
void decode_block(Scratch& w, float* out, float* lse, const float* q, const float* kb,
                  const float* vb, const float* mask, int64_t first_key, int64_t b, int64_t g,
                  int64_t rows, int64_t NH, int64_t group, int64_t Tq, int64_t Tk, int64_t HS,
                  int64_t HSp, float scale, bool causal, const Dropout& drop) {
  const float neg_inf = -std::numeric_limits<float>::infinity();
  const float qscale = scale * kLog2e;
  const int64_t full = HS / L * L;  // head dims read as whole vectors; the rest one by one
  int64_t max_lim = -1;
  for (int64_t r = 0; r < rows; r++) {
    const int64_t h = g * group + r / Tq, i = r % Tq;
    const int64_t row = (b * NH + h) * Tq + i;
    w.qrow[r] = q + row * HS;
    w.orow[r] = out + row * HS;
    w.lrow[r] = lse + row;
    if constexpr (Drop) w.drop_base[r] = drop_base(drop, static_cast<uint64_t>(row * Tk));
    int64_t lim = causal ? Tk - Tq + i : Tk - 1;
    if (lim > Tk - 1) lim = Tk - 1;
    w.lim[r] = static_cast<int32_t>(lim < -1 ? -1 : lim);
    if (lim > max_lim) max_lim = lim;
    float* qs = w.qt + r * HSp;
    for (int64_t c = 0; c < HS; c++) qs[c] = w.qrow[r][c] * qscale;
  }
  const int64_t nk = max_lim + 1 - first_key;  // keys [first_key, max_lim]
  const int64_t ld = round_up(nk > 0 ? nk : 1, L);
  for (int64_t j = 0; j < nk; j++) {
    const float* kj = kb + (first_key + j) * HS;
    const bool masked = mask && mask[first_key + j] == 0.0f;
    for (int64_t r = 0; r < rows; r++) {
      float sc = neg_inf;
      if (!masked && first_key + j <= w.lim[r]) {
        const float* qs = w.qt + r * HSp;
        vf acc{};
        for (int64_t c = 0; c < full; c += L) acc += load(qs + c) * load(kj + c);
        sc = hsum(acc);
        for (int64_t c = full; c < HS; c++) sc += qs[c] * kj[c];
      }
      w.s[r * ld + j] = sc;
    }
  }
  for (int64_t r = 0; r < rows; r++) {
    float* sr = w.s + r * ld;
    for (int64_t j = nk > 0 ? nk : 0; j < ld; j++) sr[j] = neg_inf;
    vf mv = splat(neg_inf);
    for (int64_t j = 0; j < ld; j += L) {
      const vf x = load(sr + j);
      mv = mv > x ? mv : x;
    }
    const float m = hmax(mv);
    const vf m_use = splat(m == neg_inf ? 0.0f : m);
    vf sum{};
    for (int64_t j = 0; j < ld; j += L) {
      const vf p = exp2v(load(sr + j) - m_use);
      store(sr + j, p);
      sum += p;
    }
    w.m[r] = m;
    w.l[r] = hsum(sum);
    if constexpr (Drop)
      for (int64_t j = 0; j < nk; j++) sr[j] *= keep_scaled(drop, w.drop_base[r], first_key + j);
  }
  if (nk > 0) {
    const float* vt = vb + first_key * HS;
    int64_t ldv = HS;
    if (HS % L != 0) {
      pack_rows(w.vp, HSp, vt, HS, nk, HS);
      vt = w.vp;
      ldv = HSp;
    }
    bmm(rows, HSp, nk, w.s, ld, 1, vt, ldv, w.o, HSp, false);
  }
  finish_rows(w, rows, HS, HSp);
}

}  // namespace

void attention_forward(float* out, float* lse, const float* q, const float* k, const float* v,
                       const float* key_mask, int64_t B, int64_t NH, int64_t NKV, int64_t Tq,
                       int64_t Tk, int64_t kvCap, int64_t HS, float scale, bool causal,
                       float dropout_p, uint64_t seed) {
  if (B <= 0 || NH <= 0 || Tq <= 0 || HS <= 0) return;
  const bool dropping = dropout_p > 0.0f;
  const Dropout drop = make_dropout(dropout_p, seed);
  const int64_t group = NH / NKV;
  const int64_t rows = group * Tq;  // query rows that share one kv head
  const int64_t nblk = (rows + BQ - 1) / BQ;
  const int64_t HSp = round_up(HS, L);
  const std::vector<int64_t> first = first_keys(key_mask, B, Tk);
  const int64_t tasks = B * NKV * nblk;
  // Small problems (decode steps) are not worth waking a thread team for.
  const bool parallel = tasks > 1 && B * NH * Tq * Tk * HS >= (1 << 16);
#pragma omp parallel if (parallel)
  {
    Scratch w(HS, HSp, Tk);
    // Later blocks of a causal head see more keys: hand out blocks dynamically.
#pragma omp for schedule(dynamic, 1)
    for (int64_t t = 0; t < tasks; t++) {
      const int64_t blk = t % nblk, bg = t / nblk;
      const int64_t b = bg / NKV, g = bg % NKV;
      const float* kb = k + bg * kvCap * HS;
      const float* vb = v + bg * kvCap * HS;
      const float* mask = key_mask ? key_mask + b * Tk : nullptr;
      if (rows <= kDecodeRows) {
        if (dropping) {
          decode_block<true>(w, out, lse, q, kb, vb, mask, first[b], b, g, rows, NH, group, Tq, Tk,
                             HS, HSp, scale, causal, drop);
        } else {
          decode_block<false>(w, out, lse, q, kb, vb, mask, first[b], b, g, rows, NH, group, Tq, Tk,
                              HS, HSp, scale, causal, drop);
        }
        continue;
      }
      const int64_t r0 = blk * BQ;
      const int64_t nr = rows - r0 < BQ ? rows - r0 : BQ;
      if (dropping) {
        forward_block<true>(w, out, lse, q, kb, vb, mask, first[b], b, g, r0, nr, NH, group, Tq, Tk,
                            HS, HSp, scale, causal, drop);
      } else {
        forward_block<false>(w, out, lse, q, kb, vb, mask, first[b], b, g, r0, nr, NH, group, Tq, Tk,
                             HS, HSp, scale, causal, drop);
      }
    }
  }
}

void attention_dropout_keep(float* out, int64_t B, int64_t NH, int64_t Tq, int64_t Tk, float p,
                            uint64_t seed) {
  const Dropout drop = make_dropout(p, seed);
  const int64_t rows = B * NH * Tq;
#pragma omp parallel for schedule(static) if (rows * Tk >= (1 << 16))
  for (int64_t row = 0; row < rows; row++) {
    const uint64_t base = drop_base(drop, static_cast<uint64_t>(row * Tk));
    for (int64_t j = 0; j < Tk; j++) out[row * Tk + j] = keep_scaled(drop, base, j);
  }
}

}  // namespace quartet
